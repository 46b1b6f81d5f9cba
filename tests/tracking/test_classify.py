"""Human-or-machine classification: realistic hit sequences replayed through classify_message."""

from __future__ import annotations

import dataclasses
import random
from itertools import count

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pixeltrail.tracking.classify import Rules, classify_message
from pixeltrail.tracking.hits import COUNTED_AS_OPEN, Classification, Hit, HitKind, Verdict

MESSAGE = "AAECAwQFBgcICQoL"
SENT = 1_717_000_000_000  # when the message was handed to SMTP
SECOND = 1000
MINUTE = 60 * SECOND

# Real user agents, as seen on tracking servers.
IPHONE_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Mobile/15E148"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/124.0.0.0 Safari/537.36"
)
OUTLOOK_DESKTOP = (
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/8.0; .NET4.0C; .NET4.0E;"
    " Microsoft Outlook 16.0.17531; ms-office; MSOffice 16)"
)
ANDROID_CUBOT = (
    "Mozilla/5.0 (Linux; Android 10; CUBOT X30 Build/QP1A.190711.020) AppleWebKit/537.36"
    " (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36"
)
SAFE_LINKS_CHROME = (  # Safe Links detonation: an old Chrome from Microsoft's network
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/96.0.4664.110 Safari/537.36"
)
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
MPP = "Mozilla/5.0"

HOME_IP = "203.0.113.24"  # a reader at home (documentation range: in no rule)
APPLE_RANGES = ["17.0.0.0/8", "172.224.226.0/27,GB,GB-EN,London,"]  # a CIDR and a CSV line

_ids = count()


def hit(
    kind: HitKind,
    at_ms: int,
    *,
    ip: str = HOME_IP,
    ua: str = IPHONE_MAIL,
    link: int | None = None,
    method: str = "GET",
    honeypot: bool = False,
) -> Hit:
    if kind == "click" and link is None:
        link = 0 if honeypot else 1
    return Hit(
        id=f"h{next(_ids):04d}",
        kind=kind,
        message_id=MESSAGE,
        link=link,
        destination=None if kind == "open" else f"https://shop.example.com/p/{link}",
        at_ms=at_ms,
        ip=ip,
        user_agent=ua,
        method=method,
        honeypot=honeypot,
    )


@pytest.fixture(scope="module")
def rules() -> Rules:
    return Rules.load(apple_ranges=APPLE_RANGES)


def test_a_reader_opening_twice_and_clicking_once_is_human(rules: Rules) -> None:
    first = hit("open", SENT + 40 * MINUTE)
    again = hit("open", SENT + 41 * MINUTE)
    click = hit("click", SENT + 42 * MINUTE, ua=IPHONE_SAFARI, link=2)
    verdicts = classify_message([first, again, click], rules, sent_at_ms=SENT, link_count=3)
    assert {v.classification for v in verdicts.values()} == {Classification.HUMAN}
    assert all(v.reason == "no machine signal" for v in verdicts.values())


def test_mail_privacy_protection_prefetch(rules: Rules) -> None:
    prefetch = hit("open", SENT + 2 * SECOND, ip="17.58.101.5", ua=MPP)
    elsewhere = hit("open", SENT + 3 * SECOND, ip="198.51.100.7", ua=MPP)
    relay_ip = hit("open", SENT + 4 * SECOND, ip="172.224.226.9", ua=IPHONE_MAIL)
    verdicts = classify_message([prefetch, elsewhere, relay_ip], rules, sent_at_ms=SENT)
    assert {v.classification for v in verdicts.values()} == {Classification.APPLE_MPP}
    assert "exactly 'Mozilla/5.0'" in verdicts[elsewhere.id].reason
    assert "172.224.226.9" in verdicts[relay_ip.id].reason
    assert "egress ranges" in verdicts[relay_ip.id].reason
    assert Classification.APPLE_MPP not in COUNTED_AS_OPEN


def test_apple_ranges_are_only_known_when_passed_in() -> None:
    relay_open = hit("open", SENT + 5 * MINUTE, ip="172.224.226.9")
    assert (
        classify_message([relay_open], Rules.default())[relay_open.id].classification
        == Classification.HUMAN
    )


