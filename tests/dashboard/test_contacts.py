"""Contacts in the dashboard: list, search, paging, add, do-not-track, remove, CSV import with a
column mapping, and the suppression list."""

from __future__ import annotations

import html
import json
import re
import stat
import time

import httpx
from sqlalchemy import select

from pixeltrail.platform.contacts.contacts import create_contact
from pixeltrail.platform.contacts.suppressions import suppress
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import contacts, suppressions
from pixeltrail.web.dashboard.contacts import import_jobs
from pixeltrail.web.dashboard.contacts.import_uploads import imports_dir

from ..server.conftest import eventually
from .conftest import Site, User
from .tenants import another_account

XSS = "<script>alert(1)</script>"
_CONTACT_LINK = re.compile(r'href="/contacts/(ct_[^"]+)"')


def account_id(site: Site, email: str = "owner@acme.example") -> str:
    from pixeltrail.store.schema import users

    with site.engine.connect() as conn:
        return str(conn.execute(select(users.c.account_id).where(users.c.email == email)).scalar())


def rows(site: Site) -> dict[str, dict[str, object]]:
    with site.engine.connect() as conn:
        found = conn.execute(select(contacts)).all()
    return {row.email: dict(row._mapping) for row in found}


def test_add_search_page_and_xss_renders_as_text(site: Site) -> None:
    owner = site.sign_up()
    assert "No contacts yet" in owner.get("/contacts").text
    added = owner.post(
        "/contacts", {"email": "Ada@Example.com", "first_name": XSS, "company": "Engines"}
    )
    assert added.status_code == 303
    page = owner.get(added.headers["location"])
    assert page.status_code == 200
    assert XSS not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    listing = owner.get("/contacts").text
    assert "ada@example.com" in listing
    assert XSS not in listing and "&lt;script&gt;" in listing

    bad = owner.post("/contacts", {"email": "not an address", "first_name": "Kept"})
    assert bad.status_code == 422
    assert "is not a valid email address" in html.unescape(bad.text)
    assert 'value="Kept"' in bad.text
    assert len(rows(site)) == 1

    account = account_id(site)
    with write_transaction(site.engine) as conn:
        for i in range(60):
            create_contact(conn, account, f"person{i:02d}@example.com", first_name=f"P{i:02d}")
    first = owner.get("/contacts").text
    assert len(_CONTACT_LINK.findall(first)) == 50
    cursor = re.search(r'href="/contacts\?cursor=([^"]+)">Next page', first)
    assert cursor is not None
    second = owner.get(f"/contacts?cursor={cursor.group(1)}").text
    shown = set(_CONTACT_LINK.findall(first)) | set(_CONTACT_LINK.findall(second))
    assert len(_CONTACT_LINK.findall(second)) == 11
    assert len(shown) == 61
    assert "Next page" not in second

    found = owner.get("/contacts", params={"q": "ENGINES"}).text
    assert "ada@example.com" in found
    assert "person01@example.com" not in found
    # Searching pages too, keeping the search in the next page's link.
    searched = owner.get("/contacts", params={"q": "person"}).text
    assert len(_CONTACT_LINK.findall(searched)) == 50
    assert "ada@example.com" not in searched
    assert 'href="/contacts?q=person&amp;cursor=' in searched
    assert "No contact matches" in owner.get("/contacts", params={"q": "nobody-at-all"}).text


def test_do_not_track_and_remove(site: Site) -> None:
    owner = site.sign_up()
    path = owner.post("/contacts", {"email": "ada@example.com"}).headers["location"]
    saved = owner.post(path, {"first_name": "Ada", "do_not_track": "on"})
    assert saved.status_code == 303
    page = owner.get(path).text
    assert "Saved" in page
    assert 'name="do_not_track" checked' in page
    assert rows(site)["ada@example.com"]["do_not_track"] is True
    cleared = owner.post(path, {"first_name": "Ada"})
    assert cleared.status_code == 303
    assert rows(site)["ada@example.com"]["do_not_track"] is False

    mallory = another_account(site)
    assert mallory.get(path).status_code == 404
    assert mallory.post(path, {"do_not_track": "on"}, token_from="/contacts").status_code == 404
    assert mallory.post(f"{path}/delete", token_from="/contacts").status_code == 404
    assert "ada@example.com" not in mallory.get("/contacts").text
    no_token = owner.client.post(f"{path}/delete", headers={"Origin": owner.url})
    assert no_token.status_code == 403
    assert "ada@example.com" in rows(site)

    removed = owner.post(f"{path}/delete", token_from=path)
    assert removed.status_code == 303
    assert rows(site) == {}


