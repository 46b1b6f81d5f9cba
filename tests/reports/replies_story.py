"""What came back to the story's campaign (tests/reports/conftest.py), inserted directly as the
reader records it, with a second step:

- ann (opened twice) replies once, with a script in her text; her sequence ended `replied`;
- bob (only Apple's prefetch, never a human open) replies twice: the reply proves he read it;
- cy's mailbox answers with an out-of-office (an auto-reply: no reply);
- eve's reply is matched by its subject, naming none of our messages;
- step 2 goes to dee, who replies to it, and to hal, whose message bounces (address suppressed);
- enrollments: cy active, dee finished; fay, gus and hal `stopped` from before the reason was
  kept (fay and hal bounced, gus unsubscribed); eve has been taken out (no enrollment).
"""

from __future__ import annotations

from itertools import count

from sqlalchemy import insert

from pixeltrail.platform.ids import new_id
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import (
    campaign_steps,
    enrollments,
    inbound_messages,
    messages,
    suppressions,
)
from pixeltrail.tracking.tokens import new_message_id

from .conftest import SENT, Campaign, H, M

SCRIPT = "<script>document.title='pwned'</script>"
ANN_TEXT = f"Sounds good, call me Tuesday. {SCRIPT}"
_UIDS = count(1)  # UIDs of the mailbox's INBOX, unique per test run


def add_inbound(
    c: Campaign,
    name: str | None,
    kind: str,
    at_ms: int,
    subject: str = "Re: Spring",
    text: str = "Thanks!",
    message: str | None = "",
    campaign_id: str | None = None,
) -> str:
    """An inbound_messages row of c's mailbox; `message` is a key of c.message ("" for the
    contact's own, None for none)."""
    row_id = new_id("inb")
    message_id = None if message is None else c.message[message or name or ""]
    with write_transaction(c.engine) as conn:
        conn.execute(
            insert(inbound_messages).values(
                id=row_id,
                account_id=c.account_id,
                mailbox_id=c.mailbox_id,
                uid_validity=1,
                uid=next(_UIDS),
                kind=kind,
                reason="test",
                message_id=message_id,
                campaign_id=campaign_id or c.id,
                contact_id=c.contact[name] if name else None,
                matched_by="in_reply_to" if message_id else "subject",
                from_email=f"{name}@example.com",
                subject=subject,
                text=text,
                received_at_ms=at_ms,
                created_at_ms=at_ms,
            )
        )
    return row_id


def add_step(c: Campaign, position: int) -> str:
    step = new_id("stp")
    with write_transaction(c.engine) as conn:
        conn.execute(
            insert(campaign_steps).values(
                id=step,
                campaign_id=c.id,
                position=position,
                subject=f"Step {position}",
                html="<p>again</p>",
                text=None,
                delay_days=1,
            )
        )
    return step


def add_step_message(c: Campaign, name: str, step: str, status: str, made_at_ms: int) -> str:
    message_id = new_message_id()
    with write_transaction(c.engine) as conn:
        conn.execute(
            insert(messages).values(
                id=message_id,
                account_id=c.account_id,
                campaign_id=c.id,
                step_id=step,
                contact_id=c.contact[name],
                mailbox_id=c.mailbox_id,
                status=status,
                send_at_ms=made_at_ms,
                track_opens=True,
                track_clicks=True,
                track_text_links=True,
                tracking_base_url="https://t.example.com",
                link_count=0,
                attempts=1,
                sent_at_ms=made_at_ms,
                error=None,
                created_at_ms=made_at_ms,
            )
        )
    c.message[f"{name}2"] = message_id
    return message_id


def enroll(c: Campaign, statuses: dict[str, str]) -> None:
    with write_transaction(c.engine) as conn:
        for name, status in statuses.items():
            conn.execute(
                insert(enrollments).values(
                    campaign_id=c.id,
                    contact_id=c.contact[name],
                    status=status,
                    next_step=3,
                    added_at_ms=SENT - H,
                )
            )


def tell_replies(c: Campaign) -> None:
    add_inbound(c, "ann", "reply", SENT + 6 * H, text=ANN_TEXT)
    add_inbound(c, "bob", "reply", SENT + 1 * H, text="Interested.")
    add_inbound(c, "bob", "reply", SENT + 2 * H, subject="Re: Re: Spring", text="Also: pricing?")
    add_inbound(c, "cy", "auto_reply", SENT + 1 * M, subject="Out of office")
    add_inbound(c, "eve", "reply", SENT + 4 * H, message=None)
    step = add_step(c, 2)
    add_step_message(c, "dee", step, "sent", SENT + 24 * H)
    add_step_message(c, "hal", step, "bounced", SENT + 24 * H)
    add_inbound(c, "dee", "reply", SENT + 27 * H, subject="Re: Step 2", message="dee2")
    add_inbound(c, "hal", "bounce", SENT + 24 * H + M, subject="Undelivered", message="hal2")
    with write_transaction(c.engine) as conn:
        conn.execute(
            insert(suppressions).values(
                account_id=c.account_id,
                email="hal@example.com",
                reason="bounced",
                created_at_ms=SENT + 24 * H + M,
            )
        )
    enroll(
        c,
        {
            "ann": "replied",
            "bob": "replied",
            "cy": "active",
            "dee": "finished",
            "fay": "stopped",
            "gus": "stopped",
            "hal": "stopped",
        },
    )
