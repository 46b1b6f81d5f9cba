"""Campaign report aggregates, kept by the flusher; filled from the events already stored.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# The backfill is written out here, frozen, rather than imported from
# store/report_aggregates.py: a later change to those tables must not change what this
# revision does. It computes the same rows (tests compare the two).
_FROM = "FROM messages m JOIN events e ON e.message_id = m.id"
_COUNTED = "e.classification IN ('human', 'proxy_open')"
_BACKFILL = (
    f"""INSERT INTO report_messages (message_id, campaign_id, contact_id, opens, proxy_opens,
        machine_opens, first_open_ms, last_open_ms, clicks, machine_clicks)
    SELECT m.id, m.campaign_id, m.contact_id,
        SUM(CASE WHEN e.kind = 'open' AND {_COUNTED} THEN 1 ELSE 0 END),
        SUM(CASE WHEN e.kind = 'open' AND e.classification = 'proxy_open' THEN 1 ELSE 0 END),
        SUM(CASE WHEN e.kind = 'open' AND NOT {_COUNTED} THEN 1 ELSE 0 END),
        MIN(CASE WHEN e.kind = 'open' AND {_COUNTED} THEN e.at_ms END),
        MAX(CASE WHEN e.kind = 'open' AND {_COUNTED} THEN e.at_ms END),
        SUM(CASE WHEN e.kind = 'click' AND e.classification = 'human' THEN 1 ELSE 0 END),
        SUM(CASE WHEN e.kind = 'click' AND e.classification <> 'human' THEN 1 ELSE 0 END)
    {_FROM} GROUP BY m.id, m.campaign_id, m.contact_id""",
    f"""INSERT INTO report_links (message_id, link, campaign_id, contact_id, destination,
        clicks, machine_clicks)
    SELECT m.id, e.link, m.campaign_id, m.contact_id, MAX(e.destination),
        SUM(CASE WHEN e.classification = 'human' THEN 1 ELSE 0 END),
        SUM(CASE WHEN e.classification <> 'human' THEN 1 ELSE 0 END)
    {_FROM} WHERE e.kind = 'click' AND e.link IS NOT NULL AND e.honeypot = false
    GROUP BY m.id, e.link, m.campaign_id, m.contact_id""",
    f"""INSERT INTO report_timeline (campaign_id, bucket_ms, opens, machine_opens, clicks,
        machine_clicks)
    SELECT m.campaign_id, e.at_ms - e.at_ms % 900000,
        SUM(CASE WHEN e.kind = 'open' AND {_COUNTED} THEN 1 ELSE 0 END),
        SUM(CASE WHEN e.kind = 'open' AND NOT {_COUNTED} THEN 1 ELSE 0 END),
        SUM(CASE WHEN e.kind = 'click' AND e.classification = 'human' THEN 1 ELSE 0 END),
        SUM(CASE WHEN e.kind = 'click' AND e.classification <> 'human' THEN 1 ELSE 0 END)
    {_FROM} GROUP BY m.campaign_id, e.at_ms - e.at_ms % 900000""",
    f"""INSERT INTO report_reasons (message_id, kind, classification, reason, campaign_id,
        events)
    SELECT m.id, e.kind, e.classification, e.reason, m.campaign_id, COUNT(*)
    {_FROM} WHERE e.classification <> 'human'
    GROUP BY m.id, e.kind, e.classification, e.reason, m.campaign_id""",
)


def upgrade() -> None:
    op.create_table(
        "report_messages",
        sa.Column("message_id", sa.String(16), nullable=False),
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("contact_id", sa.String(32), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("proxy_opens", sa.Integer(), nullable=False),
        sa.Column("machine_opens", sa.Integer(), nullable=False),
        sa.Column("first_open_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_open_ms", sa.BigInteger(), nullable=True),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("machine_clicks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_report_messages"),
    )
    op.create_index(
        "ix_report_messages_campaign_id_contact_id",
        "report_messages",
        ["campaign_id", "contact_id"],
    )
    op.create_table(
        "report_links",
        sa.Column("message_id", sa.String(16), nullable=False),
        sa.Column("link", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("contact_id", sa.String(32), nullable=False),
        sa.Column("destination", sa.Text(), nullable=True),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("machine_clicks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "link", name="pk_report_links"),
    )
    op.create_index(
        "ix_report_links_campaign_id_contact_id", "report_links", ["campaign_id", "contact_id"]
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
    op.create_table(
        "report_reasons",
        sa.Column("message_id", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("classification", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "message_id", "kind", "classification", "reason", name="pk_report_reasons"
        ),
    )
    op.create_index("ix_report_reasons_campaign_id", "report_reasons", ["campaign_id"])
    for statement in _BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    for table in ("report_reasons", "report_timeline", "report_links", "report_messages"):
        op.drop_table(table)