def test_a_contacts_address_and_custom_fields_are_edited_on_its_page(site: Site) -> None:
    owner = site.sign_up()
    path = owner.post("/contacts", {"email": "ada@example.com"}).headers["location"]
    owner.post("/contacts", {"email": "grace@example.com"})
    with write_transaction(site.engine) as conn:
        conn.execute(
            contacts.update()
            .where(contacts.c.email == "ada@example.com")
            .values(fields={"plan": "gold", "notes": "met at the fair"})
        )
    page = owner.get(path).text
    assert 'value="gold"' in page and 'value="met at the fair"' in page

    moved = owner.post(path, {"email": "Ada@Engines.example", "first_name": "Ada"})
    assert moved.status_code == 303
    assert set(rows(site)) == {"ada@engines.example", "grace@example.com"}
    taken = owner.post(path, {"email": "grace@example.com", "first_name": "Ada"})
    assert taken.status_code == 409
    assert "another contact already has the address grace@example.com" in taken.text
    assert set(rows(site)) == {"ada@engines.example", "grace@example.com"}

    fields = f"{path}/fields"
    saved = owner.post(
        fields,
        {"key": ["notes", "plan"], "value": ["", "platinum"], "new_key": "tier",
         "new_value": "1"},
        token_from=path,
    )  # fmt: skip
    assert saved.status_code == 303
    assert "Custom fields saved" in owner.get(path).text
    assert rows(site)["ada@engines.example"]["fields"] == {"plan": "platinum", "tier": "1"}
    bad = owner.post(fields, {"new_key": "Not A Name", "new_value": "x"}, token_from=path)
    assert bad.status_code == 422
    assert "is not an identifier" in html.unescape(bad.text)
    assert rows(site)["ada@engines.example"]["fields"] == {"plan": "platinum", "tier": "1"}

    mallory = another_account(site)
    stolen = mallory.post(fields, {"new_key": "x", "new_value": "y"}, token_from="/contacts")
    assert stolen.status_code == 404
    assert rows(site)["ada@engines.example"]["fields"] == {"plan": "platinum", "tier": "1"}


MESSY_CSV = (
    "Correo;Nombre;Org;Plan;Notas\n"
    "ada@example.com;Ada;Engines;gold;first\n"
    "not-an-email;Bob;Nowhere;silver;x\n"
    ";Carol;NoMail;bronze;y\n"
    "grace@example.com;Grace;Navy;;z\n"
)


def upload(user: User, content: str | bytes, name: str = "people.csv") -> str:
    answer = user.post(
        "/contacts/import",
        token_from="/contacts/import",
        files={"file": (name, content, "text/csv")},
    )
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/contacts/import/")
    return location


def finished(user: User, path: str) -> str:
    """The import's page once its progress section says it is over (as app.js would see)."""

    def over() -> str | None:
        fragment = user.get(f"{path}/progress")
        assert fragment.status_code == 200, fragment.text
        return fragment.text if "data-refresh-done" in fragment.text else None

    eventually(over, timeout=120, every=0.2)
    page = user.get(path)
    assert page.status_code == 200
    assert "data-refresh=" not in page.text
    return page.text


def imported(user: User, path: str, form: dict[str, str]) -> str:
    """Press Import: the answer leads to the import's page; its result once finished."""
    started = user.post(path, form)
    assert started.status_code == 303, started.text
    assert started.headers["location"] == path
    return finished(user, path)


