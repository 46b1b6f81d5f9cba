"""The contact import's progress: a large file's page counts while it runs, then shows the result;
another account never sees the job; an import that fails or that the server stopped says so."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import func, select, text

from pixeltrail.platform.contacts.contacts import create_contact
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import contacts
from pixeltrail.web.dashboard.contacts.import_uploads import imports_dir, mark_started

from ..server.conftest import eventually
from .conftest import Site, User
from .tenants import another_account
from .test_contacts import account_id, finished, rows, upload

_BAR = re.compile(r'<progress id="import-bar" value="(\d+)" max="(\d+)">')


@contextmanager
def writes_held(site: Site) -> Iterator[None]:
    """Another writer holding the contacts table: the import waits to save, its page shows it."""
    with write_transaction(site.engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("LOCK TABLE contacts IN EXCLUSIVE MODE"))
        else:
            conn.execute(text("DELETE FROM contacts WHERE id = 'none'"))
        yield


def saving(user: User, path: str) -> tuple[int, int]:
    """Poll the progress section until it says contacts are being saved: (done, total)."""

    def check() -> tuple[int, int] | None:
        fragment = user.get(f"{path}/progress")
        assert fragment.status_code == 200
        bar = _BAR.search(fragment.text)
        if "Saving contacts" not in fragment.text or bar is None:
            return None
        return int(bar.group(1)), int(bar.group(2))

    return eventually(check, timeout=60)


def test_a_large_import_shows_its_progress_then_its_result(site: Site) -> None:
    owner = site.sign_up()
    account = account_id(site)
    with write_transaction(site.engine) as conn:
        for i in range(5):
            create_contact(conn, account, f"person{i}@example.com", first_name="Before")
    lines = ["email,first_name"]
    for i in range(20_000):
        lines.append(f"bad-{i},X" if i % 2000 == 1999 else f"person{i}@example.com,P{i}")
    path = upload(owner, "\n".join(lines) + "\n", "big.csv")
    mallory = another_account(site)

    with writes_held(site):
        started = owner.post(path, {"map_0": "email", "map_1": "first_name"})
        assert started.status_code == 303
        assert started.headers["location"] == path
        page = owner.get(path).text
        assert f'data-refresh="{path}/progress" data-every="1"' in page
        assert "Importing big.csv" in page
        # Checked (20,000 rows, 10 rejected), waiting to save 19,990 contacts: none saved yet.
        assert saving(owner, path) == (0, 19_990)
        fragment = owner.get(f"{path}/progress").text
        assert "20,000 rows read" in fragment, fragment
        assert "data-refresh-done" not in fragment
        # The job is the owner's only: another account, or an id never given out, finds nothing.
        assert mallory.get(path).status_code == 404
        assert mallory.get(f"{path}/progress").status_code == 404
        assert mallory.post(path, {"map_0": "email"}, token_from="/contacts").status_code == 404
        assert owner.get("/contacts/import/" + "x" * 32 + "/progress").status_code == 404
        # Pressing Import again does not start a second import.
        assert owner.post(path, {"map_0": "email"}).status_code == 303

    result = html.unescape(finished(owner, path))
    assert '<div class="value" id="import-rows">20000</div>' in result
    assert '<div class="value" id="import-created">19985</div>' in result
    assert '<div class="value" id="import-updated">5</div>' in result
    assert '<div class="value" id="import-rejected">10</div>' in result
    for i in range(1999, 20_000, 2000):
        assert f"<td class=\"num\">{i + 2}</td><td>'bad-{i}' is not a valid email address" in (
            result
        )
    assert mallory.get(path).status_code == 404
    found = rows(site)
    assert len(found) == 19_990
    assert found["person0@example.com"]["first_name"] == "P0"
    assert found["person19998@example.com"]["first_name"] == "P19998"


def test_a_file_found_broken_while_importing_imports_nothing(site: Site) -> None:
    owner = site.sign_up()
    good = "".join(f"p{i}@example.com,P{i}\n" for i in range(2000))
    # The first rows are fine (the upload step reads only those); a quote never closed further
    # down swallows the rest of the file, which is found only when importing.
    path = upload(owner, "email,name\n" + good + '"open@example.com,O\n' + good)
    started = owner.post(path, {"map_0": "email", "map_1": "custom", "name_1": "nick"})
    assert started.status_code == 303

    def failed() -> str | None:
        fragment = owner.get(f"{path}/progress").text
        return fragment if "data-refresh-done" in fragment else None

    fragment = html.unescape(eventually(failed, timeout=60))
    assert "line 2002: a quoted value starts here and is still open" in fragment
    assert "Choose the columns again" in fragment
    # The page is the mapping again, with the reason and the same choices; nothing imported.
    page = html.unescape(owner.get(path).text)
    assert "line 2002: a quoted value starts here" in page
    assert 'name="name_1" value="nick"' in page
    assert rows(site) == {}
    upload_id = path.rsplit("/", 1)[1]
    assert (imports_dir(site.settings) / f"{upload_id}.csv").exists()


def test_an_import_the_server_stopped_is_told_as_interrupted(site: Site) -> None:
    owner = site.sign_up()
    path = upload(owner, "email\nada@example.com\n")
    upload_id = path.rsplit("/", 1)[1]
    # What a restart during the import leaves behind: the upload with its mark, no job.
    mark_started(site.settings, upload_id)
    page = html.unescape(owner.get(path).text)
    assert "The import of this file was interrupted" in page
    assert "nothing from this file was imported" in page
    fragment = html.unescape(owner.get(f"{path}/progress").text)
    assert "This import was interrupted" in fragment
    assert "data-refresh-done" in fragment
    mallory = another_account(site)
    assert mallory.get(path).status_code == 404
    assert mallory.get(f"{path}/progress").status_code == 404
    # Importing again works, and the page no longer says interrupted.
    assert owner.post(path, {"map_0": "email"}).status_code == 303
    assert '<div class="value" id="import-created">1</div>' in finished(owner, path)
    with site.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(contacts)).scalar() == 1
    assert not (imports_dir(site.settings) / f"{upload_id}.started").exists()
