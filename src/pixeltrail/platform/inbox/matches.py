"""Finding the message of ours an inbound message answers: by its ids, a bounce's recipient, or
(weaker) a contact's `Re:` of a subject sent to them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import Connection, Select, select

from pixeltrail.inbound import Inbound, InboundKind, our_message_id
from pixeltrail.platform.campaigns.templates import render
from pixeltrail.platform.errors import PlatformError
from pixeltrail.platform.inbox.matching import MatchedBy
from pixeltrail.store.message_status import MessageStatus
from pixeltrail.store.schema import campaign_steps, campaigns, contacts, enrollments, messages


class Match(NamedTuple):
    message_id: str
    campaign_id: str
    contact_id: str
    email: str  # the contact's address, to which the message went
    matched_by: MatchedBy


# Reply prefixes of common mail clients in many languages, repeated ("Re: AW: Re[2]:").
_REPLY_PREFIX = re.compile(
    r"^\s*(re|aw|sv|vs|antw|antwort|odp|ref|réf|rif|res|r|ynt|atb|vá|отв|回复|回覆|答复|"
    r"ΑΠ|σχετ)\s*(\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")
# A sent message that a reply or a bounce can still be about.
_WENT_OUT = (MessageStatus.SENT, MessageStatus.BOUNCED)
# How many earlier messages to a sender are compared by subject.
_SUBJECT_CANDIDATES = 50


def find_match(
    conn: Connection, account_id: str, mailbox_id: str, inbound: Inbound
) -> Match | None:
    """The message of this account that `inbound` answers, or None. Message ids of another
    account, or of no message, match nothing."""
    original = [inbound.original_message_id] if inbound.original_message_id else []
    if found := _by_ids(conn, account_id, original, MatchedBy.IN_REPLY_TO):
        return found
    if found := _by_ids(conn, account_id, inbound.in_reply_to, MatchedBy.IN_REPLY_TO):
        return found
    if found := _by_ids(conn, account_id, reversed(inbound.references), MatchedBy.REFERENCES):
        return found
    if inbound.kind == InboundKind.BOUNCE:
        for recipient in inbound.recipients:
            if found := _by_recipient(conn, account_id, mailbox_id, recipient.address):
                return found
        return None
    if inbound.kind == InboundKind.REPLY:
        return _by_subject(conn, account_id, mailbox_id, inbound.sender, inbound.subject)
    return None


def _select() -> Select[tuple[str, str, str, str]]:
    return select(
        messages.c.id, messages.c.campaign_id, messages.c.contact_id, contacts.c.email
    ).join(contacts, contacts.c.id == messages.c.contact_id)


def _by_ids(
    conn: Connection, account_id: str, header_ids: Iterable[str], how: MatchedBy
) -> Match | None:
    ours = [mid for value in header_ids if (mid := our_message_id(value)) is not None]
    if not ours:
        return None
    rows = conn.execute(
        _select().where(messages.c.id.in_(ours), messages.c.account_id == account_id)
    ).all()
    by_id = {row.id: row for row in rows}
    for mid in ours:  # in the header's order of preference
        if (row := by_id.get(mid)) is not None:
            return Match(row.id, row.campaign_id, row.contact_id, row.email, how)
    return None


def _by_recipient(conn: Connection, account_id: str, mailbox_id: str, address: str) -> Match | None:
    """The newest message this mailbox sent to `address`. Contacts' addresses are stored
    lowercased (contacts/addresses.py), so the lowercased address finds them by index."""
    row = conn.execute(
        _select()
        .where(
            messages.c.mailbox_id == mailbox_id,
            messages.c.status.in_(_WENT_OUT),
            contacts.c.account_id == account_id,
            contacts.c.email == address.strip().lower(),
        )
        .order_by(messages.c.sent_at_ms.desc(), messages.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return Match(row.id, row.campaign_id, row.contact_id, row.email, MatchedBy.RECIPIENT)


def reply_topic(subject: str) -> str | None:
    """The subject a reply answers (its reply prefixes taken off, spaces folded, lowercased), or
    None when it carries no reply prefix."""
    rest, found = subject, False
    while match := _REPLY_PREFIX.match(rest):
        rest, found = rest[match.end() :], True
    return _SPACES.sub(" ", rest).strip().lower() if found else None


def _by_subject(
    conn: Connection, account_id: str, mailbox_id: str, sender: str, subject: str
) -> Match | None:
    """Weaker: the sender is a contact enrolled in a campaign of this mailbox, and the subject is
    a reply to the subject of a message sent to them (rendered for them, as it went out)."""
    topic = reply_topic(subject)
    if not topic or not sender:
        return None
    rows = conn.execute(
        select(
            messages.c.id,
            messages.c.campaign_id,
            messages.c.contact_id,
            campaign_steps.c.subject,
            contacts.c.email,
            contacts.c.first_name,
            contacts.c.last_name,
            contacts.c.company,
            contacts.c.fields,
        )
        .join(contacts, contacts.c.id == messages.c.contact_id)
        .join(campaign_steps, campaign_steps.c.id == messages.c.step_id)
        .join(campaigns, campaigns.c.id == messages.c.campaign_id)
        .join(
            enrollments,
            (enrollments.c.campaign_id == messages.c.campaign_id)
            & (enrollments.c.contact_id == messages.c.contact_id),
        )
        .where(
            contacts.c.account_id == account_id,
            contacts.c.email == sender.strip().lower(),
            campaigns.c.mailbox_id == mailbox_id,
            messages.c.mailbox_id == mailbox_id,
            messages.c.status.in_(_WENT_OUT),
        )
        .order_by(messages.c.sent_at_ms.desc(), messages.c.id.desc())
        .limit(_SUBJECT_CANDIDATES)
    ).all()
    for row in rows:
        contact = {
            "email": row.email,
            "first_name": row.first_name,
            "last_name": row.last_name,
            "company": row.company,
            "fields": row.fields or {},
        }
        try:
            sent_subject = render(row.subject, contact, "subject")
        except PlatformError:
            continue
        if _SPACES.sub(" ", sent_subject).strip().lower() == topic:
            return Match(row.id, row.campaign_id, row.contact_id, row.email, MatchedBy.SUBJECT)
    return None
