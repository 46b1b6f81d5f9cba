"""Classifying inbound mail: real bounces, delays and auto-replies of many mail servers, replies
to our messages, and input built to break a parser."""

from __future__ import annotations

import csv
import hashlib
import time
from pathlib import Path

import pytest

from pixeltrail.inbound import (
    MAX_READ_BYTES,
    InboundKind,
    classify_message,
    our_message_id,
    parse_message_ids,
)

SAMPLES = Path(__file__).parent / "samples"

# sample: (failed recipients with their status codes, the original's Message-ID or None)
BOUNCES: dict[str, tuple[dict[str, str | None], str | None]] = {
    "rfc3464-01.eml": (
        {"userunknown@bouncehammer.jp": "5.1.1"},
        "E1C50F1B-1C83-4820-BC36-AC6FBFBE8568@example.org",
    ),
    "lhost-postfix-02.eml": (
        {"filtered@example.co.jp": "5.2.1", "userunknown@example.co.jp": "5.1.1"},
        None,
    ),
    "lhost-postfix-03.eml": (
        {"kijitora@example.net": "5.0.0"},
        "20140701000000.000000000000@e1.example.ne.jp",
    ),
    "lhost-exim-01.eml": ({"kijitora@example.ed.jp": "5.7.0"}, "E1P1ce6-000Egt-GZ@e1.example.org"),
    "lhost-exim-02.eml": (
        {"kijitora@example.jp": "5.1.1", "sabatora@example.jp": "5.2.1"},
        "E1X58pB-0004bW-2s@marutamachi.example.org",
    ),
    "lhost-qmail-01.eml": (
        {"kijitora@example.ne.jp": "5.5.0"},
        "000000000.9999999999999.JavaMail.postmaster@mailhub",
    ),
    "lhost-qmail-03.eml": (
        {"kijitora@example.org": "5.7.1"},
        "00000000000000.5529.qmail@nijo.example.jp",
    ),
    "lhost-exchange2003-02.eml": (
        {"kijitora@example.co.jp": None, "mikeneko@example.co.jp": None},
        "000000000000000.0000000@example.jp",
    ),
    "lhost-exchange2007-01.eml": ({"mikeneko@example.co.jp": "5.1.1"}, None),
    "lhost-office365-03.eml": (
        {"kijitora@example.com": "5.1.0"},
        "000000000000.2222.22222222222200000000@NEKO-NYAAN",
    ),
    "lhost-outlook-02.eml": (
        {"kijitora@example.jp": "5.1.1"},
        "BLU436-SMTP6688F46CFBFB4294F252B1BA770@phx.gbl",
    ),
    "lhost-gmail-01.eml": (
        {"userunknown@example.jp": "5.1.1"},
        "D992C2C3-F175-4C4D-97E2-53A90E4E5BF5@gmail.com",
    ),
    "lhost-sendmail-02.eml": (
        {"userunknown@example.org": "5.1.1", "filtered@example.com": "5.2.1"},
        "C6625D0F-A302-4980-BEAB-2AF883EA0116@example.jp",
    ),
    "lhost-courier-02.eml": (
        {"kijitora@example.jp": "5.0.0"},
        "201012100421.oBA4LJFU042012@1jo.example.org",
    ),
    "lhost-opensmtpd-02.eml": (
        {"mailboxfull@example.jp": "5.2.2", "userunknown@example.jp": "5.1.1"},
        None,
    ),
    "lhost-amazonses-01.eml": (
        {"shironeko@example.co.jp": "5.0.0"},
        "000001321defbd2a-788e31c8-2be1-422f-a8d4-cf7765cc9ed7-000000@email.amazonses.com",
    ),
    "lhost-amazonworkmail-01.eml": (
        {"kijitora@example.jp": "5.1.1"},
        "000001523f1865dd-0dbfd06e-bfce-4637-b049-3318ea42f98a-000000@us-west-2.amazonses.com",
    ),
    "lhost-dragonfly-01.eml": (
        {"pseudo-local-part@google.example.com": "5.7.26"},
        "66681288.e06d1.3824794@df.example.jp",
    ),
    "lhost-yahoo-01.eml": (
        {"kijitora@example.org": "5.1.1"},
        "6AE6249A-E7A8-4980-862C-F499F6B8E7C5@y.example.co.jp",
    ),
    "lhost-gmx-02.eml": (
        {"shironeko@example.jp": "5.1.1"},
        "trinity-fde69d4e-12a0-462b-9dcd-7312ce506d03-1417194013122@3capp-mailcom-lxa07",
    ),
}
DELAYED = {
    "rfc3464-07.eml": "kijitora@example.net",
    "lhost-outlook-06.eml": "kijitora@example.com",
    "lhost-gmail-06.eml": "kijitora@example.jp",
}
AUTO_REPLIES = {
    "rfc3834-01.eml": "Auto-Submitted: auto-replied",
    "rfc3834-02.eml": "X-MS-Exchange-Inbox-Rules-Loop",  # Exchange "Automatic reply:"
    "rfc3834-03.eml": "X-Apple-Action: VACATION",
    "rfc3834-04.eml": "X-MS-Exchange-Inbox-Rules-Loop",
    "rfc3834-05.eml": "Auto-Submitted: auto-replied",
    "rfc3834-06.eml": "Auto-Submitted: auto-replied",
}
OTHERS = ["is-not-bounce-01.eml", "is-not-bounce-02.eml", "arf-01.eml"]


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_every_sample_is_listed_with_its_source_and_checked() -> None:
    with (SAMPLES / "SOURCES.tsv").open(newline="") as sources:
        rows = {row["file"]: row for row in csv.DictReader(sources, delimiter="\t")}
    files = {path.name for path in SAMPLES.glob("*.eml")}
    assert files == set(rows)
    assert files == {*BOUNCES, *DELAYED, *AUTO_REPLIES, *OTHERS}
    for name, row in rows.items():
        assert hashlib.sha256(_sample(name)).hexdigest() == row["sha256"], name
        assert row["license"] == "BSD-2-Clause"


