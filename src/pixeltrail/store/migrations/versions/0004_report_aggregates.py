"""Campaign report aggregates, kept by the flusher; filled from the events already stored.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# The backfill is written out here, frozen, rather than imported from
# store/report_aggregates.py: a later change there must not change what this revision does.
# It computes the same rows, except that reasons are kept with their per-event details
# (reports group them by label when they read them); tests compare the reports.
_FROM = "FROM messages m JOIN events e ON e.message_id = m.id"
_COUNTED = "e.classification IN ('human', 'proxy_open')"
_OPEN, _CLICK = "e.kind = 'open'", "e.kind = 'click'"
_HUMAN, _MACHINE = "e.classification = 'human'", "e.classification <> 'human'"
_BUCKET = "e.at_ms - e.at_ms % 900000"


def _count(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


_CONTACTS = f"""INSERT INTO report_contacts (campaign_id, contact_id, opens, proxy_opens,
    machine_opens, first_open_ms, last_open_ms, clicks, machine_clicks)
SELECT m.campaign_id, m.contact_id, {_count(f"{_OPEN} AND {_COUNTED}")},
    {_count(f"{_OPEN} AND e.classification = 'proxy_open'")},
    {_count(f"{_OPEN} AND NOT {_COUNTED}")},
    MIN(CASE WHEN {_OPEN} AND {_COUNTED} THEN e.at_ms END),
    MAX(CASE WHEN {_OPEN} AND {_COUNTED} THEN e.at_ms END),
    {_count(f"{_CLICK} AND {_HUMAN}")}, {_count(f"{_CLICK} AND {_MACHINE}")}
{_FROM} GROUP BY m.campaign_id, m.contact_id"""
_CONTACT_LINKS = f"""INSERT INTO report_contact_links (campaign_id, contact_id, message_id, link,
    destination, clicks, machine_clicks)
SELECT m.campaign_id, m.contact_id, m.id, e.link, MAX(e.destination), {_count(_HUMAN)},
    {_count(_MACHINE)}
{_FROM} WHERE {_CLICK} AND e.link IS NOT NULL AND e.honeypot = false
GROUP BY m.campaign_id, m.contact_id, m.id, e.link"""
_CAMPAIGNS = """INSERT INTO report_campaigns (campaign_id, opens, unique_opens, proxy_opens,
    unique_proxy_opens, machine_opens, unique_machine_opens, clicks, unique_clicks,
    machine_clicks, unique_machine_clicks)
SELECT campaign_id, {sums} FROM report_contacts GROUP BY campaign_id""".format(
    sums=", ".join(
        f"SUM({f}), SUM(CASE WHEN {f} > 0 THEN 1 ELSE 0 END)"
        for f in ("opens", "proxy_opens", "machine_opens", "clicks", "machine_clicks")
    )
)
_TIMELINE = f"""INSERT INTO report_timeline (campaign_id, bucket_ms, opens, machine_opens,
    clicks, machine_clicks)
SELECT m.campaign_id, {_BUCKET}, {_count(f"{_OPEN} AND {_COUNTED}")},
    {_count(f"{_OPEN} AND NOT {_COUNTED}")}, {_count(f"{_CLICK} AND {_HUMAN}")},
    {_count(f"{_CLICK} AND {_MACHINE}")}
{_FROM} GROUP BY m.campaign_id, {_BUCKET}"""
_LINK_SUMS = """SELECT campaign_id, contact_id, destination, SUM(clicks), SUM(machine_clicks)
FROM report_contact_links GROUP BY campaign_id, contact_id, destination"""
_REASONS = f"""SELECT m.campaign_id, e.kind, e.classification, e.reason, COUNT(*)
{_FROM} WHERE {_MACHINE} GROUP BY m.campaign_id, e.kind, e.classification, e.reason"""


def _key(*parts: str | None) -> str:
    joined = "\x00".join(part or "" for part in parts)
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


def _backfill() -> None:
    for statement in (_CONTACTS, _CONTACT_LINKS, _CAMPAIGNS, _TIMELINE):
        op.execute(statement)
    bind = op.get_bind()
    links: dict[tuple[str, str | None], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for campaign_id, _, destination, clicks, machine in bind.execute(sa.text(_LINK_SUMS)):
        sums = links[(campaign_id, destination)]
        sums[0] += clicks
        sums[1] += clicks > 0
        sums[2] += machine
        sums[3] += machine > 0
    link_rows: list[dict[str, Any]] = [
        {"campaign_id": c, "destination_key": _key(d), "destination": d, "clicks": s[0],
         "unique_clicks": s[1], "machine_clicks": s[2], "unique_machine_clicks": s[3]}
        for (c, d), s in links.items()
    ]  # fmt: skip
    if link_rows:
        op.bulk_insert(_table("report_links", link_rows[0]), link_rows)
    reason_rows: list[dict[str, Any]] = [
        {"campaign_id": c, "reason_key": _key(kind, classification, reason), "kind": kind,
         "classification": classification, "reason": reason, "events": n}
        for c, kind, classification, reason, n in bind.execute(sa.text(_REASONS))
    ]  # fmt: skip
    if reason_rows:
        op.bulk_insert(_table("report_reasons", reason_rows[0]), reason_rows)


def _table(name: str, row: dict[str, Any]) -> sa.TableClause:
    return sa.table(name, *(sa.column(column) for column in row))


def upgrade() -> None:
    op.create_table(
        "report_contacts",
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("contact_id", sa.String(32), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("proxy_opens", sa.Integer(), nullable=False),
        sa.Column("machine_opens", sa.Integer(), nullable=False),
        sa.Column("first_open_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_open_ms", sa.BigInteger(), nullable=True),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("machine_clicks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "contact_id", name="pk_report_contacts"),
    )
    op.create_table(
        "report_contact_links",
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("contact_id", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(16), nullable=False),
        sa.Column("link", sa.Integer(), nullable=False),
        sa.Column("destination", sa.Text(), nullable=True),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("machine_clicks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "campaign_id", "contact_id", "message_id", "link", name="pk_report_contact_links"
        ),
    )
    op.create_table(
        "report_campaigns",
        sa.Column("campaign_id", sa.String(32), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for field in ("opens", "proxy_opens", "machine_opens", "clicks", "machine_clicks")
            for name in (field, f"unique_{field}")
        ),
        sa.PrimaryKeyConstraint("campaign_id", name="pk_report_campaigns"),
    )
    op.create_table(
        "report_links",
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("destination_key", sa.String(32), nullable=False),
        sa.Column("destination", sa.Text(), nullable=True),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("unique_clicks", sa.Integer(), nullable=False),
        sa.Column("machine_clicks", sa.Integer(), nullable=False),
        sa.Column("unique_machine_clicks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "destination_key", name="pk_report_links"),
    )
    op.create_table(
        "report_reasons",
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("reason_key", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("classification", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "reason_key", name="pk_report_reasons"),
    )
    op.create_table(
        "report_timeline",
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("bucket_ms", sa.BigInteger(), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("machine_opens", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("machine_clicks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "bucket_ms", name="pk_report_timeline"),
    )
    op.create_index(
        "ix_messages_campaign_id_contact_id_status",
        "messages",
        ["campaign_id", "contact_id", "status"],
    )
    _backfill()


def downgrade() -> None:
    op.drop_index("ix_messages_campaign_id_contact_id_status", table_name="messages")
    for table in (
        "report_timeline",
        "report_reasons",
        "report_links",
        "report_campaigns",
        "report_contact_links",
        "report_contacts",
    ):
        op.drop_table(table)
