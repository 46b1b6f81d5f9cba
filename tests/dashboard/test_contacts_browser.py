"""The contact import in Chromium: upload, choose what columns hold, import, watch its progress."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from pixeltrail.store.schema import contacts

from .conftest import Site, sign_up_in_browser
from .test_contacts_progress import writes_held

CSV = (
    "Correo,Nombre,Org,Plan,Notas\n"
    "ada@example.com,Ada,Engines,gold,first\n"
    "not-an-email,Bob,Nowhere,silver,x\n"
    "grace@example.com,Grace,Navy,,z\n"
    "ADA@example.com,Augusta,Other,silver,again\n"
)


def test_import_mapping_step_in_a_browser(sqlite_site: Site, browser: Any) -> None:
    context = browser.new_context(base_url=sqlite_site.url)
    try:
        page = context.new_page()
        sign_up_in_browser(page)

        page.goto("/contacts/import")
        page.set_input_files(
            'input[name="file"]',
            {"name": "people.csv", "mimeType": "text/csv", "buffer": CSV.encode()},
        )
        page.click("text=Upload")
        page.wait_for_url("**/contacts/import/*")
        assert page.locator("h2").first.inner_text() == "What does each column hold?"
        # No header name is known: each column is guessed a custom field named after it.
        assert page.input_value('select[name="map_3"]') == "custom"
        assert page.input_value('input[name="name_3"]') == "plan"
        page.select_option('select[name="map_0"]', "email")
        page.select_option('select[name="map_1"]', "first_name")
        page.select_option('select[name="map_2"]', "company")
        page.fill('input[name="name_3"]', "tier")
        page.select_option('select[name="map_4"]', "ignore")
        # The name of a column that is not a custom field cannot be typed (app.js).
        assert page.is_disabled('input[name="name_0"]')
        assert page.is_enabled('input[name="name_3"]')
        # The database busy with another writer: the import waits to save, its page says so.
        with writes_held(sqlite_site):
            page.click('#mapping button[type="submit"]')
            page.wait_for_url("**/contacts/import/*")
            page.wait_for_selector("text=Saving contacts")
            assert page.get_attribute("#import-bar", "max") == "2"
            assert page.get_attribute("#import-bar", "value") == "0"
        # The result replaces the progress in the same page (app.js), without a reload.
        page.wait_for_selector("#import-created")
        assert page.locator("section[data-refresh] #import-created").count() == 1
        assert page.inner_text("#import-created") == "2"
        assert page.inner_text("#import-rejected") == "1"
        rejected = page.locator("table.rejected tbody tr")
        assert rejected.count() == 1
        assert rejected.first.locator("td").first.inner_text() == "3"
        assert "is not a valid email address" in rejected.first.inner_text()
        # Every row read is counted once: 4 = 2 new + 0 updated + 1 rejected + 1 duplicate.
        assert page.inner_text("#import-rows") == "4"
        assert page.inner_text("#import-duplicates") == "1"
        duplicate = page.locator("table.duplicates tbody tr")
        assert duplicate.locator("td").all_inner_texts() == ["5", "ada@example.com", "2"]

        page.click("text=See contacts")
        page.wait_for_url("**/contacts")
        assert page.locator("table.contacts tbody tr").count() == 2
    finally:
        context.close()
    with sqlite_site.engine.connect() as conn:
        found = {row.email: row for row in conn.execute(select(contacts))}
    assert set(found) == {"ada@example.com", "grace@example.com"}
    assert found["ada@example.com"].fields == {"tier": "gold"}
    assert found["ada@example.com"].company == "Engines"


def test_choosing_a_files_character_set_in_the_form(sqlite_site: Site, browser: Any) -> None:
    western = "email,last_name\nmax@example.com,Müller\n".encode("cp1252")
    context = browser.new_context(base_url=sqlite_site.url)
    try:
        page = context.new_page()
        sign_up_in_browser(page)

        page.goto("/contacts/import")
        file = {"name": "excel.csv", "mimeType": "text/csv", "buffer": western}
        assert page.input_value('select[name="encoding"]') == ""
        page.set_input_files('input[name="file"]', file)
        page.click("text=Upload")
        page.wait_for_selector("p.error")
        assert "choose its character set in the form" in page.inner_text("p.error")

        page.set_input_files('input[name="file"]', file)
        page.get_by_label("Character set").select_option(
            label="windows-1252 (Western, Excel on Windows)"
        )
        page.click("text=Upload")
        page.wait_for_url("**/contacts/import/*")
        assert page.inner_text("#read-as") == "read as windows-1252"
        assert "Müller" in page.inner_text("table.mapping")
        page.select_option('select[name="map_1"]', "last_name")
        page.click('#mapping button[type="submit"]')
        page.wait_for_selector("#import-created")
        assert page.inner_text("#import-created") == "1"
    finally:
        context.close()
    with sqlite_site.engine.connect() as conn:
        assert conn.execute(select(contacts.c.last_name)).scalar() == "Müller"