def test_a_click_through_icloud_private_relay_is_a_person(rules: Rules) -> None:
    click = hit("click", SENT + 30 * MINUTE, ip="172.224.226.20", ua=IPHONE_SAFARI)
    verdict = classify_message([click], rules, sent_at_ms=SENT)[click.id]
    assert verdict.classification == Classification.HUMAN
    assert "Private Relay" in verdict.reason


def test_a_click_with_the_bare_mpp_user_agent_is_a_bot(rules: Rules) -> None:
    click = hit("click", SENT + 30 * MINUTE, ua=MPP)
    assert classify_message([click], rules)[click.id].classification == Classification.BOT


def test_gmail_and_yahoo_proxy_opens_are_real_opens(rules: Rules) -> None:
    gmail = hit("open", SENT + 12 * MINUTE, ip="66.249.84.23", ua=GMAIL_PROXY)
    yahoo = hit("open", SENT + 15 * MINUTE, ip="98.136.10.4", ua=YAHOO_PROXY)
    verdicts = classify_message([gmail, yahoo], rules, sent_at_ms=SENT)
    assert verdicts[gmail.id].classification == Classification.PROXY_OPEN
    assert "GoogleImageProxy" in verdicts[gmail.id].reason
    assert verdicts[yahoo.id].classification == Classification.PROXY_OPEN
    assert "YahooMailProxy" in verdicts[yahoo.id].reason
    assert Classification.PROXY_OPEN in COUNTED_AS_OPEN


def test_an_image_proxy_fetching_a_link_is_not_a_click(rules: Rules) -> None:
    click = hit("click", SENT + 20 * MINUTE, ip="66.249.84.23", ua=GMAIL_PROXY)
    assert classify_message([click], rules)[click.id].classification == Classification.BOT


def test_safe_links_clicking_every_link_from_microsoft(rules: Rules) -> None:
    start = SENT + 14 * SECOND
    scan = [
        hit("click", start, ip="40.94.29.84", ua=SAFE_LINKS_CHROME, link=1, method="HEAD"),
        hit("click", start + 300, ip="40.94.29.84", ua=SAFE_LINKS_CHROME, link=1),
        hit("click", start + 700, ip="40.107.218.12", ua=SAFE_LINKS_CHROME, link=2),
        hit("click", start + 1100, ip="40.94.29.84", ua=SAFE_LINKS_CHROME, link=3, method="HEAD"),
        hit("click", start + 1500, ip="40.107.218.12", ua=SAFE_LINKS_CHROME, link=4),
        hit("click", start + 1900, ip="40.94.29.84", ua=SAFE_LINKS_CHROME, link=5),
        hit("open", start + 2000, ip="40.107.218.12", ua=SAFE_LINKS_CHROME),
    ]
    verdicts = classify_message(scan, rules, sent_at_ms=SENT, link_count=5)
    assert {v.classification for v in verdicts.values()} == {Classification.SCANNER}
    for h in scan:
        reason = verdicts[h.id].reason
        expected = "HEAD" if h.method == "HEAD" else "Exchange Online Protection"
        assert expected in reason, (h, reason)


def test_every_link_in_two_seconds_from_an_unlisted_cloud_address(rules: Rules) -> None:
    start = SENT + 3 * MINUTE
    scan = [
        hit("click", start + i * 450, ip="20.98.147.3", ua=SAFE_LINKS_CHROME, link=i)
        for i in range(1, 6)
    ]
    verdicts = classify_message(scan, rules, sent_at_ms=SENT, link_count=5)
    assert {v.classification for v in verdicts.values()} == {Classification.SCANNER}
    assert {v.reason for v in verdicts.values()} == {"all 5 links clicked within 1.8 s"}


def test_every_destination_clicked_is_every_link_whatever_copies_were_clicked(
    rules: Rules,
) -> None:
    """Two destinations, each tracked in the HTML part (links 1, 2) and the text part (3, 4):
    clicking both is every link; clicking one in both parts is one link."""
    start = SENT + 3 * MINUTE

    def click(at_ms: int, link: int) -> Hit:
        page = hit("click", at_ms, ua=WINDOWS_CHROME, link=link)
        return dataclasses.replace(page, destination=f"https://shop.example.com/p/{link % 2}")

    both = [click(start, 1), click(start + 300, 2)]
    verdicts = classify_message(both, rules, sent_at_ms=SENT, link_count=4, destination_count=2)
    assert {v.reason for v in verdicts.values()} == {"all 2 links clicked within 0.3 s"}
    copies = [click(start, 1), click(start + 300, 3)]
    verdicts = classify_message(copies, rules, sent_at_ms=SENT, link_count=4, destination_count=2)
    assert {v.classification for v in verdicts.values()} == {Classification.HUMAN}


