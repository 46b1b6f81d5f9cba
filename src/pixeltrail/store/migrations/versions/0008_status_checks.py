"""Statuses and classifications are checked: the database refuses a value outside them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08

The values are written out as they are at this revision (the enums of the application are the
source for schema.py; a value added later comes with a migration that widens its check).
SQLite cannot add a constraint to a table: batch mode rebuilds the table, copying its rows
(env.py turns foreign keys off for the rebuild and checks them before committing). A row
holding a value outside its check stops the upgrade, and nothing is changed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

CHECKS = {
    ("tracking_domains", "status"): ("pending", "verified", "failed"),
    ("campaigns", "status"): ("draft", "active", "paused", "finished"),
    ("enrollments", "status"): ("active", "stopped", "finished"),
    ("messages", "status"): ("scheduled", "claimed", "sending", "sent", "failed", "cancelled"),
    ("webhook_deliveries", "status"): ("pending", "delivered", "failed", "cancelled"),
    ("events", "classification"): ("human", "apple_mpp", "proxy_open", "scanner", "bot"),
}


def upgrade() -> None:
    for (table, column), values in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            batch.create_check_constraint(
                op.f(f"ck_{table}_{column}"), sa.column(column).in_(values)
            )


def downgrade() -> None:
    for table, column in reversed(CHECKS):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
