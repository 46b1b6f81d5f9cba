"""What the dashboard's mapping step reads of a file: its header, first rows and guessed columns."""

from __future__ import annotations

import pytest

from pixeltrail.platform.contacts.csv_columns import guess_target
from pixeltrail.platform.contacts.csv_import import check_contacts_csv, preview_csv
from pixeltrail.platform.errors import Invalid


def test_preview_reads_the_header_and_first_rows_after_blank_lines() -> None:
    data = (
        "\ufeffsep=;\n Email ; Plan Tier\n\nada@example.com;gold\n;\n"
        "b@x.test;\nc@x.test;s\nd@x.test;t\n"
    )
    preview = preview_csv(data.encode(), rows=3)
    assert preview.header_line == 2
    assert preview.header == ["Email", "Plan Tier"]
    assert preview.samples == [["ada@example.com", "gold"], ["b@x.test", ""], ["c@x.test", "s"]]


def test_preview_refuses_what_the_import_would_refuse() -> None:
    with pytest.raises(Invalid, match="the file is empty"):
        preview_csv(b"\n\n")
    with pytest.raises(Invalid, match="byte 0xE9 on line 2"):
        preview_csv("email\nzo\u00e9@x.test\n".encode("latin-1"))


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ("E-mail Address", "email"),
        ("Given name", "first_name"),
        ("SURNAME", "last_name"),
        ("Organisation", "company"),
        ("Plan Tier", "fields.plan_tier"),
        ("fields.plan", "fields.plan"),
        ("2024 Revenue", "fields.f_2024_revenue"),
        ("created_at", "ignore"),
        ("", "ignore"),
        ("!!!", "ignore"),
    ],
)
def test_guessed_targets(header: str, target: str) -> None:
    assert guess_target(header) == target


def test_a_repeated_header_name_is_mapped_by_position() -> None:
    data = b"Email,Phone,Phone,#9\nada@example.com,111,222,x\n"
    checked = check_contacts_csv(data, {"Phone": "fields.phone", "#3": "fields.mobile"})
    assert checked.contacts[0].fields == {"phone": "111", "mobile": "222", "f_9": "x"}
    # A header called "#9" is that column, not the ninth; a position past the end is unknown.
    named = check_contacts_csv(data, {"#3": "ignore", "#9": "fields.other", "Phone": "ignore"})
    assert named.contacts[0].fields == {"other": "x"}
    with pytest.raises(Invalid, match="which the header does not have"):
        check_contacts_csv(data, {"#5": "ignore"})
    # Without a mapping the repeat is refused, saying how to fix it.
    with pytest.raises(Invalid, match=r"columns 2 \('Phone'\) and 3 \('Phone'\) both hold"):
        check_contacts_csv(data)
