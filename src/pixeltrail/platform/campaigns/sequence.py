"""A campaign's sequence of steps: checked (templates included), written, read back.

Steps are numbered from 1 (`position`); `enrollments.next_step` is the position of the first
step not yet scheduled for that contact (1 on enrolment, past the last step when all are).
The first step's `delay_days` counts from the campaign's start, each later one from the
previous message sent to that contact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from pixeltrail.platform.campaigns.input import StepIn
from pixeltrail.platform.campaigns.templates import validate_template
from pixeltrail.platform.errors import Conflict, Invalid
from pixeltrail.platform.ids import new_id
from pixeltrail.store.schema import campaign_steps, messages


@dataclass(frozen=True)
class Step:
    position: int
    subject: str
    html: str
    text: str | None
    delay_days: int

    def as_record(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "subject": self.subject,
            "html": self.html,
            "text": self.text,
            "delay_days": self.delay_days,
        }


def check_steps(steps: Sequence[StepIn]) -> None:
    for index, step in enumerate(steps):
        label = f"step {index + 1}"
        if not step.subject.strip():
            raise Invalid(f"{label}: the subject is empty", f"steps.{index}.subject")
        validate_template(step.subject, "subject", f"steps.{index}.subject", f"{label} subject")
        validate_template(step.html, "html", f"steps.{index}.html", f"{label} html")
        if step.text is not None:
            validate_template(step.text, "text", f"steps.{index}.text", f"{label} text")


def write_steps(conn: Connection, campaign_id: str, steps: Sequence[StepIn]) -> None:
    """Make the campaign's steps `steps`, keeping the ids (and messages) of positions kept."""
    existing = {
        row.position: row.id
        for row in conn.execute(
            select(campaign_steps.c.position, campaign_steps.c.id).where(
                campaign_steps.c.campaign_id == campaign_id
            )
        )
    }
    removed = {pos: step_id for pos, step_id in existing.items() if pos > len(steps)}
    if removed:
        used = conn.execute(
            select(campaign_steps.c.position)
            .join(messages, messages.c.step_id == campaign_steps.c.id)
            .where(campaign_steps.c.id.in_(removed.values()))
            .order_by(campaign_steps.c.position)
            .limit(1)
        ).first()
        if used is not None:
            raise Conflict(
                f"step {used.position} already has messages: it can be edited, not removed",
                "steps",
            )
        conn.execute(delete(campaign_steps).where(campaign_steps.c.id.in_(removed.values())))
    for position, step in enumerate(steps, start=1):
        values = {
            "subject": step.subject,
            "html": step.html,
            "text": step.text or None,
            "delay_days": step.delay_days,
        }
        if position in existing:
            conn.execute(
                update(campaign_steps)
                .where(campaign_steps.c.id == existing[position])
                .values(**values)
            )
        else:
            conn.execute(
                insert(campaign_steps).values(
                    id=new_id("stp"), campaign_id=campaign_id, position=position, **values
                )
            )


def load_steps(conn: Connection, campaign_id: str) -> tuple[Step, ...]:
    rows = conn.execute(
        select(campaign_steps)
        .where(campaign_steps.c.campaign_id == campaign_id)
        .order_by(campaign_steps.c.position)
    )
    return tuple(Step(r.position, r.subject, r.html, r.text, r.delay_days) for r in rows)
