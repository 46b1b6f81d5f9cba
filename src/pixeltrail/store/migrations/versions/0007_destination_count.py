"""How many different destinations a sent message's tracked links have.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08

`link_count` counted every tracked copy of a link (the HTML part's and the text part's), so the
classifier's every-link-clicked rule asked for more links than a message has. Messages sent
before this keep their `link_count` and are judged by it as before; their destinations were not
kept, so they cannot be counted now.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("destination_count", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("destination_count")