def test_messages_sent_with_only_a_link_count_are_judged_by_link_position(rules: Rules) -> None:
    """Messages sent before destination counts were kept counted every copy of a link: every
    copy clicked at once is still a scanner's, as it was when they were sent."""
    start = SENT + 3 * MINUTE
    scan = [
        dataclasses.replace(
            hit("click", start + i * 200, ua=WINDOWS_CHROME, link=i),
            destination=f"https://shop.example.com/p/{i % 2}",
        )
        for i in range(1, 5)
    ]
    verdicts = classify_message(scan, rules, sent_at_ms=SENT, link_count=4)
    assert {v.reason for v in verdicts.values()} == {"all 4 links clicked within 0.6 s"}


def test_three_links_at_once_without_a_link_count(rules: Rules) -> None:
    start = SENT + 3 * MINUTE
    scan = [hit("click", start + i * 200, ua=WINDOWS_CHROME, link=i) for i in (3, 1, 2)]
    verdicts = classify_message(scan, rules)
    assert {v.reason for v in verdicts.values()} == {"3 different links clicked within 0.4 s"}


def test_two_quick_clicks_of_different_links_stay_human_without_a_link_count(
    rules: Rules,
) -> None:
    clicks = [
        hit("click", SENT + 5 * MINUTE + i * SECOND, ua=WINDOWS_CHROME, link=i) for i in (1, 2)
    ]
    verdicts = classify_message(clicks, rules)
    assert {v.classification for v in verdicts.values()} == {Classification.HUMAN}


@pytest.mark.parametrize(
    ("ip", "vendor"),
    [
        ("205.139.110.66", "Mimecast"),  # us._netblocks.mimecast.com
        ("91.220.42.201", "Mimecast"),  # eu._netblocks.mimecast.com
        ("148.163.135.35", "Proofpoint"),  # a pphosted.com gateway
        ("67.231.153.30", "Proofpoint"),
        ("209.222.82.145", "Barracuda"),
        ("2a01:111:f403:c10c::3", "Exchange Online Protection"),
    ],
)
def test_security_gateway_networks(rules: Rules, ip: str, vendor: str) -> None:
    click = hit("click", SENT + 25 * SECOND, ip=ip, ua=WINDOWS_CHROME)
    pixel = hit("open", SENT + 26 * SECOND, ip=ip, ua=WINDOWS_CHROME)
    verdicts = classify_message([click, pixel], rules, sent_at_ms=SENT)
    for h in (click, pixel):
        assert verdicts[h.id].classification == Classification.SCANNER
        assert vendor in verdicts[h.id].reason


def test_honeypot_condemns_the_clicks_around_it_but_not_a_later_reader(rules: Rules) -> None:
    at = SENT + 4 * MINUTE
    pixel = hit("open", at - 2 * SECOND, ip="52.168.4.12", ua=WINDOWS_CHROME)
    honeypot = hit("click", at, ip="52.168.4.12", ua=WINDOWS_CHROME, honeypot=True)
    looks_real = hit("click", at + 3 * SECOND, ip="198.51.100.40", ua=WINDOWS_CHROME, link=2)
    reader = hit("click", at + 5 * MINUTE, ua=IPHONE_SAFARI, link=2)
    verdicts = classify_message([pixel, honeypot, looks_real, reader], rules, sent_at_ms=SENT)
    assert verdicts[honeypot.id].classification == Classification.SCANNER
    assert "honeypot link clicked" in verdicts[honeypot.id].reason
    assert verdicts[looks_real.id] == Verdict(
        Classification.SCANNER, "within 10 s of a honeypot click (3 s after it)"
    )
    assert verdicts[pixel.id].reason == "within 10 s of a honeypot click (2 s before it)"
    assert verdicts[reader.id].classification == Classification.HUMAN


def test_a_late_honeypot_click_changes_earlier_verdicts(rules: Rules) -> None:
    click = hit("click", SENT + 10 * MINUTE, ip="198.51.100.40", ua=WINDOWS_CHROME)
    assert classify_message([click], rules)[click.id].classification == Classification.HUMAN
    honeypot = hit("click", SENT + 10 * MINUTE + 4 * SECOND, ip="198.51.100.41", honeypot=True)
    assert (
        classify_message([click, honeypot], rules)[click.id].classification
        == Classification.SCANNER
    )


