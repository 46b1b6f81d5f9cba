"""What purged events had counted in the reports, kept when events pass their retention.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "purged_contacts",
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("contact_id", sa.String(32), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("proxy_opens", sa.Integer(), nullable=False),
        sa.Column("machine_opens", sa.Integer(), nullable=False),
        sa.Column("first_open_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_open_ms", sa.BigInteger(), nullable=True),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("machine_clicks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "contact_id", name="pk_purged_contacts"),
    )
    op.create_table(
        "purged_contact_links",
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("contact_id", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(16), nullable=False),
        sa.Column("link", sa.Integer(), nullable=False),
        sa.Column("destination", sa.Text(), nullable=True),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("machine_clicks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "campaign_id", "contact_id", "message_id", "link", name="pk_purged_contact_links"
        ),
    )
    op.create_table(
        "purged_reasons",
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("reason_key", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("classification", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "reason_key", name="pk_purged_reasons"),
    )
    op.create_table(
        "purged_timeline",
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("bucket_ms", sa.BigInteger(), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("machine_opens", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("machine_clicks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "bucket_ms", name="pk_purged_timeline"),
    )


def downgrade() -> None:
    for table in ("purged_timeline", "purged_reasons", "purged_contact_links", "purged_contacts"):
        op.drop_table(table)
