"""The tables, as SQLAlchemy Core metadata: what the migrations create, what queries use."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    column,
    false,
    true,
)

from pixeltrail.inbound.classify import InboundKind
from pixeltrail.platform.campaigns.status import CampaignStatus, EnrollmentStatus
from pixeltrail.platform.domains.status import DomainStatus
from pixeltrail.platform.inbox.matching import MatchedBy
from pixeltrail.platform.webhooks.status import DeliveryStatus
from pixeltrail.store.message_status import MessageStatus
from pixeltrail.tracking.hits import Classification

# Constraint and index names are spelled out so migrations can name what they change.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SOURCE_LENGTH = 32

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def one_of(name: str, values: type[StrEnum]) -> CheckConstraint:
    """The database refuses a value of column `name` that is not one of `values`
    (ck_<table>_<name>). A value added to the enum needs a migration that widens it."""
    return CheckConstraint(column(name).in_([value.value for value in values]), name=name)


# One row per recorded hit with its verdict, kept for its account's retention_days (forever by
# default: store/event_retention.py); times are UTC epoch milliseconds.
events = Table(
    "events",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("message_id", String(16), nullable=False),
    Column("link", Integer, nullable=True),
    Column("destination", Text, nullable=True),
    Column("honeypot", Boolean, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("ip", String(45), nullable=False),
    Column("user_agent", Text, nullable=False),
    Column("method", String(8), nullable=False),
    Column("classification", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("recorded_at_ms", BigInteger, nullable=False),
    one_of("classification", Classification),
    # Serves lookups by message alone too, so message_id needs no index of its own.
    Index(None, "message_id", "at_ms"),
)

# Published networks of machine traffic (e.g. Apple Mail Privacy Protection), per source.
ip_ranges = Table(
    "ip_ranges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(SOURCE_LENGTH), nullable=False),
    Column("network", String(49), nullable=False),
    Column("loaded_at_ms", BigInteger, nullable=False),
    UniqueConstraint("source", "network"),
)

# ---- the platform: accounts and what they own ---------------------------------------------
# Ids are opaque random strings with a prefix naming the kind (acct_, dom_, mbx_, ct_, cmp_...);
# an id never reveals how many rows exist or lets one guess another account's ids.
ID = 32

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("default_track_opens", Boolean, nullable=False),
    Column("anonymize_ips", Boolean, nullable=False),
    Column("retention_days", Integer, nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("account_id", String(ID), ForeignKey("accounts.id"), nullable=False),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=True),
    Column("role", String(16), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
)

# API keys are shown once; only a SHA-256 of the (high-entropy) key is kept, found by prefix.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("account_id", String(ID), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("last_used_at_ms", BigInteger, nullable=True),
    Column("revoked_at_ms", BigInteger, nullable=True),
)

# A hostname belongs to one account at most, whatever its status.
tracking_domains = Table(
    "tracking_domains",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("account_id", String(ID), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("hostname", String(253), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("cname_target", String(253), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("checked_at_ms", BigInteger, nullable=True),
    Column("verified_at_ms", BigInteger, nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    one_of("status", DomainStatus),
)

# smtp_url_encrypted is None for the built-in outbox; imap_url_encrypted None when its INBOX is
# not read.
mailboxes = Table(
    "mailboxes",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("account_id", String(ID), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("from_email", String(320), nullable=False),
    Column("from_name", String(200), nullable=False),
    Column("smtp_url_encrypted", Text, nullable=True),
    Column("imap_url_encrypted", Text, nullable=True),
    Column("daily_limit", Integer, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("account_id", String(ID), ForeignKey("accounts.id"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("first_name", String(200), nullable=False),
    Column("last_name", String(200), nullable=False),
    Column("company", String(200), nullable=False),
    Column("fields", JSON, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    # "Do not track": this contact's messages go out without pixel or link rewriting.
    Column("do_not_track", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("account_id", "email"),
)

# Suppressed addresses are never sent to: reason is unsubscribed, bounced or manual.
suppressions = Table(
    "suppressions",
    metadata,
    Column("account_id", String(ID), ForeignKey("accounts.id"), primary_key=True),
    Column("email", String(320), primary_key=True),
    Column("reason", String(16), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("account_id", String(ID), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("mailbox_id", String(ID), ForeignKey("mailboxes.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("schedule", JSON, nullable=False),
    Column("track_opens", Boolean, nullable=False),
    Column("track_clicks", Boolean, nullable=False),
    Column("track_text_links", Boolean, nullable=False),
    Column("tracking_domain_id", String(ID), ForeignKey("tracking_domains.id"), nullable=True),
    Column("start_at_ms", BigInteger, nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    # A reply ends the contact's sequence (enrollment `replied`): no later step goes out.
    Column("stop_on_reply", Boolean, nullable=False, server_default=true()),
    one_of("status", CampaignStatus),
)

campaign_steps = Table(
    "campaign_steps",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("campaign_id", String(ID), ForeignKey("campaigns.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("subject", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=True),
    Column("delay_days", Integer, nullable=False),
    UniqueConstraint("campaign_id", "position"),
)

# A contact in a campaign's sequence: next_step is the position of the step not yet scheduled.
enrollments = Table(
    "enrollments",
    metadata,
    Column("campaign_id", String(ID), ForeignKey("campaigns.id"), primary_key=True),
    Column("contact_id", String(ID), ForeignKey("contacts.id"), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("next_step", Integer, nullable=False),
    Column("added_at_ms", BigInteger, nullable=False),
    one_of("status", EnrollmentStatus),
)

# One outgoing email. Its id is the message id in tracking tokens (random, 16 characters).
# Tracking settings and the tracking base are a snapshot taken when it was scheduled.
messages = Table(
    "messages",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("account_id", String(ID), ForeignKey("accounts.id"), nullable=False),
    Column("campaign_id", String(ID), ForeignKey("campaigns.id"), nullable=False),
    Column("step_id", String(ID), ForeignKey("campaign_steps.id"), nullable=False),
    Column("contact_id", String(ID), ForeignKey("contacts.id"), nullable=False),
    Column("mailbox_id", String(ID), ForeignKey("mailboxes.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("send_at_ms", BigInteger, nullable=False),
    Column("track_opens", Boolean, nullable=False),
    Column("track_clicks", Boolean, nullable=False),
    Column("track_text_links", Boolean, nullable=False),
    Column("tracking_base_url", String(300), nullable=False),
    # How many links the sent message tracks, each copy counted (HTML and text part).
    Column("link_count", Integer, nullable=True),
    # How many different destinations those links have: the classifier's "every link clicked"
    # rule. NULL for messages sent before it was kept, judged by link_count as they were.
    Column("destination_count", Integer, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("sent_at_ms", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Index(None, "campaign_id", "status"),
    Index(None, "status", "send_at_ms"),
    one_of("status", MessageStatus),
)

# ---- what comes back: each mailbox's INBOX, read over IMAP ----------------------------------
# Where reading a mailbox's INBOX is: the UIDVALIDITY and the last UID processed (a restart goes
# on from there; a new UIDVALIDITY starts over, its messages kept apart by it), who reads it now
# (a lease: several nodes on one database read each mailbox once) and the last error.
mailbox_inboxes = Table(
    "mailbox_inboxes",
    metadata,
    Column("mailbox_id", String(ID), ForeignKey("mailboxes.id"), primary_key=True),
    Column("uid_validity", BigInteger, nullable=True),
    Column("last_uid", BigInteger, nullable=False, server_default="0"),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until_ms", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    Column("checked_at_ms", BigInteger, nullable=True),
)

# Each message of an INBOX looked at, once: what it is, the message of ours it answers (and how
# that was found), and what a report shows of it (sender, subject, the first 2 KB of its text;
# a bounce's status code and diagnostic). Nothing else of it is kept.
inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("account_id", String(ID), ForeignKey("accounts.id"), nullable=False),
    Column("mailbox_id", String(ID), ForeignKey("mailboxes.id"), nullable=False),
    Column("uid_validity", BigInteger, nullable=False),
    Column("uid", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("message_id", String(16), ForeignKey("messages.id"), nullable=True),
    Column("campaign_id", String(ID), ForeignKey("campaigns.id"), nullable=True),
    Column("contact_id", String(ID), ForeignKey("contacts.id"), nullable=True),
    Column("matched_by", String(16), nullable=True),
    Column("from_email", String(320), nullable=False),
    Column("subject", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("status_code", String(16), nullable=True),
    Column("diagnostic", Text, nullable=True),
    Column("received_at_ms", BigInteger, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    UniqueConstraint("mailbox_id", "uid_validity", "uid"),
    Index(None, "campaign_id", "contact_id"),
    Index(None, "message_id"),
    one_of("kind", InboundKind),
    one_of("matched_by", MatchedBy),
)

# ---- outbound webhooks (Standard Webhooks) -------------------------------------------------
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("account_id", String(ID), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("secret_encrypted", Text, nullable=False),
    Column("event_types", JSON, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("disabled_at_ms", BigInteger, nullable=True),
)

# One event for one endpoint; its id is the webhook-id, stable across retries.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("endpoint_id", String(ID), ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("account_id", String(ID), ForeignKey("accounts.id"), nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at_ms", BigInteger, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("delivered_at_ms", BigInteger, nullable=True),
    Index(None, "status", "next_attempt_at_ms"),
    Index(None, "endpoint_id", "created_at_ms"),
    one_of("status", DeliveryStatus),
)

# ---- campaign reports: aggregates of events, kept by the flusher ---------------------------
# Written in the flusher's transaction (store/report_aggregates.py), so reports never read the
# events themselves. "opens" are opens classified human or proxy_open (COUNTED_AS_OPEN),
# "clicks" clicks classified human; the machine_* columns count the rest.

# The counts of a contact's row, and of a contact's link's row.
CONTACT_COUNTS = ("opens", "proxy_opens", "machine_opens", "clicks", "machine_clicks")
LINK_COUNTS = ("clicks", "machine_clicks")


def _totals_tables(prefix: str) -> tuple[Table, Table, Table, Table]:
    """The per-contact, per-link, per-reason and per-quarter-hour totals of campaigns, named
    <prefix>_contacts, _contact_links, _reasons and _timeline: report_ (what reports read)
    and purged_ (what purged events had counted) have the same columns and meaning."""
    contacts = Table(
        f"{prefix}_contacts",
        metadata,
        Column("campaign_id", String(ID), primary_key=True),
        Column("contact_id", String(ID), primary_key=True),
        Column("opens", Integer, nullable=False),  # proxy_opens included
        Column("proxy_opens", Integer, nullable=False),
        Column("machine_opens", Integer, nullable=False),
        Column("first_open_ms", BigInteger, nullable=True),
        Column("last_open_ms", BigInteger, nullable=True),
        Column("clicks", Integer, nullable=False),
        Column("machine_clicks", Integer, nullable=False),
    )
    # Clicks per tracked link of a contact's messages (not the honeypot link).
    contact_links = Table(
        f"{prefix}_contact_links",
        metadata,
        Column("campaign_id", String(ID), primary_key=True),
        Column("contact_id", String(ID), primary_key=True),
        Column("message_id", String(16), primary_key=True),
        Column("link", Integer, primary_key=True),
        Column("destination", Text, nullable=True),
        Column("clicks", Integer, nullable=False),
        Column("machine_clicks", Integer, nullable=False),
    )
    # Per kind of event and verdict other than plain "human": how many events, by reason
    # without its per-event details (see report_aggregates.reason_label); reason_key hashes
    # kind, classification and reason.
    reasons = Table(
        f"{prefix}_reasons",
        metadata,
        Column("campaign_id", String(ID), primary_key=True),
        Column("reason_key", String(32), primary_key=True),
        Column("kind", String(8), nullable=False),
        Column("classification", String(16), nullable=False),
        Column("reason", Text, nullable=False),
        Column("events", Integer, nullable=False),
    )
    # Per quarter hour (UTC; every time zone is a whole number of quarter hours from UTC, so
    # the hours and days of any zone are sums of these).
    timeline = Table(
        f"{prefix}_timeline",
        metadata,
        Column("campaign_id", String(ID), primary_key=True),
        Column("bucket_ms", BigInteger, primary_key=True),
        Column("opens", Integer, nullable=False),
        Column("machine_opens", Integer, nullable=False),
        Column("clicks", Integer, nullable=False),
        Column("machine_clicks", Integer, nullable=False),
    )
    return contacts, contact_links, reasons, timeline


# report_contacts: recomputed from the events of the contact's messages of the campaign
# whenever one of them changes (a new event, a verdict changed after the fact), and
# report_contact_links likewise; report_reasons and report_timeline: each new event and each
# verdict that moves an event between human and machine is added there.
report_contacts, report_contact_links, report_reasons, report_timeline = _totals_tables("report")

# Per campaign: what changes in report_contacts is added here (unique_* count contacts).
report_campaigns = Table(
    "report_campaigns",
    metadata,
    Column("campaign_id", String(ID), primary_key=True),
    Column("opens", Integer, nullable=False),
    Column("unique_opens", Integer, nullable=False),
    Column("proxy_opens", Integer, nullable=False),
    Column("unique_proxy_opens", Integer, nullable=False),
    Column("machine_opens", Integer, nullable=False),
    Column("unique_machine_opens", Integer, nullable=False),
    Column("clicks", Integer, nullable=False),
    Column("unique_clicks", Integer, nullable=False),
    Column("machine_clicks", Integer, nullable=False),
    Column("unique_machine_clicks", Integer, nullable=False),
)

# Per campaign and destination: what changes in report_contact_links is added here.
# destination_key: a hash of the destination (a URL can be longer than an index entry).
report_links = Table(
    "report_links",
    metadata,
    Column("campaign_id", String(ID), primary_key=True),
    Column("destination_key", String(32), primary_key=True),
    Column("destination", Text, nullable=True),
    Column("clicks", Integer, nullable=False),
    Column("unique_clicks", Integer, nullable=False),
    Column("machine_clicks", Integer, nullable=False),
    Column("unique_machine_clicks", Integer, nullable=False),
)

# A campaign's messages by contact: reports find a contact's messages, page through a
# campaign's recipients and count them from this index alone.
Index(None, messages.c.campaign_id, messages.c.contact_id, messages.c.status)

# ---- the dashboard: who is signed in, and who is invited -------------------------------------
# A session is found by the SHA-256 of its cookie value (the value itself is never stored);
# csrf is the per-session token every dashboard form carries.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", String(ID), ForeignKey("users.id"), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
)

# An invitation link carries a random token; only its SHA-256 is kept. Accepted once.
invites = Table(
    "invites",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("account_id", String(ID), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("email", String(320), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("invited_by", String(ID), ForeignKey("users.id"), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Column("accepted_at_ms", BigInteger, nullable=True),
)

# ---- what purged events had counted (store/event_retention.py) -----------------------------
# Raw events older than an account's retention are deleted; what they had added to the
# reports is kept here, so reports recomputed from the events (a contact's rows when a new hit
# arrives, a campaign's on a rebuild) still count them. Same keys and meaning as the report
# tables they follow; reasons are kept as labels (report_aggregates.reason_label).
purged_contacts, purged_contact_links, purged_reasons, purged_timeline = _totals_tables("purged")
