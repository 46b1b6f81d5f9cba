"""Reading CSV files without a database: separators, encodings, columns, rows, escaping."""

from __future__ import annotations

import unicodedata

import pytest

from pixeltrail.platform.contacts.contacts import _CONTROLS, _VALUE_CONTROLS
from pixeltrail.platform.contacts.csv_columns import custom_key
from pixeltrail.platform.contacts.csv_export import escape_cell
from pixeltrail.platform.contacts.csv_import import CheckedFile, check_contacts_csv, preview_csv
from pixeltrail.platform.errors import Invalid


def check(data: bytes | str, **kw: object) -> CheckedFile:
    raw = data.encode() if isinstance(data, str) else data
    return check_contacts_csv(raw, **kw)  # type: ignore[arg-type]


def rows(checked: CheckedFile) -> list[tuple[int, str, dict[str, str], dict[str, str]]]:
    return [(c.line, c.email, c.names, c.fields) for c in checked.contacts]


def rejected(checked: CheckedFile) -> list[tuple[int, str]]:
    return [(r.line, r.reason) for r in checked.rejected]


def refusal(data: bytes | str, **kw: object) -> str:
    with pytest.raises(Invalid) as caught:
        check(data, **kw)
    assert "nothing was imported" in caught.value.message or caught.value.field == "mapping"
    return caught.value.message


@pytest.mark.parametrize(
    "data",
    [
        "email,first_name\na@example.com,Ann\n",
        "email;first_name\na@example.com;Ann\n",
        "email\tfirst_name\na@example.com\tAnn\n",
        "sep=;\nemail;first_name\na@example.com;Ann\n",
        "email|x,first_name\r\na@example.com|x,Ann\r\n".replace("|x", ""),
        "email,first_name\ra@example.com,Ann\r",  # old Mac line ends
        "\n\nemail,first_name\n\na@example.com,Ann\n\n",
        '"email","first_name"\n"a@example.com","Ann"\n',
    ],
)
def test_separators_and_line_ends(data: str) -> None:
    found = check(data)
    assert [(c.email, c.names) for c in found.contacts] == [
        ("a@example.com", {"first_name": "Ann"})
    ]
    assert found.rejected == []


def test_line_numbers_are_physical_lines() -> None:
    data = 'sep=,\nemail,notes\n\n"x@",1\na@example.com,"a\r\nb\rc"\nb@,2\n'
    found = check(data)
    assert rows(found) == [(5, "a@example.com", {}, {"notes": "a\r\nb\rc"})]
    assert [line for line, _ in rejected(found)] == [4, 8]


def test_encodings() -> None:
    text = "email,name\nzoe@example.com,Zoë\n"
    expected: list[tuple[int, str, dict[str, str], dict[str, str]]] = [
        (2, "zoe@example.com", {}, {"name": "Zoë"})
    ]
    assert rows(check(b"\xef\xbb\xbf" + text.encode())) == expected
    assert rows(check(text.encode("utf-16"))) == expected  # Excel's "Unicode text"
    assert rows(check(text.encode("cp1252"), encoding="windows-1252")) == expected
    message = refusal(text.encode("cp1252"))
    assert message.startswith("the file is not UTF-8 text: byte 0xEB on line 2")
    with pytest.raises(Invalid) as caught:
        check(text.encode(), encoding="klingon")
    assert caught.value.field == "encoding"


@pytest.mark.parametrize(
    "encoding",
    ["undefined", "rot13", "base64", "zlib_codec", "hex", "uu", "bz2", "punycode", "idna"],
)
def test_an_encoding_must_be_a_character_set(encoding: str) -> None:
    data = b"email\nzoe@example.com\n"
    message = refusal(data, encoding=encoding)
    assert message.startswith(f"'{encoding}' is not a character set; name the file's character")
    with pytest.raises(Invalid, match=f"'{encoding}' is not a character set"):
        preview_csv(data, encoding)
    # Any name Python gives a character set is one.
    assert rows(check(data, encoding="LATIN1")) == [(2, "zoe@example.com", {}, {})]


def test_rows_with_problems_are_rejected_with_their_reason() -> None:
    data = (
        "email,first_name,plan\n"
        "a@example.com,Ann,gold,extra\n"  # 2: more cells than the header
        "b@example.com,Bob\n"  # 3: fewer cells is fine
        'c@example.com,"Ca"rol,x\n'  # 4: broken quoting
        "d@example.com,Dan\x00,x\n"  # 5: NUL (PostgreSQL cannot store it)
        "e@example.com,Eve,\x00\n"  # 6
        f"f@example.com,{'F' * 201},x\n"  # 7
        f"g@example.com,G,{'g' * 100_000}\n"  # 8: a field over 64 KiB
        "h@example.com,  Hal  \t 9000 ,ok\n"  # 9: whitespace tidied
    )
    found = check(data)
    assert rows(found) == [
        (3, "b@example.com", {"first_name": "Bob"}, {}),
        (9, "h@example.com", {"first_name": "Hal 9000"}, {"plan": "ok"}),
    ]
    assert rejected(found) == [
        (2, "the row has 4 cells but the header has 3 (a separator inside a value needs quotes)"),
        (4, 'a quoted value must end at its closing quote (a quote inside quotes is written "")'),
        (5, "first_name contains a control character (U+0000)"),
        (6, "fields.plan contains a control character (U+0000)"),
        (7, "first_name is longer than 200 characters"),
        (8, "a field is longer than 64 KiB"),
    ]
    # Each row counted once, whether csv could not read it (4) or it was rejected after.
    assert found.rows == 8