def test_forwarded_message_opens_stay_human_with_a_forward_reason(rules: Rules) -> None:
    first = hit("open", SENT + 20 * MINUTE, ip="203.0.113.24", ua=OUTLOOK_DESKTOP)
    forwarded = hit("open", SENT + 3 * 60 * MINUTE, ip="198.51.100.77", ua=IPHONE_MAIL)
    same_office = hit("open", SENT + 4 * 60 * MINUTE, ip="203.0.113.90", ua=WINDOWS_CHROME)
    same_client = hit("open", SENT + 5 * 60 * MINUTE, ip="192.0.2.15", ua=OUTLOOK_DESKTOP)
    verdicts = classify_message([first, forwarded, same_office, same_client], rules)
    assert {v.classification for v in verdicts.values()} == {Classification.HUMAN}
    assert verdicts[first.id].reason == "no machine signal"
    assert verdicts[forwarded.id].reason.startswith("likely forward")
    assert verdicts[same_office.id].reason == "no machine signal"  # same /24, other browser
    assert verdicts[same_client.id].reason == "no machine signal"  # same user agent, travelling


def test_forward_detection_uses_a_48_for_ipv6(rules: Rules) -> None:
    first = hit("open", SENT + MINUTE, ip="2001:db8:10:1::5", ua=IPHONE_MAIL)
    same_home = hit("open", SENT + 2 * MINUTE, ip="2001:db8:10:ff::9", ua=WINDOWS_CHROME)
    other = hit("open", SENT + 3 * MINUTE, ip="2001:db8:20::1", ua=WINDOWS_CHROME)
    verdicts = classify_message([first, same_home, other], rules)
    assert verdicts[same_home.id].reason == "no machine signal"
    assert verdicts[other.id].reason.startswith("likely forward")


def test_clicks_seconds_after_sending_are_scanners(rules: Rules) -> None:
    early = hit("click", SENT + 3 * SECOND, ua=WINDOWS_CHROME)
    later = hit("click", SENT + 40 * SECOND, ua=WINDOWS_CHROME, link=2)
    verdicts = classify_message([early, later], rules, sent_at_ms=SENT)
    assert verdicts[early.id].classification == Classification.SCANNER
    assert verdicts[early.id].reason == "clicked 3 s after sending"
    assert verdicts[later.id].classification == Classification.HUMAN


@pytest.mark.parametrize(
    "ua",
    [
        "curl/8.5.0",
        "python-requests/2.31.0",
        "Go-http-client/1.1",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Twitterbot/1.0",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " HeadlessChrome/124.0.6367.60 Safari/537.36",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "",
    ],
)
def test_bots(rules: Rules, ua: str) -> None:
    click = hit("click", SENT + 2 * 60 * MINUTE, ua=ua)
    assert classify_message([click], rules)[click.id].classification == Classification.BOT


@pytest.mark.parametrize("ua", [ANDROID_CUBOT, OUTLOOK_DESKTOP, IPHONE_SAFARI, WINDOWS_CHROME])
def test_people_are_not_bots(rules: Rules, ua: str) -> None:
    opened = hit("open", SENT + 2 * 60 * MINUTE, ua=ua)
    assert classify_message([opened], rules)[opened.id].classification == Classification.HUMAN


def _mixed_day() -> list[Hit]:
    at = SENT + 4 * MINUTE
    return [
        hit("open", SENT + 2 * SECOND, ip="17.58.101.5", ua=MPP),
        hit("click", SENT + 5 * SECOND, ua=WINDOWS_CHROME),
        *[
            hit("click", at + i * 300, ip="40.94.29.84", ua=SAFE_LINKS_CHROME, link=i)
            for i in range(1, 5)
        ],
        hit("click", at + 100, ip="40.94.29.84", ua=SAFE_LINKS_CHROME, honeypot=True),
        hit("open", SENT + 30 * MINUTE, ua=OUTLOOK_DESKTOP),
        hit("open", SENT + 30 * MINUTE, ip="198.51.100.77", ua=IPHONE_MAIL),  # same instant
        hit("click", SENT + 31 * MINUTE, ua=WINDOWS_CHROME, link=2),
        hit("open", SENT + 50 * MINUTE, ip="66.249.84.23", ua=GMAIL_PROXY),
    ]


