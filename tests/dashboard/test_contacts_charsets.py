"""The character set of a CSV file imported in the dashboard: chosen in the upload form, kept
with the upload through the mapping step and the import, refused by name when it is none."""

from __future__ import annotations

import html
import json

import httpx
from sqlalchemy import select

from pixeltrail.store.schema import contacts
from pixeltrail.web.dashboard.contacts.import_uploads import imports_dir

from .conftest import Site, User
from .test_contacts import imported

# Excel on Windows saves "CSV (Comma delimited)" in windows-1252: ü is 0xFC, € is 0x80.
WESTERN = "email,last_name,company\nmax@example.com,Müller,Café €\n".encode("cp1252")


def send(user: User, data: bytes, encoding: str | None = None) -> httpx.Response:
    form = {} if encoding is None else {"encoding": encoding}
    return user.post(
        "/contacts/import",
        form,
        token_from="/contacts/import",
        files={"file": ("people.csv", data, "text/csv")},
    )


def uploads(site: Site) -> list[str]:
    folder = imports_dir(site.settings)
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_a_windows_1252_file_imports_when_its_character_set_is_chosen(site: Site) -> None:
    owner = site.sign_up()
    form = owner.get("/contacts/import").text
    assert '<select name="encoding">' in form
    assert '<option value="" selected>UTF-8 (recommended; also detects a byte-order mark)' in form
    assert '<option value="windows-1252">windows-1252 (Western, Excel on Windows)' in form

    # Not chosen: refused at the upload, saying where to choose it, and nothing is kept.
    refused = send(owner, WESTERN)
    assert refused.status_code == 422
    message = html.unescape(refused.text)
    assert (
        "the file is not UTF-8 text: byte 0xFC on line 2 cannot be read; save it as UTF-8 "
        '(Excel: "CSV UTF-8") or choose its character set in the form; nothing was imported'
    ) in message
    assert "name its encoding" not in message
    assert uploads(site) == []

    answer = send(owner, WESTERN, "windows-1252")
    assert answer.status_code == 303, answer.text
    path = answer.headers["location"]
    upload_id = path.rsplit("/", 1)[1]
    record = json.loads((imports_dir(site.settings) / f"{upload_id}.json").read_text())
    assert record["encoding"] == "windows-1252"
    page = owner.get(path).text
    assert '<span id="read-as">read as windows-1252</span>' in page
    assert "Müller" in page and "Café €" in page
    result = imported(owner, path, {"map_0": "email", "map_1": "last_name", "map_2": "company"})
    assert '<div class="value" id="import-created">1</div>' in result
    with site.engine.connect() as conn:
        found = conn.execute(select(contacts.c.email, contacts.c.last_name, contacts.c.company))
        assert found.all() == [("max@example.com", "Müller", "Café €")]


def test_a_file_that_is_not_text_in_the_character_set_chosen_is_refused(site: Site) -> None:
    owner = site.sign_up()
    # 0x81 is no character in windows-1252 (iso-8859-1 reads every byte, rightly or not).
    refused = send(owner, b"email,name\nmax@example.com,M\x81ller\n", "windows-1252")
    assert refused.status_code == 422
    assert (
        "the file is not windows-1252 text: byte 0x81 on line 2 cannot be read; save it as "
        'UTF-8 (Excel: "CSV UTF-8") or choose its character set in the form'
    ) in html.unescape(refused.text)
    # The form comes back with the character set chosen, to choose another.
    assert '<option value="windows-1252" selected>' in refused.text
    assert uploads(site) == []
    # Chosen by default: UTF-8, or UTF-16 by the file's byte order mark (Excel's Unicode text).
    utf16 = send(owner, "email,name\nzoe@example.com,Zoë\n".encode("utf-16"))
    assert utf16.status_code == 303
    page = owner.get(utf16.headers["location"]).text
    assert '<span id="read-as">read as UTF-16</span>' in page
    assert "Zoë" in page


def test_a_tampered_character_set_is_refused_by_name(site: Site) -> None:
    owner = site.sign_up()
    for value, said in [
        ("klingon", "unknown encoding 'klingon'"),
        ("rot13", "'rot13' is not a character set"),
        ("undefined", "'undefined' is not a character set"),
        ("utf-8\x00", "unknown encoding 'utf-8\\x00'"),
        ("<b>x</b>", "unknown encoding '<b>x</b>'"),
    ]:
        answer = send(owner, b"email\nada@example.com\n", value)
        assert answer.status_code == 422, (value, answer.status_code)
        message = html.unescape(answer.text)
        assert f"{said}; name the file's character set, such as UTF-8 or windows-1252" in message
        assert "<b>x" not in answer.text
    assert uploads(site) == []
