"""The tables, as SQLAlchemy Core metadata: what the migrations create, what queries use."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

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

# One row per recorded hit, kept forever with its verdict; times are UTC epoch milliseconds.
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
