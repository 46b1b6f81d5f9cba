"""Query rows as typed records: one NamedTuple or dataclass per query shape, checked by mypy."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import Row

T = TypeVar("T")


def typed(shape: Callable[..., T], row: Row[*tuple[Any, ...]]) -> T:
    """The row as `shape`, by column name: a column the shape lacks, or the reverse, raises."""
    return shape(**row._mapping)


def typed_rows(shape: Callable[..., T], rows: Iterable[Row[*tuple[Any, ...]]]) -> list[T]:
    """Each row as `shape`, in order."""
    return [typed(shape, row) for row in rows]
