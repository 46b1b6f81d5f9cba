"""Importing contacts from CSV: upload, map each column to a contact value, import, the result.

The same all-or-nothing rule as the API: the file is checked first, then saved in one
transaction; a file that cannot be used imports nothing, and rows that cannot be used are
listed with their line numbers while the others are imported. The import runs in the background
(import_jobs): its page shows the progress, then the result, refreshed by app.js. A file that
is not UTF-8 is read in the character set chosen with it, kept with the upload for every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.responses import Response

from pixeltrail.platform.contacts.contacts import NAMES
from pixeltrail.platform.contacts.csv_columns import IGNORE, custom_key, guess_target, map_columns
from pixeltrail.platform.contacts.csv_import import (
    Preview,
    detected_encoding,
    preview_csv,
    shown_encoding,
    text_encoding,
)
from pixeltrail.platform.errors import Invalid, NotFound, PlatformError
from pixeltrail.web.api.limits import UPLOAD_LIMIT
from pixeltrail.web.dashboard.contacts.import_jobs import (
    CHOOSE_CHARSET,
    FAILED,
    SHOWN_REJECTIONS,
    ImportJob,
    find_job,
    start_import,
)
from pixeltrail.web.dashboard.contacts.import_uploads import (
    GONE,
    load_upload,
    save_upload,
    was_started,
)
from pixeltrail.web.dashboard.pages import Ctx, page, route, upload_page

CUSTOM = "custom"
TARGETS = (
    ("email", "Email address"),
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("company", "Company"),
    (CUSTOM, "Custom field"),
    (IGNORE, "Leave out"),
)
# The upload form's character sets: those of Excel and older systems that files come in.
# Another name Python reads as a character set is taken too (the API and CLI take any).
AUTO = ""
CHARSETS = (
    (AUTO, "UTF-8 (recommended; also detects a byte-order mark)"),
    ("windows-1252", "windows-1252 (Western, Excel on Windows)"),
    ("iso-8859-1", "iso-8859-1 (Western, Latin-1)"),
    ("iso-8859-15", "iso-8859-15 (Western with €, Latin-9)"),
    ("windows-1250", "windows-1250 (Central European)"),
    ("windows-1251", "windows-1251 (Cyrillic)"),
    ("mac-roman", "mac-roman (Western, older Macs)"),
    ("shift_jis", "shift_jis (Japanese)"),
    ("gb18030", "gb18030 (Chinese)"),
    ("utf-16", "UTF-16 (Excel: “Unicode text”)"),
)


@dataclass(frozen=True)
class ColumnChoice:
    """One column of the file on the mapping page: what it holds, and what it is mapped to."""

    position: int
    header: str
    samples: list[str]
    target: str
    custom_name: str


def _upload_form(ctx: Ctx, status: int = 200, error: PlatformError | None = None) -> Response:
    return ctx.render(
        "contacts/import.html",
        status=status,
        error=error,
        limit_mib=UPLOAD_LIMIT // 1024 // 1024,
        charsets=CHARSETS,
        chosen=ctx.field("encoding", AUTO),
    )


def _encoding(ctx: Ctx) -> str | None:
    """The character set chosen for the file (None: UTF-8, or UTF-16 by its byte order mark);
    Invalid naming a value that is no character set, as the API refuses it."""
    chosen = ctx.field("encoding", AUTO).strip()
    if chosen == AUTO:
        return None
    text_encoding(chosen)
    return chosen


@upload_page(UPLOAD_LIMIT)
def import_upload(ctx: Ctx) -> Response:
    if ctx.form is None:
        return _upload_form(ctx)
    file = ctx.form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        return _upload_form(ctx, 422, Invalid("choose a CSV file to upload", "file"))
    try:
        data = file.file.read()
    finally:
        # The spooled copy is ours to close (on disk when large); the page keeps its own.
        file.file.close()
    with ctx.form_errors(lambda exc: _upload_form(ctx, exc.status, exc)):
        encoding = _encoding(ctx)
        # Unreadable files are refused here, before any mapping.
        preview_csv(data, encoding, name_it=CHOOSE_CHARSET)
    upload = save_upload(ctx.settings, ctx.account_id, file.filename, data, encoding)
    return ctx.redirect(f"/contacts/import/{upload.id}")


def _choices(preview: Preview, posted: Mapping[str, str] | None = None) -> list[ColumnChoice]:
    """Each column with its mapping: as posted, else guessed from its header."""
    found = []
    for i, header in enumerate(preview.header):
        samples = [row[i] for row in preview.samples if i < len(row) and row[i]]
        guess = guess_target(header)
        target, name = guess, custom_key(header) or ""
        if guess.startswith("fields."):
            target, name = CUSTOM, guess.removeprefix("fields.")
        if posted is not None:
            target = posted.get(f"map_{i}", IGNORE)
            name = posted.get(f"name_{i}", name).strip()
        found.append(ColumnChoice(i, header, samples, target, name))
    return found


def _mapping(choices: list[ColumnChoice]) -> dict[str, str]:
    """The importer's mapping: column name → value, or `#<n>` for a name the header repeats."""
    mapping: dict[str, str] = {}
    names = [choice.header for choice in choices]
    for choice in choices:
        key = choice.header
        if names.count(key) > 1 and names.index(key) != choice.position:
            key = f"#{choice.position + 1}"
        if choice.target == CUSTOM:
            if not choice.custom_name:
                raise Invalid(
                    f"column {choice.position + 1} ({choice.header[:80]!r}) is a custom field: "
                    "give the field a name",
                    "mapping",
                )
            mapping[key] = f"fields.{choice.custom_name}"
        elif choice.target in {"email", IGNORE, *NAMES}:
            mapping[key] = choice.target
        else:
            raise Invalid(f"column {choice.position + 1}: choose what it holds", "mapping")
    return mapping


