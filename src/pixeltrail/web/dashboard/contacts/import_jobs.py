"""Contact imports running in the background of the HTTP process: their progress and result.

The mapping step starts a job and answers at once; the progress page reads the job here. Jobs
live in this process's memory only, keyed by the upload's random id and the account: another
account never finds one. After a restart a job that was running is gone, and so is its work
(the contacts are saved in one transaction): the upload's `started` mark tells the pages so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine

from pixeltrail.config import Settings
from pixeltrail.platform.contacts.csv_import import Duplicate, Rejected, check_contacts_csv
from pixeltrail.platform.contacts.imports import save_contacts
from pixeltrail.platform.errors import Conflict, PlatformError
from pixeltrail.store.db import write_transaction
from pixeltrail.web.dashboard.contacts.import_uploads import Upload, discard_upload, mark_started

log = logging.getLogger(__name__)

MAX_JOBS = 64  # remembered at once: the oldest finished ones are forgotten first
MAX_RUNNING = 4  # running at once in this process (SQLite writes them one after another anyway)
KEEP_FINISHED = 600.0  # seconds a finished job's result can still be read
# The result lists this many rejected rows (and duplicates) at most: a broken file may reject
# them all.
SHOWN_REJECTIONS = 1000

CHECKING, SAVING, DONE, FAILED = "checking", "saving", "done", "failed"
# How a file's character set is given here, said when the file is not text in the one chosen.
CHOOSE_CHARSET = "choose its character set in the form"


@dataclass
class ImportJob:
    """One import: where it is (phase, done of total) and, once finished, what it did."""

    upload: Upload
    account_id: str
    # The mapping form as posted, to show the same choices again if the import fails.
    posted: dict[str, str]
    phase: str = CHECKING
    done: int = 0
    total: int = 0
    rows: int = 0
    created: int = 0
    updated: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    rejected_count: int = 0
    duplicates: list[Duplicate] = field(default_factory=list)
    duplicate_count: int = 0
    error: PlatformError | None = None
    finished_at: float | None = None

    @property
    def running(self) -> bool:
        return self.finished_at is None

    def progress(self, done: int, total: int) -> None:
        """The importer's callback: `done` of `total` in the current phase."""
        self.done, self.total = done, total


_jobs: dict[tuple[str, str], ImportJob] = {}
_lock = threading.Lock()


def find_job(upload_id: str, account_id: str) -> ImportJob | None:
    with _lock:
        forget_finished()
        return _jobs.get((upload_id, account_id))


def forget_finished(now: float | None = None) -> None:
    """Forget jobs finished more than KEEP_FINISHED seconds ago (call with the lock held)."""
    cutoff = (time.time() if now is None else now) - KEEP_FINISHED
    for key, job in list(_jobs.items()):
        if job.finished_at is not None and job.finished_at < cutoff:
            del _jobs[key]


def start_import(
    engine: Engine,
    settings: Settings,
    upload: Upload,
    data: bytes,
    mapping: Mapping[str, str],
    posted: dict[str, str],
) -> ImportJob:
    """Start importing the upload in a thread; Conflict when this process has too many."""
    job = ImportJob(upload, upload.account_id, posted)
    with _lock:
        forget_finished()
        if sum(other.running for other in _jobs.values()) >= MAX_RUNNING:
            raise Conflict("other imports are running: wait a minute and press Import again")
        if len(_jobs) >= MAX_JOBS:
            oldest = min(
                (key for key, other in _jobs.items() if not other.running),
                key=lambda key: _jobs[key].finished_at or 0.0,
            )
            del _jobs[oldest]
        _jobs[(upload.id, upload.account_id)] = job
    mark_started(settings, upload.id)
    thread = threading.Thread(
        target=_run, args=(job, engine, settings, data, mapping), daemon=True, name="import"
    )
    thread.start()
    return job


def _run(
    job: ImportJob, engine: Engine, settings: Settings, data: bytes, mapping: Mapping[str, str]
) -> None:
    try:
        checked = check_contacts_csv(
            data, mapping, job.upload.encoding, job.progress, name_it=CHOOSE_CHARSET
        )
        job.rows = checked.rows
        job.phase, job.done, job.total = SAVING, 0, len(checked.contacts)
        with write_transaction(engine) as conn:
            result = save_contacts(conn, job.account_id, checked, on_progress=job.progress)
    except Exception as exc:
        if not isinstance(exc, PlatformError):
            log.exception("contact import %s failed", job.upload.id)
            exc = PlatformError("the import failed on the server; nothing was imported")
        # Rolled back: the upload stays, to choose the columns again and retry.
        mark_started(settings, job.upload.id, started=False)
        job.error, job.phase = exc, FAILED
    else:
        discard_upload(settings, job.upload.id)
        job.created, job.updated = result.created, result.updated
        job.rejected = result.rejected[:SHOWN_REJECTIONS]
        job.rejected_count = len(result.rejected)
        job.duplicates = result.duplicates[:SHOWN_REJECTIONS]
        job.duplicate_count = len(result.duplicates)
        job.phase = DONE
    job.finished_at = time.time()
