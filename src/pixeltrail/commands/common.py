"""What every subcommand shares: settings, the database, the account, clean failures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from sqlalchemy import Connection, Engine

from pixeltrail.config import Settings
from pixeltrail.platform.accounts.accounts import NoAccountYet, SeveralAccounts, acting_account
from pixeltrail.store.db import open_store

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


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


def json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)


def all_pages(fetch: Callable[[str | None], tuple[list[T], str | None]]) -> Iterator[T]:
    """Every item of a paged list: `fetch` takes a cursor and gives a page and the next one."""
    cursor: str | None = None
    while True:
        items, cursor = fetch(cursor)
        yield from items
        if cursor is None:
            return


def resolve_account(conn: Connection, account_id: str | None) -> str:
    """The account a command acts for: the one named, or the only one there is."""
    try:
        return acting_account(conn, account_id)
    except NoAccountYet:
        raise fail("no account yet: create one with `pixeltrail account create`") from None
    except SeveralAccounts:
        raise fail("this instance has several accounts: name one with --account") from None
