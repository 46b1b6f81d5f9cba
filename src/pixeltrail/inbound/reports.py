"""Delivery reports: RFC 3464 delivery-status parts read field by field, and the non-standard
bounces of older mail servers (qmail, Exim, Exchange, ...) recognised by flufl.bounce."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import parseaddr

from flufl.bounce import all_failures

from pixeltrail.inbound.text import body_text, header_text, part_text, subparts, walk

_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_MESSAGE_ID_LINE = re.compile(r"^\s*Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_FINAL_RECIPIENT_LINE = re.compile(r"^(Final|Original)-Recipient:", re.IGNORECASE | re.MULTILINE)
_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")
# DragonFly Mail Agent: "There was an error delivering your mail to <a@example.org>."
_DRAGONFLY = re.compile(r"There was an error delivering your mail to <([^<>\s]+@[^<>\s]+)>")
# OpenSMTPD's and Yahoo's lists: "a@example.org: 550 5.1.1 ..." or "<a@example.org>:" and the
# server's answer on the next lines.
_ADDRESS_COLON = re.compile(r"^\s*<?([^\s<>@:]+@[^\s<>@:]+?)>?:(.*)$")
_DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_HEADER_TYPES = frozenset({"text/rfc822-headers", "message/global-headers"})
_ORIGINAL_TYPES = frozenset({"message/rfc822", "message/global"})
_MAX_DIAGNOSTIC = 500
# A report names the recipients of one message; more than this is no report we sent for.
MAX_RECIPIENTS = 1000


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient a report names: `action` is failed or delayed; `status` the enhanced status
    code (5.1.1) when the report gives one; `diagnostic` the remote server's words."""

    address: str
    action: str
    status: str | None = None
    diagnostic: str | None = None


@dataclass(frozen=True)
class Report:
    failed: tuple[FailedRecipient, ...]
    delayed: tuple[FailedRecipient, ...]
    delivered: bool
    source: str  # "RFC 3464" or "heuristic"


def delivery_report(msg: Message) -> Report | None:
    """The RFC 3464 report inside `msg`, or None when it has no delivery-status part."""
    blocks = [
        block
        for part in walk(msg)
        if part.get_content_type() in _DSN_TYPES
        for block in _status_blocks(part)
    ]
    return _report(blocks, "RFC 3464")


def text_report(msg: Message) -> Report | None:
    """RFC 3464 fields written into a text part instead of a delivery-status part (Amazon
    WorkMail's "Technical report"), or None."""
    blocks: list[Message] = []
    for part in walk(msg):
        if part.get_content_maintype() != "text" or part.is_multipart():
            continue
        text = part_text(part)
        if _FINAL_RECIPIENT_LINE.search(text):
            blocks.extend(HeaderParser().parsestr(chunk) for chunk in _BLANK_LINE.split(text))
    return _report(blocks, "RFC 3464 (in text)")


def _report(blocks: list[Message], source: str) -> Report | None:
    failed: list[FailedRecipient] = []
    delayed: list[FailedRecipient] = []
    delivered = False
    for block in blocks:
        action = (_field(block, "action").split() or [""])[0].lower()
        address = _recipient(block)
        if not address:
            continue
        recipient = FailedRecipient(
            address=address,
            action=action,
            status=_status(_field(block, "status")),
            diagnostic=_diagnostic(block),
        )
        # OpenSMTPD writes "Action: error"; some servers add a comment after the word.
        if action.startswith(("fail", "error")):
            failed.append(recipient)
        elif action.startswith("delay"):
            delayed.append(recipient)
        elif action in {"delivered", "relayed", "expanded"}:
            delivered = True
    if not failed and not delayed and not delivered:
        return None
    return Report(_unique(failed), _unique(delayed), delivered, source)


def _unique(recipients: list[FailedRecipient]) -> tuple[FailedRecipient, ...]:
    """Each address once (its first block), at most MAX_RECIPIENTS of them."""
    seen: dict[str, FailedRecipient] = {}
    for recipient in recipients:
        seen.setdefault(recipient.address.lower(), recipient)
    return tuple(seen.values())[:MAX_RECIPIENTS]