@pytest.mark.parametrize("name", sorted(BOUNCES))
def test_bounces_name_each_failed_recipient_with_its_status(name: str) -> None:
    expected, original = BOUNCES[name]
    result = classify_message(_sample(name))
    assert result.kind is InboundKind.BOUNCE, result.reason
    assert {r.address: r.status for r in result.recipients} == expected
    assert all(r.action in {"failed", "error"} for r in result.recipients)
    assert result.original_message_id == original
    if original:
        assert result.referenced_ids[0] == original


def test_a_dsn_gives_the_remote_servers_words() -> None:
    result = classify_message(_sample("lhost-postfix-03.eml"))
    (recipient,) = result.recipients
    assert recipient.diagnostic
    assert recipient.diagnostic.startswith("550")
    assert result.reason.startswith("RFC 3464")


@pytest.mark.parametrize("name", sorted(DELAYED))
def test_delays_are_not_bounces(name: str) -> None:
    result = classify_message(_sample(name))
    assert result.kind is InboundKind.DELAYED, result.reason
    assert [r.address for r in result.recipients] == [DELAYED[name]]


@pytest.mark.parametrize("name", sorted(AUTO_REPLIES))
def test_auto_replies(name: str) -> None:
    result = classify_message(_sample(name))
    assert result.kind is InboundKind.AUTO_REPLY
    assert AUTO_REPLIES[name] in result.reason
    assert not result.recipients


def test_an_auto_reply_keeps_what_matches_it_to_our_message() -> None:
    result = classify_message(_sample("rfc3834-03.eml"))
    assert result.in_reply_to == ("25203A4E-F90F-4A14-BF51-3E7B9D39BE8E@libsisimai.org",)
    assert result.sender == "kijitora@apple.example.com"
    assert result.text.strip() == "I'm only sleeping."


