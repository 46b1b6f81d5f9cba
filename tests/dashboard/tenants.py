"""A second tenant of the instance for isolation tests (the dashboard signs up only the first)."""

from __future__ import annotations

from pixeltrail.platform.accounts.accounts import create_account
from pixeltrail.platform.accounts.users import set_password
from pixeltrail.store.db import write_transaction

from .conftest import PASSWORD, Site, User


def another_account(site: Site, email: str = "mallory@other.example") -> User:
    """A user of another account, signed in."""
    with write_transaction(site.engine) as conn:
        create_account(conn, "Other", email)
        set_password(conn, email, PASSWORD)
    return site.sign_in(email)
