"""What every subcommand shares: settings, the database, the account, clean failures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from sqlalchemy import Connection, Engine, select

from pixeltrail.config import Settings
from pixeltrail.platform.errors import NotFound
from pixeltrail.store.db import open_store
from pixeltrail.store.schema import accounts

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> click.ClickException:
    return click.ClickException(message)


def settings() -> Settings:
    return Settings.from_env()


@contextmanager
def open_engine() -> Iterator[Engine]:
    """The database, migrated, disposed of afterwards."""
    engine = open_store(settings())
    try:
        yield engine
    finally:
        engine.dispose()


def account_option(command: F) -> F:
    return click.option(
        "--account",
        "account_id",
        help="Account id (optional when the instance has a single account).",
    )(command)


def resolve_account(conn: Connection, account_id: str | None) -> str:
    """The account a command acts for: the one named, or the only one there is."""
    if account_id is not None:
        if conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first() is None:
            raise NotFound(f"no account {account_id}")
        return account_id
    ids = [row.id for row in conn.execute(select(accounts.c.id).limit(2))]
    if len(ids) == 1:
        return str(ids[0])
    if not ids:
        raise fail("no account yet: create one with `pixeltrail account create`")
    raise fail("this instance has several accounts: name one with --account")