def test_order_of_the_input_does_not_matter(rules: Rules) -> None:
    hits = _mixed_day()
    expected = classify_message(hits, rules, sent_at_ms=SENT, link_count=3)
    shuffler = random.Random(20240601)
    for _ in range(20):
        shuffled = hits[:]
        shuffler.shuffle(shuffled)
        assert classify_message(shuffled, rules, sent_at_ms=SENT, link_count=3) == expected


def test_rules_can_be_extended_and_bad_data_is_refused() -> None:
    extra = """
[thresholds]
click_after_send_seconds = 30

[[network]]
name = "Our office"
cidrs = ["192.0.2.0/24"]
open = "bot"
reason = "our own office network (internal test)"
source = "internal"
"""
    rules = Rules.load(extra_toml=extra)
    office = hit("open", SENT + MINUTE, ip="192.0.2.8", ua=WINDOWS_CHROME)
    late = hit("click", SENT + 20 * SECOND, ua=WINDOWS_CHROME)
    verdicts = classify_message([office, late], rules, sent_at_ms=SENT)
    assert verdicts[office.id].reason == "our own office network (internal test)"
    assert verdicts[late.id].reason == "clicked 20 s after sending"

    with pytest.raises(ValueError, match="not an IP network"):
        Rules.load(apple_ranges=["17.0.0.0/33"])
    with pytest.raises(ValueError, match="'source' is required"):
        Rules.load(extra_toml=extra.replace('source = "internal"', ""))
    with pytest.raises(ValueError, match="bad regex"):
        Rules.load(
            extra_toml='[[user_agent]]\nregex = "(("\nopen = "bot"\nreason = "r"\nsource = "s"\n'
        )
    with pytest.raises(ValueError, match="'cidrs' is required"):
        Rules.load(extra_toml=extra.replace('cidrs = ["192.0.2.0/24"]', "cidrs = []"))
    with pytest.raises(ValueError, match="thresholds"):
        Rules.load(extra_toml="[thresholds]\nclick_after_sending_seconds = 5\n")
    with pytest.raises(ValueError, match="not one of"):
        Rules.load(extra_toml=extra.replace('open = "bot"', 'open = "robot"'))


user_agents = st.sampled_from(
    [
        IPHONE_MAIL,
        IPHONE_SAFARI,
        WINDOWS_CHROME,
        OUTLOOK_DESKTOP,
        GMAIL_PROXY,
        MPP,
        "curl/8.5.0",
        "",
    ]
)
ips = st.sampled_from(
    [HOME_IP, "198.51.100.7", "17.58.101.5", "40.94.29.84", "2001:db8::1", "::ffff:40.107.1.2", "?"]
)


@st.composite
def message_hits(draw: st.DrawFn) -> list[Hit]:
    n = draw(st.integers(min_value=0, max_value=25))
    hits = []
    for i in range(n):
        kind: HitKind = draw(st.sampled_from(["open", "click"]))
        honeypot = kind == "click" and draw(st.booleans())
        hits.append(
            Hit(
                id=f"x{i}",
                kind=kind,
                message_id=MESSAGE,
                link=(0 if honeypot else draw(st.integers(1, 6))) if kind == "click" else None,
                destination=None,
                at_ms=SENT + draw(st.integers(-5 * SECOND, 2 * MINUTE)),
                ip=draw(ips),
                user_agent=draw(user_agents),
                method=draw(st.sampled_from(["GET", "HEAD", "get"])),
                honeypot=honeypot,
            )
        )
    return hits


@given(message_hits(), st.one_of(st.none(), st.integers(0, 8)), st.randoms())
def test_every_hit_gets_one_verdict_whatever_the_order(
    rules: Rules, hits: list[Hit], link_count: int | None, rnd: random.Random
) -> None:
    verdicts = classify_message(hits, rules, sent_at_ms=SENT, link_count=link_count)
    assert set(verdicts) == {h.id for h in hits}
    for verdict in verdicts.values():
        assert verdict.classification in set(Classification)
        assert verdict.reason.strip()
    shuffled = hits[:]
    rnd.shuffle(shuffled)
    assert classify_message(shuffled, rules, sent_at_ms=SENT, link_count=link_count) == verdicts
