"""Reading a contacts CSV: encoding, separator, records with their line numbers, columns, rows.

Nothing here touches the database: `check_contacts_csv` turns the file's bytes into the
contacts it holds, the rows it rejects and the rows that repeat an address, or raises Invalid
when the file as a whole cannot be imported. `contact_import.save_contacts` then writes them.

- Encoding: UTF-8, with or without a BOM; UTF-16 with a BOM (Excel's "Unicode text"). Other
  bytes are refused with the line of the first bad byte, never guessed (a windows-1251 file
  read as windows-1252 would import garbage): the caller may name the encoding instead,
  any character set Python reads (`text_encoding`), never one of its transforms (rot13,
  base64, zlib, ...). How to name it differs by caller (a header, an option, a form): the
  refusal says it in the caller's words (`name_it`).
- Separator: `,` `;` or tab, whichever the header line has most of outside quotes (`,` on a
  tie); Excel's `sep=;` first line is honoured.
- Lines are physical: 1 is the header, a record is reported at the line it starts on.
- Columns: the header names them (see `columns.py`); cells are trimmed.
- Rows: a blank row is skipped; a row that cannot be used is rejected with its reason, the
  others are imported. An address on several rows: the first usable row of it is imported,
  the later ones are left out whole (none of their cells is used) and listed as duplicates
  with the line of that first row. Every row read is in exactly one of: a contact, rejected,
  duplicate.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pixeltrail.platform.contacts.addresses import normalize_email
from pixeltrail.platform.contacts.contacts import clean_name, clean_value
from pixeltrail.platform.contacts.csv_columns import Column, map_columns
from pixeltrail.platform.errors import Invalid

MAX_BYTES = 64 * 1024 * 1024
MAX_ROWS = 100_000
MAX_FIELD = 64 * 1024
MAX_LINE = 1024 * 1024
DELIMITERS = (",", ";", "\t")
PROGRESS_EVERY = 1000
NOTHING = "nothing was imported"
_NAME_ONE = f"name the file's character set, such as UTF-8 or windows-1252; {NOTHING}"
# How the API's and the CLI's users give a file's character set, said when a file is no text.
NAME_ENCODING = "name its encoding (such as windows-1252)"
# Codecs Python calls text encodings that are no file's character set: "undefined" always
# fails, the others read escapes and domain labels.
_NOT_CHARSETS = frozenset(
    {"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape", "charmap"}
)

Progress = Callable[[int, int], None]

_LINE_END = re.compile(r"\r\n|\r|\n")
_QUOTED = re.compile(r'"[^"]*"')
_SEP_LINE = re.compile(r"sep=(.)(?:\r\n|\r|\n|$)", re.IGNORECASE)
_FIRST_TEXT = re.compile(r"[^\r\n]")


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str

    def as_record(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


@dataclass(frozen=True)
class Duplicate:
    """A row whose address an earlier row of the file gives: left out, the first row wins."""

    line: int
    email: str
    first_line: int

    @property
    def reason(self) -> str:
        return (
            f"{self.email} is already on line {self.first_line}: the first row of an address "
            "is imported, this one is left out"
        )

    def as_record(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "email": self.email,
            "first_line": self.first_line,
            "reason": self.reason,
        }


@dataclass
class ContactRow:
    """One contact as the file's first row of its address gives it; only non-empty values."""

    line: int
    email: str
    names: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class CheckedFile:
    contacts: list[ContactRow]
    rejected: list[Rejected]
    rows: int
    duplicates: list[Duplicate] = field(default_factory=list)


def text_encoding(name: str) -> str:
    """Python's codec for a character set someone named; Invalid naming it when Python does
    not know it or it is no character set (its transforms: rot13, base64, zlib_codec, ...)."""
    shown = repr(name[:40])
    try:
        codec = codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        raise Invalid(f"unknown encoding {shown}; {_NAME_ONE}", "encoding") from None
    if not codec._is_text_encoding or codec.name in _NOT_CHARSETS:
        raise Invalid(f"{shown} is not a character set; {_NAME_ONE}", "encoding")
    return codec.name


def detected_encoding(data: bytes) -> str:
    """The encoding of a file when none is named: UTF-16 by its byte order mark, else UTF-8
    (with or without one)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8"


def shown_encoding(name: str) -> str:
    """An encoding's name as messages and pages show it: UTF-8, UTF-16, windows-1252."""
    return name.upper() if name in {"utf-8", "utf-16"} else name


