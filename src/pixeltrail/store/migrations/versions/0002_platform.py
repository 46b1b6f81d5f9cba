"""The platform: accounts, users, API keys, tracking domains, mailboxes, contacts, campaigns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("default_track_opens", sa.Boolean(), nullable=False),
        sa.Column("anonymize_ips", sa.Boolean(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_users_account_id_accounts"
        ),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_api_keys_account_id_accounts"
        ),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    )
    op.create_index("ix_api_keys_account_id", "api_keys", ["account_id"])
    op.create_table(
        "tracking_domains",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("hostname", sa.String(253), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cname_target", sa.String(253), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("checked_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("verified_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tracking_domains"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_tracking_domains_account_id_accounts"
        ),
        sa.UniqueConstraint("hostname", name="uq_tracking_domains_hostname"),
        sa.UniqueConstraint("hostname", name="uq_tracking_domains_hostname"),
    )
    op.create_index("ix_tracking_domains_account_id", "tracking_domains", ["account_id"])
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("from_email", sa.String(320), nullable=False),
        sa.Column("from_name", sa.String(200), nullable=False),
        sa.Column("smtp_url_encrypted", sa.Text(), nullable=True),
        sa.Column("daily_limit", sa.Integer(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mailboxes"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_mailboxes_account_id_accounts"
        ),
    )
    op.create_index("ix_mailboxes_account_id", "mailboxes", ["account_id"])
    op.create_table(
        "contacts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("first_name", sa.String(200), nullable=False),
        sa.Column("last_name", sa.String(200), nullable=False),
        sa.Column("company", sa.String(200), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_contacts_account_id_accounts"
        ),
        sa.UniqueConstraint("account_id", "email", name="uq_contacts_account_id_email"),
    )
    op.create_table(
        "suppressions",
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "email", name="pk_suppressions"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_suppressions_account_id_accounts"
        ),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("mailbox_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("track_opens", sa.Boolean(), nullable=False),
        sa.Column("track_clicks", sa.Boolean(), nullable=False),
        sa.Column("track_text_links", sa.Boolean(), nullable=False),
        sa.Column("tracking_domain_id", sa.String(32), nullable=True),
        sa.Column("start_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_campaigns_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["tracking_domain_id"],
            ["tracking_domains.id"],
            name="fk_campaigns_tracking_domain_id_tracking_domains",
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"], ["mailboxes.id"], name="fk_campaigns_mailbox_id_mailboxes"
        ),
    )
    op.create_index("ix_campaigns_account_id", "campaigns", ["account_id"])
    op.create_table(
        "campaign_steps",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("delay_days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_steps"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_campaign_steps_campaign_id_campaigns"
        ),
        sa.UniqueConstraint(
            "campaign_id", "position", name="uq_campaign_steps_campaign_id_position"
        ),
    )
    op.create_table(
        "enrollments",
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("contact_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("next_step", sa.Integer(), nullable=False),
        sa.Column("added_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "contact_id", name="pk_enrollments"),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name="fk_enrollments_contact_id_contacts"
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_enrollments_campaign_id_campaigns"
        ),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("step_id", sa.String(32), nullable=False),
        sa.Column("contact_id", sa.String(32), nullable=False),
        sa.Column("mailbox_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("send_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("track_opens", sa.Boolean(), nullable=False),
        sa.Column("track_clicks", sa.Boolean(), nullable=False),
        sa.Column("track_text_links", sa.Boolean(), nullable=False),
        sa.Column("tracking_base_url", sa.String(300), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.ForeignKeyConstraint(
            ["step_id"], ["campaign_steps.id"], name="fk_messages_step_id_campaign_steps"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name="fk_messages_account_id_accounts"
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name="fk_messages_contact_id_contacts"
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_messages_campaign_id_campaigns"
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"], ["mailboxes.id"], name="fk_messages_mailbox_id_mailboxes"
        ),
    )
    op.create_index("ix_messages_status_send_at_ms", "messages", ["status", "send_at_ms"])
    op.create_index("ix_messages_campaign_id_status", "messages", ["campaign_id", "status"])


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("enrollments")
    op.drop_table("campaign_steps")
    op.drop_table("campaigns")
    op.drop_table("suppressions")
    op.drop_table("contacts")
    op.drop_table("mailboxes")
    op.drop_table("tracking_domains")
    op.drop_table("api_keys")
    op.drop_table("users")
    op.drop_table("accounts")
