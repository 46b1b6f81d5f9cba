"""What comes back for a message of the built-in outbox, made up as the real thing would be: the
contact's reply, or the delivery status notification (RFC 3464) of a mail server that does not
know the address. Bytes in (the message as sent), bytes out (the message that comes back)."""

from __future__ import annotations

import email.policy
import re
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.utils import formatdate, getaddresses, make_msgid

from pixeltrail.platform.errors import Invalid

MAX_REPLY_CHARS = 10_000
QUOTED_LINES = 20
DEFAULT_REPLY = "Thanks for your message: this sounds interesting, tell me more."
STATUS = "5.1.1"
DIAGNOSTIC = "smtp; 550 5.1.1 user unknown"
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")


@dataclass(frozen=True)
class Sent:
    """What an answer needs of the message as it was sent."""

    message_id: str  # with its angle brackets, as in the header
    sender: str  # the mailbox's address
    recipient: str  # the contact's address
    subject: str
    date: str
    text: str
    headers: bytes  # the header block, as sent


def read_sent(raw: bytes) -> Sent:
    """The parts of a sent message an answer refers to; Invalid when it has no Message-ID or
    addresses to answer."""
    head = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    found = _MESSAGE_ID.search(str(head.get("Message-ID", "")))
    senders = getaddresses([str(head.get("From", ""))])
    recipients = getaddresses([str(head.get("To", ""))])
    if found is None or not senders or not recipients:
        raise Invalid("this message has no Message-ID, From or To to answer")
    end = _HEADER_END.search(raw)
    return Sent(
        message_id=found.group(0),
        sender=senders[0][1],
        recipient=recipients[0][1],
        subject=str(head.get("Subject", "")),
        date=str(head.get("Date", "")),
        text=_plain_text(raw),
        headers=raw[: end.start()] if end else raw,
    )


def _plain_text(raw: bytes) -> str:
    parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    part = parsed.get_body(preferencelist=("plain",))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):
        return ""
    return content if isinstance(content, str) else ""


def reply_text(text: str) -> str:
    """The reply's text as typed (empty: a friendly default); Invalid when too long."""
    text = text.replace("\r\n", "\n").strip()
    if len(text) > MAX_REPLY_CHARS:
        raise Invalid(f"the reply is longer than {MAX_REPLY_CHARS} characters", field="text")
    return text or DEFAULT_REPLY


def contact_reply(sent: Sent, text: str) -> bytes:
    """The contact's answer, as a mail client writes it: From the contact to the mailbox, `Re:`
    the subject, In-Reply-To and References naming the message, the original quoted below."""
    reply = EmailMessage(policy=email.policy.SMTP)
    reply["From"] = sent.recipient
    reply["To"] = sent.sender
    subject = " ".join(sent.subject.split())
    reply["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    reply["Date"] = formatdate(usegmt=True)
    reply["Message-ID"] = make_msgid(domain=_domain(sent.recipient))
    reply["In-Reply-To"] = sent.message_id
    reply["References"] = sent.message_id
    quoted = "\n".join(f"> {line}" for line in sent.text.splitlines()[:QUOTED_LINES])
    said = f"On {sent.date}, {sent.sender} wrote:\n{quoted}\n" if quoted else ""
    reply.set_content(f"{reply_text(text)}\n\n{said}", cte="quoted-printable")
    return reply.as_bytes()


def delivery_failure(sent: Sent) -> bytes:
    """The bounce a mail server sends back for a recipient it does not know: a multipart/report
    (report-type=delivery-status) from MAILER-DAEMON, the status 5.1.1 and the original's
    headers (text/rfc822-headers)."""
    reporting = f"mail.{_domain(sent.sender)}"
    recipient = sent.recipient
    kind = "rfc822" if recipient.isascii() else "utf-8"
    boundary = f"=_dsn_{secrets.token_hex(12)}"
    now = formatdate(usegmt=True)
    notice = (
        f"This is the mail system at host {reporting}.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients. It's attached below.\r\n\r\n"
        f"<{recipient}>: host mx.{_domain(recipient)} said: 550 5.1.1 user unknown\r\n"
    )
    status = (
        f"Reporting-MTA: dns; {reporting}\r\n"
        f"Arrival-Date: {sent.date or now}\r\n"
        "\r\n"
        f"Final-Recipient: {kind}; {recipient}\r\n"
        f"Original-Recipient: {kind}; {recipient}\r\n"
        "Action: failed\r\n"
        f"Status: {STATUS}\r\n"
        f"Remote-MTA: dns; mx.{_domain(recipient)}\r\n"
        f"Diagnostic-Code: {DIAGNOSTIC}\r\n"
    )
    head = (
        f"Return-Path: <>\r\n"
        f"Date: {now}\r\n"
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting}>\r\n"
        f"To: {sent.sender}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain=reporting)}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        f'\tboundary="{boundary}"\r\n'
    )
    parts = [
        ("text/plain; charset=us-ascii", notice.encode("ascii", "replace")),
        ("message/delivery-status; charset=utf-8", status.encode("utf-8")),
        ("text/rfc822-headers", sent.headers.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")),
    ]
    body = b"".join(
        f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n"
        for content_type, data in parts
    )
    return (
        head.encode("utf-8")
        + b"\r\nThis is a MIME-encapsulated message.\r\n\r\n"
        + body
        + f"--{boundary}--\r\n".encode()
    )


def _domain(address: str) -> str:
    domain = address.rpartition("@")[2].strip().lower()
    return domain if re.fullmatch(r"[a-z0-9.-]{1,253}", domain) else "localhost"