@pytest.mark.parametrize("name", OTHERS)
def test_other_mail_is_neither_bounce_nor_reply(name: str) -> None:
    result = classify_message(_sample(name))
    assert result.kind is InboundKind.OTHER, result.reason
    assert not result.recipients


def test_a_message_we_quote_is_not_read_as_a_bounce() -> None:
    # A person forwarding an attached message: not from a mail system, no report.
    result = classify_message(_sample("is-not-bounce-02.eml"))
    assert result.text.strip() == "it shouldn't be considered as bounce"


OUR_ID = "AAECAwQFBgcICQoL"


def _reply(headers: str, body: bytes, content_type: str = "text/plain; charset=utf-8") -> bytes:
    head = (
        "From: Ana Lima <ana@customer.example>\r\n"
        "To: you@acme.example\r\n"
        "Date: Tue, 08 Dec 2026 09:15:00 +0100\r\n"
        "Message-ID: <reply-1@customer.example>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n{headers}\r\n"
    )
    return head.encode() + body


def test_a_reply_to_our_message() -> None:
    raw = _reply(
        f"Subject: Re: Quick question\r\nIn-Reply-To: <{OUR_ID}@acme.example>\r\n"
        f"References: <older@acme.example>\r\n <{OUR_ID}@acme.example>\r\n",
        b"Sounds good, call me on Friday.\r\n\r\n> Hi Ana,\r\n",
    )
    result = classify_message(raw)
    assert result.kind is InboundKind.REPLY
    assert result.sender == "ana@customer.example"
    assert result.subject == "Re: Quick question"
    assert result.date is not None
    assert result.date.isoformat() == "2026-12-08T08:15:00+00:00"
    assert result.message_id == "reply-1@customer.example"
    assert result.in_reply_to == (f"{OUR_ID}@acme.example",)
    assert result.references == ("older@acme.example", f"{OUR_ID}@acme.example")
    assert result.text.startswith("Sounds good, call me on Friday.")
    assert [our_message_id(i) for i in result.referenced_ids] == [OUR_ID, None]


def test_a_reply_with_only_a_re_subject() -> None:
    result = classify_message(_reply("Subject: RE: Quick question\r\n", b"Yes.\r\n"))
    assert result.kind is InboundKind.REPLY
    assert "subject" in result.reason
    assert result.referenced_ids == ()


def test_a_forwarded_bounce_is_no_bounce() -> None:
    raw = _reply(
        "Subject: Fwd: Undelivered Mail Returned to Sender\r\n",
        b"What does this mean?\r\n\r\n<bob@customer.example>: 550 5.1.1 User unknown\r\n",
    )
    result = classify_message(raw)
    assert result.kind is InboundKind.OTHER
    assert not result.recipients


def test_the_same_text_from_a_mail_server_is_a_bounce() -> None:
    raw = _reply(
        "Subject: Undelivered Mail Returned to Sender\r\n",
        b"I'm sorry.\r\n\r\n<bob@customer.example>: 550 5.1.1 User unknown\r\n",
    )
    result = classify_message(raw)
    assert result.kind is InboundKind.BOUNCE
    assert [(r.address, r.status) for r in result.recipients] == [("bob@customer.example", "5.1.1")]


def test_a_new_message_is_other() -> None:
    result = classify_message(_reply("Subject: Hello\r\n", b"Hi\r\n"))
    assert result.kind is InboundKind.OTHER


def test_x_auto_response_suppress_alone_is_a_person() -> None:
    raw = _reply(
        f"Subject: Re: Quick question\r\nIn-Reply-To: <{OUR_ID}@acme.example>\r\n"
        "X-Auto-Response-Suppress: All\r\nAuto-Submitted: No (typed)\r\n",
        b"Typed by hand.\r\n",
    )
    assert classify_message(raw).kind is InboundKind.REPLY


