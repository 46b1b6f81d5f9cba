"""Headline numbers for a page of campaigns: sent, opened and clicked by people.

The same definitions as the report summary (platform/reports/summary.py): sent counts messages with
status `sent`; opened and clicked count distinct contacts with a human open (proxy opens
included) or a human click, as the flusher keeps them in report_campaigns. Two grouped
queries for the whole page instead of a full summary per campaign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from pixeltrail.store.message_status import MessageStatus
from pixeltrail.store.schema import messages, report_campaigns


@dataclass(frozen=True)
class Headline:
    sent: int = 0
    opened: int = 0
    clicked: int = 0


def campaign_headlines(conn: Connection, campaign_ids: Sequence[str]) -> dict[str, Headline]:
    """Per campaign id (ids the caller already checked belong to the account)."""
    ids = list(campaign_ids)
    sent: dict[str, int] = dict(
        conn.execute(
            select(messages.c.campaign_id, func.count())
            .where(messages.c.campaign_id.in_(ids), messages.c.status == MessageStatus.SENT)
            .group_by(messages.c.campaign_id)
        ).all()
    )
    rc = report_campaigns.c
    people = {
        r.campaign_id: (r.unique_opens, r.unique_clicks)
        for r in conn.execute(
            select(rc.campaign_id, rc.unique_opens, rc.unique_clicks).where(rc.campaign_id.in_(ids))
        )
    }
    return {i: Headline(int(sent.get(i, 0)), *(int(n) for n in people.get(i, (0, 0)))) for i in ids}
