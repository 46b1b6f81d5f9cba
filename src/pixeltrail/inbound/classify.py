"""What one message in a mailbox is: a bounce, a delayed-delivery notice, an auto-reply, a reply,
or something else, with what is needed to match it to the message it answers."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import parseaddr, parsedate_to_datetime
from enum import StrEnum

from pixeltrail.inbound.message_ids import parse_message_ids
from pixeltrail.inbound.reports import (
    FailedRecipient,
    Report,
    delivery_report,
    heuristic_report,
    original_message_id,
    text_report,
)
from pixeltrail.inbound.text import body_text, first_bytes, header_text

# Read at most this much of a message: headers, the text and a report's parts come first; what
# lies beyond (attachments, a quoted original's own attachments) is never needed to classify.
MAX_READ_BYTES = 2 * 1024 * 1024
TEXT_BYTES = 2048

_REPLY_SUBJECT = re.compile(r"^\s*(re|aw|sv|antw|vs|odp|r)\s*(\[\d+\])?\s*:", re.IGNORECASE)
_AUTO_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto reply|autoreply|auto-reply|out of office|"
    r"automatische antwort|réponse automatique)\b",
    re.IGNORECASE,
)
_MAILER = re.compile(r"^(mailer-daemon|post_?master|mail-daemon|mailer|double-bounce)\b", re.I)
_FORWARD_SUBJECT = re.compile(r"^\s*(fwd?|wg|tr|rv|enc)\s*:", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery status notification|failure notice|returned mail|delivery failure|"
    r"could not be delivered|delivery has failed|mail delivery failed|non-delivery|nondelivery",
    re.IGNORECASE,
)


class InboundKind(StrEnum):
    BOUNCE = "bounce"  # permanent failure of one or more recipients: suppress them
    DELAYED = "delayed"  # the server still tries: changes nothing
    AUTO_REPLY = "auto_reply"  # out of office, vacation, autoresponders: does not stop a sequence
    REPLY = "reply"  # a person answered: stops the sequence
    OTHER = "other"  # none of the above (a success report, a newsletter without reply headers)
    UNREADABLE = "unreadable"  # nothing could be read (empty, not a message)


@dataclass(frozen=True)
class Inbound:
    """A classified message. `reason` says why it got its kind; `truncated` that only its first
    MAX_READ_BYTES were read. Message ids are without angle brackets."""

    kind: InboundKind
    reason: str
    sender: str = ""
    subject: str = ""
    date: datetime | None = None
    message_id: str | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    text: str = ""
    recipients: tuple[FailedRecipient, ...] = ()
    original_message_id: str | None = None
    truncated: bool = False

    @property
    def referenced_ids(self) -> tuple[str, ...]:
        """Every id this message points at, the most telling first: the bounced original, then
        In-Reply-To, then References from the newest."""
        original = parse_message_ids(self.original_message_id)
        ids = (*original, *self.in_reply_to, *reversed(self.references))
        return tuple(dict.fromkeys(ids))


def classify_message(raw: bytes) -> Inbound:
    """Classify one raw message (RFC 5322 bytes). Never raises: a message that cannot be read is
    UNREADABLE with the reason."""
    if not raw.strip():
        return Inbound(InboundKind.UNREADABLE, "the message is empty")
    truncated = len(raw) > MAX_READ_BYTES
    try:
        msg = BytesParser(policy=policy.compat32).parsebytes(raw[:MAX_READ_BYTES])
    except RecursionError:
        return Inbound(InboundKind.UNREADABLE, "the message nests parts too deeply to read")
    except Exception as exc:  # the parser is lenient; this is a last resort
        return Inbound(InboundKind.UNREADABLE, f"the message cannot be parsed: {exc!r:.200}")
    try:
        return _classify(msg, truncated, len(raw))
    except RecursionError:
        return Inbound(InboundKind.UNREADABLE, "the message nests parts too deeply to read")
    except Exception as exc:
        return Inbound(InboundKind.UNREADABLE, f"the message cannot be read: {exc!r:.200}")


def _classify(msg: Message, truncated: bool, size: int) -> Inbound:
    if not msg.keys():
        return Inbound(InboundKind.OTHER, "the message has no headers", truncated=truncated)
    base = _common(msg, truncated)
    note = f" (only the first {MAX_READ_BYTES} of {size} bytes read)" if truncated else ""
    report = delivery_report(msg)
    mail_system = _from_mail_system(msg)
    if report is None and mail_system:
        report = text_report(msg) or heuristic_report(msg)
    if report is not None:
        return _reported(base, report, msg, note)
    if msg.get_content_type() == "multipart/report":  # a read receipt, an abuse report, ...
        reason = f"a report of type {msg.get_param('report-type')!s:.40} with no failed recipient"
        return _with(base, InboundKind.OTHER, reason + note)
    if auto := _automatic(msg):
        return _with(base, InboundKind.AUTO_REPLY, auto + note)
    if mail_system:
        reason = f"from a mail system ({mail_system}), but no failed recipient found in it{note}"
        return _with(base, InboundKind.OTHER, reason)
    if base.in_reply_to or base.references:
        header = "In-Reply-To" if base.in_reply_to else "References"
        return _with(base, InboundKind.REPLY, f"{header} names a message{note}")
    if _REPLY_SUBJECT.match(base.subject):
        return _with(base, InboundKind.REPLY, f"the subject starts with a reply prefix{note}")
    return _with(base, InboundKind.OTHER, f"no In-Reply-To, References or Re: subject{note}")


def _common(msg: Message, truncated: bool) -> Inbound:
    return Inbound(
        kind=InboundKind.OTHER,
        reason="",
        sender=parseaddr(header_text(msg, "from"))[1],
        subject=header_text(msg, "subject"),
        date=_date(header_text(msg, "date")),
        message_id=next(iter(parse_message_ids(header_text(msg, "message-id"))), None),
        in_reply_to=parse_message_ids(header_text(msg, "in-reply-to")),
        references=parse_message_ids(header_text(msg, "references")),
        text=first_bytes(body_text(msg), TEXT_BYTES),
        truncated=truncated,
    )


def _with(
    base: Inbound,
    kind: InboundKind,
    reason: str,
    recipients: tuple[FailedRecipient, ...] = (),
    original_message_id: str | None = None,
) -> Inbound:
    return dataclasses.replace(
        base,
        kind=kind,
        reason=reason,
        recipients=recipients,
        original_message_id=original_message_id,
    )


def _reported(base: Inbound, report: Report, msg: Message, note: str) -> Inbound:
    original = original_message_id(msg)
    original_id = next(iter(parse_message_ids(original)), None)
    # Heuristics read the quoted original's Message-ID as an address (Zoho's format).
    report = _without_ids(report, {original_id.lower()} if original_id else set())
    if report.failed:
        reason = f"{report.source} delivery report: failed{note}"
        return _with(
            base,
            InboundKind.BOUNCE,
            reason,
            recipients=report.failed,
            original_message_id=original_id,
        )
    if report.delayed:
        reason = f"{report.source} delivery report: delayed, still being tried{note}"
        return _with(
            base,
            InboundKind.DELAYED,
            reason,
            recipients=report.delayed,
            original_message_id=original_id,
        )
    reason = f"{report.source} delivery report: delivered{note}"
    return _with(base, InboundKind.OTHER, reason, original_message_id=original_id)


def _without_ids(report: Report, ids: set[str]) -> Report:
    return dataclasses.replace(
        report,
        failed=tuple(r for r in report.failed if r.address.lower() not in ids),
        delayed=tuple(r for r in report.delayed if r.address.lower() not in ids),
    )


def _automatic(msg: Message) -> str | None:
    """Why the message was sent by a machine rather than typed, or None (RFC 3834 and the
    headers of common autoresponders; X-Auto-Response-Suppress only asks others not to answer)."""
    # "auto-replied; owner-email=...", "no (typed by hand)": the keyword alone counts.
    auto_submitted = re.split(r"[;(\s]", header_text(msg, "auto-submitted").strip())[0].lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        if msg.get(name) is not None:
            return f"{name} header"
    precedence = header_text(msg, "precedence").strip().lower()
    if precedence in {"auto_reply", "bulk", "junk"}:
        return f"Precedence: {precedence}"
    # Exchange and Outlook stamp replies made by inbox rules and out-of-office with this header.
    if msg.get("x-ms-exchange-inbox-rules-loop") is not None:
        return "X-MS-Exchange-Inbox-Rules-Loop header (Exchange rule or out-of-office)"
    if "vacation" in header_text(msg, "x-apple-action").lower():
        return "X-Apple-Action: VACATION (iCloud vacation reply)"
    if _AUTO_SUBJECT.match(header_text(msg, "subject")):
        return "the subject says it is an automatic reply"
    return None


def _from_mail_system(msg: Message) -> str | None:
    """Why a message comes from a mail server rather than a person, or None: only those are
    searched for bounce formats, whose heuristics would find addresses in anyone's mail."""
    sender = parseaddr(header_text(msg, "from"))[1]
    subject = header_text(msg, "subject")
    if msg.get_content_type() == "multipart/report":
        return "a multipart/report"
    if header_text(msg, "return-path").strip() == "<>":
        return "Return-Path: <>"
    if _MAILER.match(sender):
        return f"From: {sender}"
    # A person answering or forwarding a bounce ("Fwd: Undelivered Mail ...") is no bounce.
    answered = _REPLY_SUBJECT.match(subject) or _FORWARD_SUBJECT.match(subject)
    if _BOUNCE_SUBJECT.search(subject) and not answered:
        return "its subject"
    return None


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000": the time is UTC, the zone unknown (RFC 5322 3.3)
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