@pytest.mark.parametrize(
    "header",
    [
        "X-Autoreply: yes",
        "X-Autorespond: on",
        "Precedence: auto_reply",
        "Precedence: bulk",
        "Precedence: junk",
        "Auto-Submitted: auto-replied (vacation)",
        "Auto-Submitted: auto-generated",
    ],
)
def test_autoresponder_headers(header: str) -> None:
    raw = _reply(
        f"Subject: Re: Quick question\r\nIn-Reply-To: <{OUR_ID}@acme.example>\r\n{header}\r\n",
        b"Away.\r\n",
    )
    result = classify_message(raw)
    assert result.kind is InboundKind.AUTO_REPLY
    assert result.in_reply_to == (f"{OUR_ID}@acme.example",)


def test_the_html_part_as_text_when_there_is_no_plain_part() -> None:
    html = (
        "<html><head><title>t</title><style>p{color:red}</style></head><body>"
        "<p>Caf&eacute; on <b>Friday</b>?</p><script>alert(1)</script><div>Ana</div></body></html>"
    )
    raw = _reply("Subject: Re: x\r\n", html.encode(), "text/html; charset=utf-8")
    result = classify_message(raw)
    assert result.text == "Café on Friday?\n\nAna"


def test_attachments_are_not_the_text() -> None:
    raw = _reply(
        "Subject: Re: x\r\n",
        b"--b\r\nContent-Type: text/plain; name=a.txt\r\nContent-Disposition: attachment\r\n\r\n"
        b"ATTACHED\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Mine</p>\r\n--b--\r\n",
        'multipart/mixed; boundary="b"',
    )
    assert classify_message(raw).text == "Mine"


def test_the_text_is_cut_at_2_kb_on_a_character_boundary() -> None:
    raw = _reply("Subject: Re: x\r\n", ("é" * 5000).encode())
    text = classify_message(raw).text
    assert len(text.encode()) <= 2048
    assert text == "é" * 1024


@pytest.mark.parametrize(
    ("charset", "expected"),
    [
        ("windows-1252", "Café"),
        ("rot13", "Caf\N{REPLACEMENT CHARACTER}"),
        ("undefined", "Caf\N{REPLACEMENT CHARACTER}"),
        ("x-no-such-charset", "Caf\N{REPLACEMENT CHARACTER}"),
        ("base64", "Caf\N{REPLACEMENT CHARACTER}"),
    ],
)
def test_any_charset_is_read_or_replaced_never_raised(charset: str, expected: str) -> None:
    raw = _reply(
        f"Subject: =?{charset}?Q?Re=3A_Caf=E9?=\r\n", b"Caf\xe9", f"text/plain; charset={charset}"
    )
    result = classify_message(raw)
    assert result.kind is InboundKind.REPLY
    assert result.text == expected
    assert result.subject == f"Re: {expected}"


def test_truncated_mime_is_read_as_far_as_it_goes() -> None:
    raw = _sample("lhost-postfix-03.eml")
    cut = raw[: raw.index(b"Content-Type: message/rfc822") + 40]  # no closing boundary
    result = classify_message(cut)
    assert result.kind is InboundKind.BOUNCE
    assert [r.address for r in result.recipients] == ["kijitora@example.net"]
    assert classify_message(raw[:300]).kind is not InboundKind.BOUNCE


def test_a_30_mb_message_is_read_only_as_far_as_the_cap() -> None:
    raw = _reply(
        f"Subject: Re: the files\r\nIn-Reply-To: <{OUR_ID}@acme.example>\r\n",
        b"--b\r\nContent-Type: text/plain\r\n\r\nHere they are.\r\n--b\r\n"
        b"Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + b"QUFBQUFB" * (30 * 1024 * 1024 // 8)
        + b"\r\n--b--\r\n",
        'multipart/mixed; boundary="b"',
    )
    started = time.monotonic()
    result = classify_message(raw)
    assert time.monotonic() - started < 10
    assert result.kind is InboundKind.REPLY
    assert result.truncated
    assert f"first {MAX_READ_BYTES} of {len(raw)} bytes" in result.reason
    assert result.text.strip() == "Here they are."