def test_import_with_a_column_mapping_lists_rejected_rows(site: Site) -> None:
    owner = site.sign_up()
    path = upload(owner, MESSY_CSV)
    upload_id = path.rsplit("/", 1)[1]
    kept = imports_dir(site.settings) / f"{upload_id}.csv"
    assert kept.read_text() == MESSY_CSV
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    page = owner.get(path).text
    # Every header column with its first values, guessed as custom fields (no known names).
    for header in ["Correo", "Nombre", "Org", "Plan", "Notas"]:
        assert f"<strong>{header}</strong>" in page
    assert "ada@example.com · not-an-email" in page
    assert 'name="name_3" value="plan"' in page
    mapping = {
        "map_0": "email",
        "map_1": "first_name",
        "map_2": "company",
        "map_3": "custom",
        "name_3": "tier",
        "map_4": "ignore",
    }
    # Two columns holding the email: refused as a whole, nothing imported, choices kept.
    refused = owner.post(path, {**mapping, "map_1": "email"})
    assert refused.status_code == 422
    assert "both hold email" in html.unescape(refused.text)
    assert rows(site) == {}
    assert kept.exists()

    text = html.unescape(imported(owner, path, mapping))
    assert '<div class="value" id="import-created">2</div>' in text
    assert '<div class="value" id="import-rejected">2</div>' in text
    assert "<td class=\"num\">3</td><td>'not-an-email' is not a valid email address" in text
    assert '<td class="num">4</td><td>no email address</td>' in text
    found = rows(site)
    assert set(found) == {"ada@example.com", "grace@example.com"}
    ada = found["ada@example.com"]
    assert (ada["first_name"], ada["company"], ada["fields"]) == (
        "Ada",
        "Engines",
        {"tier": "gold"},
    )
    assert found["grace@example.com"]["fields"] == {}
    # The upload is gone once imported; pressing Import again leads to the same result.
    assert not kept.exists()
    again = owner.post(path, mapping)
    assert again.status_code == 303
    assert '<div class="value" id="import-created">2</div>' in owner.get(path).text
    # The result is kept some minutes; then the page answers 404.
    import_jobs.forget_finished(time.time() + import_jobs.KEEP_FINISHED + 1)
    assert owner.get(path).status_code == 404
    assert owner.get(f"{path}/progress").status_code == 404


def test_import_counts_duplicate_rows_apart_and_keeps_the_first(site: Site) -> None:
    """21 rows: 18 addresses, 2 without a valid one, an address again: 18 + 0 + 2 + 1 = 21."""
    owner = site.sign_up()
    lines = ["email,first_name"]
    lines += [f"person{i}@example.com,P{i}" for i in range(18)]
    lines += ["not-an-email,X", ",Nobody", "Person3@Example.com,Augusta"]
    path = upload(owner, "\n".join(lines) + "\n")
    text = imported(owner, path, {"map_0": "email", "map_1": "first_name"})
    counts = dict(re.findall(r'id="import-(\w+)">(\d+)</div>', text))
    assert counts == {
        "rows": "21",
        "created": "18",
        "updated": "0",
        "rejected": "2",
        "duplicates": "1",
    }
    assert "The first row of an address was imported" in text
    assert '<td class="num">22</td><td>person3@example.com</td><td class="num">5</td>' in text
    assert rows(site)["person3@example.com"]["first_name"] == "P3"


def test_a_header_that_repeats_a_name_maps_each_column(site: Site) -> None:
    owner = site.sign_up()
    path = upload(owner, "Email,Phone,Phone\nada@example.com,111,222\n")
    page = owner.get(path).text
    assert page.count("<strong>Phone</strong>") == 2
    form = {"map_0": "email", "map_1": "custom", "name_1": "phone"}
    imported(owner, path, {**form, "map_2": "custom", "name_2": "mobile"})
    assert rows(site)["ada@example.com"]["fields"] == {"phone": "111", "mobile": "222"}


def test_a_file_of_mostly_bad_rows_lists_the_first_thousand(site: Site) -> None:
    owner = site.sign_up()
    path = upload(owner, "email\n" + "nobody\n" * 1005 + "ok@example.com\n")
    done = imported(owner, path, {"map_0": "email"})
    assert '<div class="value" id="import-rejected">1005</div>' in done
    assert done.count('<tr><td class="num">') == 1000
    assert "… and 5 more rows after line 1001" in done
    assert set(rows(site)) == {"ok@example.com"}