def _posted(ctx: Ctx) -> dict[str, str] | None:
    if ctx.form is None:
        return None
    return {
        key: value
        for key, value in ctx.form.items()
        if isinstance(value, str) and key.startswith(("map_", "name_"))
    }


@page
def import_mapping(ctx: Ctx) -> Response:
    """The mapping form; once posted (or while the import runs, or after it), its progress."""
    upload_id = ctx.params["upload_id"]
    job = find_job(upload_id, ctx.account_id)
    if job is not None and job.phase != FAILED:
        if ctx.form is not None:  # pressed Import twice: the one import is already here
            return ctx.redirect(f"/contacts/import/{upload_id}")
        return _progress_page(ctx, job)
    upload, data = load_upload(ctx.settings, ctx.account_id, upload_id)
    preview = preview_csv(data, upload.encoding, name_it=CHOOSE_CHARSET)
    posted = _posted(ctx)
    if posted is None and job is not None:
        posted = job.posted  # failed: the same choices again, with the reason
    choices = _choices(preview, posted)

    def mapping_page(status: int = 200, error: PlatformError | None = None) -> Response:
        return ctx.render(
            "contacts/mapping.html",
            status=status,
            upload=upload,
            read_as=shown_encoding(upload.encoding or detected_encoding(data)),
            preview=preview,
            columns=choices,
            targets=TARGETS,
            error=error,
            interrupted=ctx.form is None and job is None and was_started(ctx.settings, upload_id),
        )

    if ctx.form is None:
        return mapping_page(error=job.error if job is not None else None)
    # Nothing was imported when refused: the same file and choices again, with the reason.
    with ctx.form_errors(lambda exc: mapping_page(exc.status, exc)):
        mapping = _mapping(choices)
        map_columns(preview.header, mapping, preview.header_line)
        start_import(ctx.engine, ctx.settings, upload, data, mapping, posted or {})
    return ctx.redirect(f"/contacts/import/{upload_id}")


def _progress_page(ctx: Ctx, job: ImportJob) -> Response:
    return ctx.render("contacts/import_progress.html", job=job, shown_rejections=SHOWN_REJECTIONS)


@page
def import_progress(ctx: Ctx) -> Response:
    """The progress section of the import's page, for app.js to refresh it."""
    upload_id = ctx.params["upload_id"]
    job = find_job(upload_id, ctx.account_id)
    if job is None:
        # Not running here: after a restart the upload is still there, with its mark.
        load_upload(ctx.settings, ctx.account_id, upload_id)
        if not was_started(ctx.settings, upload_id):
            raise NotFound(GONE)
    return ctx.render(
        "contacts/_import_progress.html",
        job=job,
        upload_id=upload_id,
        shown_rejections=SHOWN_REJECTIONS,
    )


routes = [
    route("/contacts/import", import_upload, "GET", "POST"),
    route("/contacts/import/{upload_id}", import_mapping, "GET", "POST"),
    route("/contacts/import/{upload_id}/progress", import_progress, "GET"),
]