def decode(data: bytes, encoding: str | None = None, name_it: str = NAME_ENCODING) -> str:
    """The file's text, without its byte order mark; Invalid saying where it is not text,
    and, in the caller's words (`name_it`), how to give its character set."""
    if len(data) > MAX_BYTES:
        raise Invalid(f"the file is larger than {MAX_BYTES // 1024 // 1024} MiB; {NOTHING}")
    if encoding is None:
        encoding = detected_encoding(data)
    codec = text_encoding(encoding)
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise Invalid(
            f"the file is not {shown_encoding(encoding)} text: byte 0x{data[exc.start]:02X} "
            f'on line {line} cannot be read; save it as UTF-8 (Excel: "CSV UTF-8") or '
            f"{name_it}; {NOTHING}",
            "encoding",
        ) from None
    except UnicodeError:  # a codec that cannot say where (one registered by another library)
        raise Invalid(
            f"the file cannot be read as {encoding[:40]!r}; {_NAME_ONE}", "encoding"
        ) from None
    return text.removeprefix("\ufeff")


class _LineTooLong(Exception):
    pass


class _Lines:
    """The text's physical lines (\\r\\n, \\n or \\r), counted, for csv.reader.

    A line over MAX_LINE is never handed to csv (which would build it into fields): its turn
    raises _LineTooLong instead, and the next call goes on with the following line.
    """

    def __init__(self, text: str, start: int, line: int) -> None:
        self._text = text
        self._ends = _LINE_END.finditer(text, start)
        self._pos = start
        self.count = line - 1

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._pos >= len(self._text):
            raise StopIteration
        found = next(self._ends, None)
        begin, self._pos = self._pos, found.end() if found else len(self._text)
        self.count += 1
        if self._pos - begin > MAX_LINE:
            raise _LineTooLong
        return self._text[begin : self._pos]


def _csv_reason(exc: csv.Error) -> str:
    message = str(exc)
    if "field limit" in message:
        return f"a field is longer than {MAX_FIELD // 1024} KiB"
    if "expected after" in message:
        return 'a quoted value must end at its closing quote (a quote inside quotes is written "")'
    if "unexpected end of data" in message:
        return "a quoted value is never closed"
    return message


def _delimiter(text: str, start: int) -> tuple[str, int, int]:
    """The separator, and where the header starts (offset, line): after a `sep=` line if any."""
    sep = _SEP_LINE.match(text, start)
    if sep and sep.group(1) in DELIMITERS:
        return sep.group(1), sep.end(), 2
    found = _FIRST_TEXT.search(text, start)
    begin = found.start() if found else len(text)
    end = _LINE_END.search(text, begin)
    header = text[begin : end.start() if end else len(text)]
    if len(header) > MAX_LINE:
        raise Invalid(f"the header line is longer than 1 MiB: is this a CSV file? {NOTHING}")
    unquoted = _QUOTED.sub("", header)
    counts = [unquoted.count(d) for d in DELIMITERS]
    return DELIMITERS[counts.index(max(counts))], start, 1


def records(text: str) -> Iterator[tuple[int, list[str]] | Rejected]:
    """(line, cells) for each record, or Rejected for a record csv cannot read.

    When a broken record spans several lines (an unclosed quote swallowing what follows),
    no line after it can be trusted: Invalid, nothing is imported.
    """
    delimiter, start, line = _delimiter(text, 0)
    lines = _Lines(text, start, line)
    reader = csv.reader(lines, delimiter=delimiter, quotechar='"', strict=True)
    while True:
        first = lines.count + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except (_LineTooLong, csv.Error) as exc:
            if isinstance(exc, csv.Error):
                reason = _csv_reason(exc)
            else:
                reason = f"the line is longer than {MAX_LINE // 1024 // 1024} MiB"
            if lines.count == first:
                yield Rejected(first, reason)
                continue
            raise Invalid(
                f"line {first}: a quoted value starts here and is still open on line "
                f"{lines.count} ({reason}); {NOTHING}"
            ) from None
        yield first, cells


