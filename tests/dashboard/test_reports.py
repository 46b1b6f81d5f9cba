"""The Report tab: the API's numbers, times in the account's zone, machines apart with their
reasons, the chart, contacts and links, the CSV export; hostile data shown as text; isolation."""

from __future__ import annotations

import csv
import html
import io
import re

import httpx
from sqlalchemy import update

from pixeltrail.platform.accounts.accounts import create_account, create_api_key
from pixeltrail.platform.accounts.users import user_by_email
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import accounts, campaigns, contacts
from pixeltrail.tracking.hits import Hit, new_event_id

from ..reports.conftest import NAMES, SENT, Campaign, H, M, make_campaign, tell_story
from .conftest import Site, User

OWNER = "owner@acme.example"
XSS = '<script>alert("x")</script>'


def _owner_with_story(site: Site, timezone: str = "Europe/Paris") -> tuple[User, Campaign]:
    owner = site.sign_up(OWNER)
    with write_transaction(site.engine) as conn:
        user = user_by_email(conn, OWNER)
        assert user is not None
        conn.execute(
            update(accounts).where(accounts.c.id == user.account_id).values(timezone=timezone)
        )
    campaign = make_campaign(site.engine, user.account_id, NAMES, failed=["fay"])
    tell_story(campaign)
    return owner, campaign


