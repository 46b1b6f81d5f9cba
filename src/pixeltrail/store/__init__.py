"""Storage: SQLAlchemy Core tables, migrations and queries; one schema for SQLite and PostgreSQL.

Query functions take a `sqlalchemy.Connection`; the caller owns the transaction.
"""