def _read(text: str) -> tuple[int, list[str], list[tuple[int, list[str]]], list[Rejected]]:
    header: tuple[int, list[str]] | None = None
    rows: list[tuple[int, list[str]]] = []
    rejected: list[Rejected] = []
    for item in records(text):
        if isinstance(item, Rejected):
            if header is None:
                raise Invalid(f"line {item.line} (the header): {item.reason}; {NOTHING}")
            rejected.append(item)
        elif not any(cell.strip() for cell in item[1]):
            continue
        elif header is None:
            header = item
        else:
            rows.append(item)
        if len(rows) + len(rejected) > MAX_ROWS:
            raise Invalid(
                f"the file has more than {MAX_ROWS:,} rows; split it into files of at most "
                f"{MAX_ROWS:,} rows; {NOTHING}"
            )
    if header is None:
        raise Invalid(f"the file is empty: it needs a header row naming its columns; {NOTHING}")
    return header[0], header[1], rows, rejected


@dataclass(frozen=True)
class Preview:
    """A file's header (its line and cells) and its first rows, to choose a mapping from."""

    header_line: int
    header: list[str]
    samples: list[list[str]]


def preview_csv(
    data: bytes, encoding: str | None = None, rows: int = 3, *, name_it: str = NAME_ENCODING
) -> Preview:
    """The header and first `rows` non-blank rows; Invalid when the file cannot be read."""
    header: tuple[int, list[str]] | None = None
    samples: list[list[str]] = []
    for item in records(decode(data, encoding, name_it)):
        if isinstance(item, Rejected):
            if header is None:
                raise Invalid(f"line {item.line} (the header): {item.reason}; {NOTHING}")
            continue
        if not any(cell.strip() for cell in item[1]):
            continue
        if header is None:
            header = item
        elif len(samples) < rows:
            samples.append([cell.strip() for cell in item[1]])
        else:
            break
    if header is None:
        raise Invalid(f"the file is empty: it needs a header row naming its columns; {NOTHING}")
    return Preview(header[0], [cell.strip() for cell in header[1]], samples)


def _row(cells: list[str], columns: list[Column | None]) -> tuple[str, ContactRow]:
    """The row's email and values; Invalid (the reason) if the row cannot be used."""
    extra = [cell for cell in cells[len(columns) :] if cell.strip()]
    if extra:
        raise Invalid(
            f"the row has {len(cells)} cells but the header has {len(columns)} "
            "(a separator inside a value needs quotes)"
        )
    if any(len(cell) > MAX_FIELD for cell in cells):
        raise Invalid(f"a field is longer than {MAX_FIELD // 1024} KiB")
    email = ""
    row = ContactRow(0, "")
    for column, cell in zip(columns, cells, strict=False):
        if column is None or not cell.strip():
            continue
        if column.target == "email":
            email = cell
        elif column.key is not None:
            row.fields[column.key] = clean_value(cell, column.key)
        else:
            row.names[column.target] = clean_name(cell, column.target)
    if not email.strip():
        raise Invalid("no email address")
    row.email = normalize_email(email)
    return row.email, row


def check_contacts_csv(
    data: bytes,
    mapping: Mapping[str, str] | None = None,
    encoding: str | None = None,
    on_progress: Progress | None = None,
    *,
    name_it: str = NAME_ENCODING,
) -> CheckedFile:
    """The contacts in a CSV file and its rejected rows; Invalid if the file cannot be used.

    `mapping` names columns: {"Email Address": "email", "Org": "company", "Plan":
    "fields.plan", "Notes": "ignore"}. `on_progress(done_rows, total_rows)` follows the checks.
    `name_it` says how the caller's users give the file's character set (see `decode`).
    """
    text = decode(data, encoding, name_it)
    header_line, header, rows, rejected = _read(text)
    columns = map_columns(header, mapping or {}, header_line)
    first: dict[str, ContactRow] = {}
    duplicates: list[Duplicate] = []
    total = len(rows)
    unreadable = len(rejected)  # records csv could not read; rows rejected below add to the list
    for done, (line, cells) in enumerate(rows, 1):
        try:
            email, row = _row(cells, columns)
        except Invalid as exc:
            rejected.append(Rejected(line, exc.message))
        else:
            if email in first:
                duplicates.append(Duplicate(line, email, first[email].line))
            else:
                row.line = line
                first[email] = row
        if on_progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
            on_progress(done, total)
    rejected.sort(key=lambda item: item.line)
    return CheckedFile(list(first.values()), rejected, total + unreadable, duplicates)