def _api_report(site: Site, campaign: Campaign) -> dict[str, object]:
    with write_transaction(site.engine) as conn:
        key = create_api_key(conn, campaign.account_id, "test")
    answer = httpx.get(
        f"{site.url}/api/v1/campaigns/{campaign.id}/report",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200
    report: dict[str, object] = answer.json()
    return report


def _stat(page: str, element_id: str) -> str:
    """The text of one headline number's box (tags dropped, spaces squeezed)."""
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</div>\s*</div>', page, re.S)
    assert found, element_id
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def _row_of(page: str, email: str) -> str:
    found = re.search(rf"<tr>\s*<td>{re.escape(email)}.*?</tr>", page, re.S)
    assert found, email
    return found.group(0)


def test_report_shows_the_api_numbers_with_machines_apart(site: Site) -> None:
    owner, campaign = _owner_with_story(site)
    report = _api_report(site, campaign)
    page = owner.get(f"/campaigns/{campaign.id}/report")
    assert page.status_code == 200
    text = page.text
    opens, clicks = report["opens"], report["clicks"]
    assert isinstance(opens, dict) and isinstance(clicks, dict)
    opened = _stat(text, "stat-opened")
    assert opened.startswith(f"{opens['human']['unique']} opened")
    assert f"{opens['human']['total']} opens in all" in opened
    rates = report["rates"]
    assert isinstance(rates, dict)
    assert f"{rates['open'] * 100:.1f}%" in opened
    clicked = _stat(text, "stat-clicked")
    assert clicked.startswith(f"{clicks['human']['unique']} clicked")
    assert f"{clicks['human']['total']} clicks in all" in clicked
    for label in ("sent", "failed", "bounced", "unsubscribed"):
        assert re.search(rf'class="value">{report[label]}</div><div class="label">{label}', text)
    machine = _stat(text, "stat-machine-opens")
    assert machine.startswith(f"{opens['machine']['total']} machine opens")
    # Hovering the machine numbers says which machines, and why.
    title = re.search(r'id="stat-machine-opens" title="([^"]*)"', text)
    assert title
    hover = html.unescape(title.group(1))
    assert "Apple Mail Privacy Protection: 1" in hover.splitlines()[0]
    assert "security scanner: 1" in hover.splitlines()[0]
    assert "Apple Mail Privacy Protection: user agent is exactly 'Mozilla/5.0': 1" in hover
    click_title = re.search(r'id="stat-machine-clicks" title="([^"]*)"', text)
    assert click_title
    assert "honeypot link clicked" in html.unescape(click_title.group(1))
    # The Report tab of the campaign's tabs is the current one.
    assert re.search(rf'href="/campaigns/{campaign.id}/report" aria-current="page"', text)


def test_times_are_in_the_account_time_zone(site: Site) -> None:
    owner, campaign = _owner_with_story(site, "Europe/Paris")
    text = owner.get(f"/campaigns/{campaign.id}/report").text
    ann = _row_of(text, "ann@example.com")
    # Opened at 23:00 UTC (midnight in Paris, winter time) and at 03:00 UTC after the clocks
    # went forward (05:00 in Paris, summer time).
    assert "2026-03-29 00:00" in ann
    assert "2026-03-29 05:00" in ann
    assert "2026-03-28 23:00" not in ann
    assert "https://shop.example.com/spring?utm_source=mail" in html.unescape(ann)
    assert "Ann" in ann  # the name beside the address
    cy = _row_of(text, "cy@example.com")
    assert "Microsoft" in cy or "scanner" in cy.lower()
    assert "Europe/Paris" in text


def test_chart_draws_people_and_machines_by_local_hour(site: Site) -> None:
    owner, campaign = _owner_with_story(site, "Europe/Paris")
    text = owner.get(f"/campaigns/{campaign.id}/report?granularity=hour").text
    svg = re.search(r"<svg class=\"chart\".*?</svg>", text, re.S)
    assert svg
    chart = svg.group(0)
    # ann's first open: the Paris hour starting at midnight holds one open by a person.
    assert "Mar 29 00:00: opens 1 by people, 0 by machines" in chart
    # bob's Mail Privacy Protection prefetch and cy's scanner: machines, at 23:00 Paris time.
    assert re.search(r"Mar 28 23:00: opens \d+ by people, [1-9]\d* by machines", chart)
    assert 'class="bar open machine"' in chart and 'class="bar open human"' in chart
    by_day = owner.get(f"/campaigns/{campaign.id}/report?granularity=day").text
    assert "Opens and clicks per day" in by_day
    assert "Mar 29:" in by_day


def test_contacts_are_paged_by_cursor(site: Site) -> None:
    owner, campaign = _owner_with_story(site)
    for n in range(30):
        campaign.add_message(f"extra{n:02d}")
    first = owner.get(f"/campaigns/{campaign.id}/report").text
    shown = re.findall(r"<tr>\s*<td>([^<]+@example\.com)", first)
    assert len(shown) == 25
    following = re.search(r'href="(/campaigns/[^"]+/report\?cursor=[^"]+)">Next page', first)
    assert following
    second = owner.get(html.unescape(following.group(1))).text
    rest = re.findall(r"<tr>\s*<td>([^<]+@example\.com)", second)
    sent = len(NAMES) - 1 + 30  # fay's message failed
    assert len(rest) == sent - 25
    assert not set(shown) & set(rest)
    assert "Next page" not in second


def test_live_fragment_refreshes_while_active(site: Site) -> None:
    owner, campaign = _owner_with_story(site)
    page = owner.get(f"/campaigns/{campaign.id}/report").text
    assert f'data-refresh="/campaigns/{campaign.id}/report/live" data-every="5"' in page
    before = owner.get(f"/campaigns/{campaign.id}/report/live")
    assert before.status_code == 200
    assert "<html" not in before.text  # a fragment for the section, not a page
    campaign.record(campaign.hit("gus", "open", SENT + 40 * H, "198.51.100.50", "Thunderbird"))
    after = owner.get(f"/campaigns/{campaign.id}/report/live").text
    assert _stat(after, "stat-opened") != _stat(before.text, "stat-opened")
    with write_transaction(site.engine) as conn:
        conn.execute(update(campaigns).where(campaigns.c.id == campaign.id).values(status="paused"))
    assert "data-refresh" not in owner.get(f"/campaigns/{campaign.id}/report").text


def test_csv_export_escapes_formulas(site: Site) -> None:
    owner, campaign = _owner_with_story(site)
    campaign.add_message("=cmd")  # the address =cmd@example.com: valid, and a formula
    with write_transaction(site.engine) as conn:
        conn.execute(
            update(contacts)
            .where(contacts.c.id == campaign.contact["=cmd"])
            .values(first_name="=cmd()")
        )
    answer = owner.get(f"/campaigns/{campaign.id}/report.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == len(NAMES)  # the sent ones, and =cmd
    emails = {row["email"] for row in rows}
    assert "'=cmd@example.com" in emails
    assert not any(cell.startswith("=") for row in rows for cell in row.values())
    ann = next(row for row in rows if row["email"] == "ann@example.com")
    assert ann["open_count"] == "2" and ann["click_count"] == "1"
    # Without a session: sign in first, nothing leaks.
    anonymous = site.visitor().get(f"/campaigns/{campaign.id}/report.csv")
    assert anonymous.status_code == 303
    assert "=cmd" not in anonymous.text


def test_hostile_names_agents_and_urls_render_as_text(site: Site) -> None:
    owner, campaign = _owner_with_story(site)
    campaign.add_message("mallory")
    with write_transaction(site.engine) as conn:
        conn.execute(
            update(contacts)
            .where(contacts.c.id == campaign.contact["mallory"])
            .values(first_name=XSS, last_name='"><img src=x onerror=alert(1)>')
        )
    hostile_url = f"javascript:alert(1)//{XSS}"
    campaign.record(
        Hit(
            new_event_id(), "click", campaign.message["mallory"], 1, hostile_url,
            SENT + 2 * H, "198.51.100.77", XSS, "GET", False,
        ),
        Hit(
            new_event_id(), "click", campaign.message["mallory"], 2,
            f"https://ok.example/?q={XSS}", SENT + 2 * H + M, "198.51.100.77", XSS, "GET", False,
        ),
    )  # fmt: skip
    text = owner.get(f"/campaigns/{campaign.id}/report").text
    assert "<script>" not in text
    assert "<img src=x" not in text
    assert "&lt;script&gt;" in text  # shown, as text
    assert 'href="javascript:' not in text  # a non-web destination is never a link
    assert 'href="https://ok.example/?q=&lt;script&gt;' in text


def test_another_accounts_campaign_is_not_found(site: Site) -> None:
    owner, _mine = _owner_with_story(site)
    with write_transaction(site.engine) as conn:
        other, _key = create_account(conn, "Other", "boss@other.example")
    theirs = make_campaign(site.engine, other.id, ["zed"])
    for path in ("", "/live", ".csv"):
        assert owner.get(f"/campaigns/{theirs.id}/report{path}").status_code == 404
        assert owner.get(f"/campaigns/cmp_missing/report{path}").status_code == 404


def test_a_campaign_without_activity_says_so(site: Site) -> None:
    owner = site.sign_up(OWNER)
    with write_transaction(site.engine) as conn:
        user = user_by_email(conn, OWNER)
        assert user is not None
    quiet = make_campaign(site.engine, user.account_id, ["ann"])
    text = owner.get(f"/campaigns/{quiet.id}/report").text
    assert _stat(text, "stat-opened").startswith("0 opened · 0.0%")
    assert "No opens or clicks yet" in text
    assert "No link has been clicked yet." in text
    assert "no machine activity" in text
    assert "ann@example.com" in _row_of(text, "ann@example.com")
