"""What comes back: mailboxes read their INBOX (IMAP), replies and bounces are recorded.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

- `mailboxes.imap_url_encrypted`: where the mailbox's INBOX is read (encrypted as the SMTP URL).
- `mailbox_inboxes`: one row per mailbox read: the UIDVALIDITY and last UID processed (so a
  restart goes on where it was, and nothing is processed twice), who reads it now (a lease, so
  several nodes on one database read each mailbox once) and the last error.
- `inbound_messages`: each message of an INBOX that was looked at, once (unique on mailbox,
  UIDVALIDITY and UID): what it is (reply, auto-reply, bounce, ...), the message of ours it
  answers and how it was matched, and what a report shows of it.
- `campaigns.stop_on_reply`: a reply ends the contact's sequence (on by default).
- Enrollments end `replied`, `bounced` or `unsubscribed` (`stopped` stays for those stopped
  before); messages can be `bounced` after they were sent. Both checks are widened.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

ENROLLMENT_BEFORE = ("active", "stopped", "finished")
ENROLLMENT_AFTER = (*ENROLLMENT_BEFORE, "replied", "bounced", "unsubscribed")
MESSAGE_BEFORE = ("scheduled", "claimed", "sending", "sent", "failed", "cancelled")
MESSAGE_AFTER = (*MESSAGE_BEFORE, "bounced")
INBOUND_KINDS = ("bounce", "delayed", "auto_reply", "reply", "other", "unreadable")
MATCHES = ("in_reply_to", "references", "subject", "recipient")


def _widen(table: str, column: str, values: tuple[str, ...]) -> None:
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
        batch.create_check_constraint(op.f(f"ck_{table}_{column}"), sa.column(column).in_(values))


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("imap_url_encrypted", sa.Text(), nullable=True))
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column("stop_on_reply", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    _widen("enrollments", "status", ENROLLMENT_AFTER)
    _widen("messages", "status", MESSAGE_AFTER)
    op.create_table(
        "mailbox_inboxes",
        sa.Column("mailbox_id", sa.String(32), sa.ForeignKey("mailboxes.id"), nullable=False),
        sa.Column("uid_validity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("checked_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("mailbox_id", name=op.f("pk_mailbox_inboxes")),
    )
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("mailbox_id", sa.String(32), sa.ForeignKey("mailboxes.id"), nullable=False),
        sa.Column("uid_validity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(16), sa.ForeignKey("messages.id"), nullable=True),
        sa.Column("campaign_id", sa.String(32), sa.ForeignKey("campaigns.id"), nullable=True),
        sa.Column("contact_id", sa.String(32), sa.ForeignKey("contacts.id"), nullable=True),
        sa.Column("matched_by", sa.String(16), nullable=True),
        sa.Column("from_email", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status_code", sa.String(16), nullable=True),
        sa.Column("diagnostic", sa.Text(), nullable=True),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint(
            "mailbox_id",
            "uid_validity",
            "uid",
            name=op.f("uq_inbound_messages_mailbox_id_uid_validity_uid"),
        ),
        sa.CheckConstraint(
            sa.column("kind").in_(INBOUND_KINDS), name=op.f("ck_inbound_messages_kind")
        ),
        sa.CheckConstraint(
            sa.column("matched_by").in_(MATCHES), name=op.f("ck_inbound_messages_matched_by")
        ),
    )
    op.create_index(
        op.f("ix_inbound_messages_campaign_id_contact_id"),
        "inbound_messages",
        ["campaign_id", "contact_id"],
    )
    op.create_index(op.f("ix_inbound_messages_message_id"), "inbound_messages", ["message_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_inbound_messages_message_id"), table_name="inbound_messages")
    op.drop_index(op.f("ix_inbound_messages_campaign_id_contact_id"), table_name="inbound_messages")
    op.drop_table("inbound_messages")
    op.drop_table("mailbox_inboxes")
    _widen("messages", "status", MESSAGE_BEFORE)
    _widen("enrollments", "status", ENROLLMENT_BEFORE)
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("stop_on_reply")
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_column("imap_url_encrypted")