def heuristic_report(msg: Message) -> Report | None:
    """A bounce in one of the formats flufl.bounce knows (qmail, Exim, Postfix's, Exchange's,
    Yahoo's, ...), or None. Status and diagnostic are looked for in the report's own text."""
    try:
        temporary, permanent = all_failures(msg)
    except Exception:
        temporary, permanent = frozenset(), frozenset()
    text = body_text(msg)
    if not temporary and not permanent:
        permanent = frozenset(found.encode() for found in _DRAGONFLY.findall(text)[:1])
    if not temporary and not permanent:
        permanent = _listed_failures(text)
    if not temporary and not permanent:
        return None
    failed = tuple(_from_text(address, "failed", text) for address in sorted(permanent))
    delayed = tuple(_from_text(address, "delayed", text) for address in sorted(temporary))
    return Report(failed, delayed, False, "heuristic")


def original_message_id(msg: Message) -> str | None:
    """The Message-ID of the message a report is about: from its attached headers
    (text/rfc822-headers) or attached message, else a Message-ID line quoted in its text (qmail
    and Exim quote the original below their explanation)."""
    for part in walk(msg):
        ctype = part.get_content_type()
        if ctype in _HEADER_TYPES:
            headers = HeaderParser().parsestr(part_text(part), headersonly=True)
            if found := header_text(headers, "message-id"):
                return found
        elif ctype in _ORIGINAL_TYPES:
            inner = subparts(part)
            if inner and (found := header_text(inner[0], "message-id")):
                return found
    for part in walk(msg):
        if part.get_content_maintype() != "text" or part.is_multipart():
            continue
        if match := _MESSAGE_ID_LINE.search(part_text(part)):
            return match.group(1)
    return None


def _status_blocks(part: Message) -> list[Message]:
    if part.is_multipart():
        return subparts(part)
    # A report whose part the parser left as text (transfer-encoded, or wrapped in a text part).
    text = part_text(part)
    return [HeaderParser().parsestr(chunk) for chunk in _BLANK_LINE.split(text)]


def _field(block: Message, name: str) -> str:
    return header_text(block, name)


def _recipient(block: Message) -> str:
    # Original-Recipient is what we sent to; Final-Recipient what the last server saw (an alias
    # expanded, or rewritten). Prefer ours.
    for name in ("original-recipient", "final-recipient", "x-actual-recipient"):
        value = _field(block, name)
        address = value.partition(";")[2] if ";" in value else value  # "rfc822; a@example.org"
        address = parseaddr(address.strip())[1] or address.strip().strip("<>")
        if "@" in address:
            return address
    return ""


def _status(value: str) -> str | None:
    match = _STATUS.search(value)
    return match.group(1) if match else None


def _diagnostic(block: Message) -> str | None:
    value = _field(block, "diagnostic-code")
    _type, sep, text = value.partition(";")  # "smtp; 550 5.1.1 ..."
    text = (text if sep else value).strip()
    return text[:_MAX_DIAGNOSTIC] or None


def _listed_failures(text: str) -> frozenset[bytes]:
    """Addresses each followed (on its line or the next three) by a permanent status code."""
    lines = text.splitlines()
    found: set[bytes] = set()
    for i, line in enumerate(lines):
        if not (match := _ADDRESS_COLON.match(line)):
            continue
        answer = " ".join([match.group(2), *lines[i + 1 : i + 4]])
        status = _STATUS.search(answer)
        if status and status.group(1).startswith("5."):
            found.add(match.group(1).encode("utf-8", errors="replace"))
    return frozenset(found)


def _from_text(address_bytes: bytes, action: str, text: str) -> FailedRecipient:
    """The status code nearest the address: on its line or the few after it (qmail writes the
    address, then the remote server's answer), else the first one in the text."""
    address = address_bytes.decode("ascii", errors="replace")
    lines = text.splitlines()
    at = next((i for i, line in enumerate(lines) if address.lower() in line.lower()), None)
    near = lines[at : at + 6] if at is not None else []
    for line in (*near, *lines):
        if found := _STATUS.search(line):
            diagnostic = line.strip()[:_MAX_DIAGNOSTIC]
            return FailedRecipient(address, action, found.group(1), diagnostic)
    return FailedRecipient(address, action)
