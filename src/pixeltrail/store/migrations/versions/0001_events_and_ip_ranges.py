"""Events and IP ranges.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("message_id", sa.String(16), nullable=False),
        sa.Column("link", sa.Integer(), nullable=True),
        sa.Column("destination", sa.Text(), nullable=True),
        sa.Column("honeypot", sa.Boolean(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("ip", sa.String(45), nullable=False),
        sa.Column("user_agent", sa.Text(), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("classification", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_message_id_at_ms", "events", ["message_id", "at_ms"])

    op.create_table(
        "ip_ranges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("network", sa.String(49), nullable=False),
        sa.Column("loaded_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ip_ranges"),
        sa.UniqueConstraint("source", "network", name="uq_ip_ranges_source_network"),
    )


def downgrade() -> None:
    op.drop_table("ip_ranges")
    op.drop_index("ix_events_message_id_at_ms", table_name="events")
    op.drop_table("events")