def test_uploads_are_the_accounts_own_and_bad_files_are_refused(site: Site) -> None:
    owner = site.sign_up()
    path = upload(owner, "email,name\nada@example.com,Ada\n")
    mallory = another_account(site)
    assert mallory.get(path).status_code == 404
    assert mallory.post(path, {"map_0": "email"}, token_from="/contacts/import").status_code == 404
    for made_up in ["..%2F..%2Fkey", "x" * 32, "%2Fetc%2Fpasswd"]:
        assert owner.get(f"/contacts/import/{made_up}").status_code == 404
    # Not text: refused at the upload, with the line of the first bad byte.
    latin1 = "email,name\nzoe@example.com,Zoé\n".encode("latin-1")
    answer = owner.post(
        "/contacts/import",
        token_from="/contacts/import",
        files={"file": ("latin1.csv", latin1, "text/csv")},
    )
    assert answer.status_code == 422
    assert "is not UTF-8 text: byte 0xE9 on line 2" in html.unescape(answer.text)
    # Kept an hour at most: later, the page is gone and so is the file.
    upload_id = path.rsplit("/", 1)[1]
    record = imports_dir(site.settings) / f"{upload_id}.json"
    kept = json.loads(record.read_text())
    record.write_text(json.dumps({**kept, "created": kept["created"] - 3601}))
    assert owner.get(path).status_code == 404
    assert not (imports_dir(site.settings) / f"{upload_id}.csv").exists()
    empty = owner.post("/contacts/import", {}, token_from="/contacts/import")
    assert empty.status_code == 422
    assert "choose a CSV file" in empty.text
    assert rows(site) == {}


def test_an_upload_whose_form_names_no_character_set_is_refused_by_name(site: Site) -> None:
    owner = site.sign_up()
    token = owner.csrf("/contacts/import")
    body = (
        '--b0\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f"{token}\r\n"
        '--b0\r\nContent-Disposition: form-data; name="file"; filename="people.csv"\r\n'
        "Content-Type: text/csv\r\n\r\nemail\r\nada@example.com\r\n--b0--\r\n"
    ).encode()

    def send(charset: str) -> httpx.Response:
        return owner.client.post(
            "/contacts/import",
            content=body,
            headers={
                "Origin": owner.url,
                "Content-Type": f"multipart/form-data; boundary=b0; charset={charset}",
            },
        )

    for charset in ("undefined", "rot13", "base64", "punycode", "klingon", "<b>x</b>"):
        answer = send(charset)
        assert answer.status_code == 415, (charset, answer.status_code)
        assert f"says it is written in {charset!r}, which is not" in html.unescape(answer.text)
        assert "<b>x" not in answer.text
    assert not imports_dir(site.settings).exists() or not list(imports_dir(site.settings).iterdir())
    # A character set is fine (the file's own bytes are read as the import reads them).
    assert send("utf-8").status_code == 303


def test_suppression_list(site: Site) -> None:
    owner = site.sign_up()
    assert "The list is empty" in owner.get("/contacts/suppressions").text
    added = owner.post("/contacts/suppressions", {"email": "Bounce@Example.com"})
    assert added.status_code == 303
    page = owner.get("/contacts/suppressions").text
    assert "bounce@example.com added to the list" in page
    assert ">manual<" in page
    with write_transaction(site.engine) as conn:
        suppress(conn, account_id(site), "gone@example.com", "unsubscribed")
    # An unsubscribe cannot be taken off the list: the reason comes back.
    kept = owner.post(
        "/contacts/suppressions/remove", {"email": "gone@example.com"}, token_from="/contacts"
    )
    assert kept.status_code == 409
    assert "only the recipient can change that" in kept.text
    removed = owner.post(
        "/contacts/suppressions/remove", {"email": "bounce@example.com"}, token_from="/contacts"
    )
    assert removed.status_code == 303
    with site.engine.connect() as conn:
        left = conn.execute(select(suppressions.c.email, suppressions.c.reason)).all()
    assert [tuple(row) for row in left] == [("gone@example.com", "unsubscribed")]
    mallory = another_account(site)
    assert "gone@example.com" not in mallory.get("/contacts/suppressions").text
    theirs = mallory.post(
        "/contacts/suppressions/remove", {"email": "gone@example.com"}, token_from="/contacts"
    )
    assert theirs.status_code == 404
