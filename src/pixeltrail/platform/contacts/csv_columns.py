"""Which contact value each column of an imported CSV holds: by its header, or as mapped.

By header, case, spaces and punctuation aside: email / e-mail / email address / mail;
first name / firstname / given name / forename; last name / surname / family name;
company / company name / organization / organisation. `fields.<name>` (what an export
writes) is that custom field. Any other column is a custom field named after its header
("Plan Tier" → plan_tier, "Société" → societe, "2024 Revenue" → f_2024_revenue).

Left out: columns with an empty header (a trailing separator), and the bookkeeping columns an
export adds (id, suppressed, created_at, updated_at). A mapping overrides any of this.

A mapping names a column by its header; `#<n>` names the n-th column (from 1) when no header is
called that, for a file whose header repeats a name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from pixeltrail.platform.contacts.contacts import MAX_FIELDS, MAX_KEY, NAMES, check_key
from pixeltrail.platform.errors import Invalid

IGNORE = "ignore"
MAX_MAPPING = 500
SYNONYMS = {
    "email": ("email", "emailaddress", "mail"),
    "first_name": ("firstname", "givenname", "forename"),
    "last_name": ("lastname", "surname", "familyname"),
    "company": ("company", "companyname", "organization", "organisation"),
}
_BY_SYNONYM = {word: target for target, words in SYNONYMS.items() for word in words}
_BOOKKEEPING = {"id", "suppressed", "createdat", "updatedat"}
_NOTHING = "nothing was imported"
_POSITION = re.compile(r"#([1-9][0-9]{0,3})")


@dataclass(frozen=True)
class Column:
    """A column's destination: "email", a name ("first_name"...), or "fields" with its key."""

    target: str
    key: str | None = None

    @property
    def label(self) -> str:
        return f"fields.{self.key}" if self.key else self.target


def _squash(header: str) -> str:
    return re.sub(r"[^0-9a-z]", "", header.casefold())


def custom_key(header: str) -> str | None:
    """A field name made from a header, or None when nothing usable is left."""
    plain = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    key = re.sub(r"[^a-z0-9]+", "_", plain.lower()).strip("_")
    if key and not key[0].isalpha():
        key = f"f_{key}"
    return key[:MAX_KEY].rstrip("_") or None


def _target(value: object) -> Column | None:
    if value == IGNORE:
        return None
    if value == "email" or value in NAMES:
        return Column(str(value))
    if isinstance(value, str) and value.startswith("fields."):
        return Column("fields", check_key(value.removeprefix("fields."), "mapping"))
    raise Invalid(
        f"mapping: {str(value)[:80]!r} is not a contact field (email, first_name, last_name, "
        f"company, fields.<name> or {IGNORE})",
        "mapping",
    )


def _by_header(header: str, position: int) -> Column | None:
    squashed = _squash(header)
    if not header or squashed in _BOOKKEEPING:
        return None
    if squashed in _BY_SYNONYM:
        return Column(_BY_SYNONYM[squashed])
    name = header[len("fields.") :] if header.lower().startswith("fields.") else header
    key = custom_key(name)
    if key is None:
        raise Invalid(
            f"column {position} ({header[:80]!r}) has no name usable for a custom field; map "
            f'it to "fields.<name>" or "{IGNORE}"; {_NOTHING}',
            "mapping",
        )
    return Column("fields", key)


def guess_target(header: str) -> str:
    """What a column holds when no mapping says otherwise, as a mapping value: "email",
    "first_name", "fields.plan"..., or "ignore" (left out, or no usable field name)."""
    try:
        column = _by_header(header.strip(), 0)
    except Invalid:
        return IGNORE
    return IGNORE if column is None else column.label


def _fold(header: str) -> str:
    return " ".join(header.casefold().split())


def _mapped(header: list[str], mapping: Mapping[str, str]) -> dict[int, Column | None]:
    if len(mapping) > MAX_MAPPING:
        raise Invalid(f"mapping names {MAX_MAPPING} columns at most", "mapping")
    chosen: dict[int, Column | None] = {}
    for name, value in mapping.items():
        if not isinstance(name, str):
            raise Invalid("mapping is an object of column names to fields", "mapping")
        exact = [i for i, cell in enumerate(header) if cell == name.strip()]
        near = exact or [i for i, cell in enumerate(header) if _fold(cell) == _fold(name)]
        position = _POSITION.fullmatch(name.strip())
        if not near and position and int(position.group(1)) <= len(header):
            near = [int(position.group(1)) - 1]
        if not near:
            listed = ", ".join(repr(cell) for cell in header if cell)[:500]
            raise Invalid(
                f"mapping names the column {name[:80]!r}, which the header does not have "
                f"(it has {listed}); {_NOTHING}",
                "mapping",
            )
        chosen[near[0]] = _target(value)
    return chosen


def map_columns(header: list[str], mapping: Mapping[str, str], line: int) -> list[Column | None]:
    """Each header cell's Column (None: left out); Invalid if the columns cannot work."""
    header = [cell.strip() for cell in header]
    mapped = _mapped(header, mapping)
    columns = [
        mapped[i] if i in mapped else _by_header(cell, i + 1) for i, cell in enumerate(header)
    ]
    seen: dict[str, int] = {}
    for i, column in enumerate(columns):
        if column is None:
            continue
        if column.label in seen:
            first = seen[column.label]
            raise Invalid(
                f"columns {first + 1} ({header[first][:80]!r}) and {i + 1} ({header[i][:80]!r}) "
                f'both hold {column.label}; map one of them to "{IGNORE}"; {_NOTHING}',
                "mapping",
            )
        seen[column.label] = i
    if "email" not in seen:
        listed = ", ".join(repr(cell[:80]) for cell in header if cell)[:500] or "none"
        raise Invalid(
            f"the header (line {line}) has no email column (its columns: {listed}); name "
            f'one "email", or map it: {{"<column>": "email"}}; {_NOTHING}',
            "mapping",
        )
    custom = sum(1 for column in columns if column is not None and column.key)
    if custom > MAX_FIELDS:
        raise Invalid(
            f"{custom} columns would become custom fields, and a contact has at most "
            f'{MAX_FIELDS}: map the others to "{IGNORE}"; {_NOTHING}',
            "mapping",
        )
    return columns