def test_deeply_nested_messages_are_unreadable_not_a_crash() -> None:
    inner = b"Subject: bottom\r\n\r\nbottom\r\n"
    for _ in range(3000):
        inner = b"Content-Type: message/rfc822\r\n\r\n" + inner
    result = classify_message(b"From: a@b.example\r\nSubject: Re: x\r\n" + inner)
    assert result.kind is InboundKind.UNREADABLE
    assert result.reason == "the message nests parts too deeply to read"


def test_a_report_nested_in_itself_ends() -> None:
    part = b"Content-Type: text/plain\r\n\r\nx\r\n"
    for depth in range(200):
        boundary = f"b{depth}".encode()
        part = (
            b"Content-Type: multipart/report; report-type=delivery-status; boundary="
            + boundary
            + b"\r\n\r\n--"
            + boundary
            + b"\r\nContent-Type: message/rfc822\r\n\r\n"
            + part
            + b"\r\n--"
            + boundary
            + b"--\r\n"
        )
    result = classify_message(b"From: MAILER-DAEMON@mx.example\r\n" + part)
    assert result.kind is InboundKind.OTHER
    assert result.reason == "a report of type delivery-status with no failed recipient"


@pytest.mark.parametrize(
    "raw",
    [b"", b"   \r\n", b"\r\n\r\nno headers at all", b"just some words", b"\x00\xff\xfe" * 100],
)
def test_no_headers_at_all(raw: bytes) -> None:
    result = classify_message(raw)
    if raw.strip():
        assert (result.kind, result.reason) == (InboundKind.OTHER, "the message has no headers")
    else:
        assert (result.kind, result.reason) == (InboundKind.UNREADABLE, "the message is empty")


def test_broken_headers_never_raise() -> None:
    raw = (
        b"From: \xff\xfe <@@@>\r\nDate: not a date\r\nSubject: =?utf-8?B?###?=\r\n"
        b"In-Reply-To: <<<>>>\r\nContent-Type: multipart/mixed\r\n\r\n--\r\n"
    )
    result = classify_message(raw)
    assert (result.kind, result.date, result.in_reply_to) == (InboundKind.OTHER, None, ())


def test_a_report_names_each_recipient_once() -> None:
    block = b"Final-Recipient: rfc822; Bob@customer.example\r\nAction: failed\r\n\r\n"
    raw = (
        b"From: MAILER-DAEMON@mx.example\r\nContent-Type: multipart/report;"
        b" report-type=delivery-status; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: message/delivery-status\r\n\r\n"
        + block * 5000
        + b"Final-Recipient: rfc822; eve@customer.example\r\nAction: failed\r\n\r\n--b--\r\n"
    )
    result = classify_message(raw)
    assert result.kind is InboundKind.BOUNCE
    assert [r.address for r in result.recipients] == [
        "Bob@customer.example",
        "eve@customer.example",
    ]


def test_our_message_id() -> None:
    assert our_message_id(f"<{OUR_ID}@acme.example>") == OUR_ID
    assert our_message_id(f"{OUR_ID}@xn--mnchen-3ya.example") == OUR_ID
    assert our_message_id("<CAByYQsFyrGN=Aa73R9b@mail.gmail.com>") is None
    assert our_message_id(f"<{OUR_ID}x@acme.example>") is None
    assert our_message_id(OUR_ID) is None
    assert our_message_id(f"<{OUR_ID}@>") is None


def test_parse_message_ids() -> None:
    assert parse_message_ids("<a@x> <b@y>\r\n <a@x>") == ("a@x", "b@y")
    assert parse_message_ids("a@x") == ("a@x",)
    assert parse_message_ids(None) == ()
    assert len(parse_message_ids(" ".join(f"<{i}@x>" for i in range(500)))) == 100