def test_a_quote_left_open_on_the_last_line_rejects_that_row() -> None:
    found = check('email,name\na@example.com,Ann\nb@example.com,"open')
    assert rows(found) == [(2, "a@example.com", {}, {"name": "Ann"})]
    assert rejected(found) == [(3, "a quoted value is never closed")]


def test_formula_cells_are_kept_exactly() -> None:
    found = check('email,company\na@example.com,"=HYPERLINK(""http://x"",""y"")"\n')
    assert found.contacts[0].names == {"company": '=HYPERLINK("http://x","y")'}


@pytest.mark.parametrize(
    ("cell", "escaped"),
    [
        ("=1+1", "'=1+1"),
        ("+33 6 12", "'+33 6 12"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("\uff1d1+1", "'\uff1d1+1"),
        ("Ada", "Ada"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_export_escapes_formula_cells(cell: str, escaped: str) -> None:
    assert escape_cell(cell) == escaped


def test_columns_by_header_and_by_mapping() -> None:
    data = "E-Mail Address,Given Name,SURNAME,Organization,Plan Tier,,id,fields.vip\n"
    data += "a@example.com,Ann,Lee,Acme,gold,lost,ct_1,yes\n"
    assert rows(check(data)) == [
        (
            2,
            "a@example.com",
            {"first_name": "Ann", "last_name": "Lee", "company": "Acme"},
            {"plan_tier": "gold", "vip": "yes"},
        )
    ]
    mapped = check(
        "Who,Org,Plan,Notes\na@example.com,Acme,gold,n\n",
        mapping={"who": "email", "ORG": "company", "Plan": "fields.tier", "Notes": "ignore"},
    )
    assert rows(mapped) == [(2, "a@example.com", {"company": "Acme"}, {"tier": "gold"})]


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Plan Tier", "plan_tier"),
        ("Société", "societe"),
        ("2024 Revenue ($)", "f_2024_revenue"),
        ("  --Notes--  ", "notes"),
        ("日本語", None),
        ("x" * 100, "x" * 64),
    ],
)
def test_custom_field_names_from_headers(header: str, key: str | None) -> None:
    assert custom_key(header) == key


@pytest.mark.parametrize(
    ("data", "mapping", "expected"),
    [
        ("name,company\n", None, "no email column (its columns: 'name', 'company')"),
        ("email,e-mail\n", None, "columns 1 ('email') and 2 ('e-mail') both hold email"),
        ("email,日本語\n", None, "column 2 ('日本語') has no name usable for a custom field"),
        ("email," + ",".join(f"c{i}" for i in range(51)) + "\n", None, "51 columns would"),
        ("email,org\n", {"Organisation": "company"}, "mapping names the column 'Organisation'"),
        ("email,org\n", {"org": "organisation"}, "'organisation' is not a contact field"),
        ("email,org\n", {"org": "fields.Org"}, "'Org' is not an identifier"),
        ("", None, "the file is empty"),
        (
            'email,name\na@example.com,"open\nb@example.com,x\n',
            None,
            "line 2: a quoted value starts here and is still open on line 3",
        ),
    ],
)
def test_files_that_cannot_be_imported(
    data: str, mapping: dict[str, str] | None, expected: str
) -> None:
    assert expected in refusal(data, mapping=mapping)


def test_too_many_rows_is_refused_before_any_row_is_checked() -> None:
    # Exactly 100,000 is fine: test_large_import imports that many.
    data = "email\n" + "".join(f"u{i}@example.com\n" for i in range(100_001))
    assert "more than 100,000 rows" in refusal(data)


def test_progress_follows_the_checks() -> None:
    calls: list[tuple[int, int]] = []
    data = "email\n" + "".join(f"u{i}@example.com\n" for i in range(2500))
    check_contacts_csv(data.encode(), on_progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1000, 2500), (2000, 2500), (2500, 2500)]


def test_control_character_patterns_match_unicode() -> None:
    for point in range(0x110000):
        char = chr(point)
        control = unicodedata.category(char) in {"Cc", "Cs"}
        assert bool(_CONTROLS.fullmatch(char)) == control, hex(point)
        assert bool(_VALUE_CONTROLS.fullmatch(char)) == (control and char not in "\t\n\r")
