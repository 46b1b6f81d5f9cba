"""Settings in Chromium: a mailbox row's fields are saved by its own Save button, and Remove
asks first; people are invited, made owner and removed after a confirmation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from pixeltrail.store.schema import mailboxes

from .conftest import PASSWORD, Site, sign_up_in_browser


def _names(site: Site) -> list[tuple[str, int]]:
    with site.engine.connect() as conn:
        query = select(mailboxes.c.name, mailboxes.c.daily_limit).order_by(mailboxes.c.name)
        return [(row.name, row.daily_limit) for row in conn.execute(query)]


def _dismiss_then_accept(page: Any) -> list[str]:
    """Answer the page's confirmation dialogs: No the first time, Yes after. Their messages."""
    dialogs: list[str] = []

    def answer(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss() if len(dialogs) == 1 else dialog.accept()

    page.on("dialog", answer)
    return dialogs


def test_mailboxes_are_edited_in_their_row_and_removed_after_a_confirmation(
    sqlite_site: Site, browser: Any
) -> None:
    context = browser.new_context(base_url=sqlite_site.url)
    try:
        page = context.new_page()
        sign_up_in_browser(page)

        (outbox,) = _names(sqlite_site)  # the one set-up made
        page.goto("/settings/mailboxes")
        page.fill('input[name="name"][placeholder="Sales"]', "Spare")
        page.fill('section input[name="from_email"]', "spare@acme.example")
        page.check('input[name="kind"][value="outbox"]')
        page.click("text=Add mailbox")
        page.wait_for_selector("text=Mailbox Spare added")

        # Each row's inputs sit in table cells, outside its form: they belong to it by `form=`.
        page.fill('input[aria-label="Daily limit of Spare"]', "25")
        page.fill('input[aria-label="Name of Built-in outbox"]', "Trials")
        page.fill('input[aria-label="Daily limit of Built-in outbox"]', "12")
        page.locator("tr", has=page.locator('input[value="Spare"]')).locator(
            "text=Save"
        ).click()  # the first row's changes are not sent with the second's
        page.wait_for_selector("text=Spare saved: it sends at most 25 a day")
        assert _names(sqlite_site) == [outbox, ("Spare", 25)]

        dialogs = _dismiss_then_accept(page)
        remove = page.locator('button[aria-label="Remove Spare"]')
        remove.click()  # dismissed: nothing happens
        assert dialogs == ["Remove the mailbox Spare?"]
        assert _names(sqlite_site) == [outbox, ("Spare", 25)]
        remove.click()
        page.wait_for_selector("text=Mailbox Spare removed")
        assert _names(sqlite_site) == [outbox]
    finally:
        context.close()


def test_an_owner_invites_promotes_and_removes_someone_in_the_browser(
    sqlite_site: Site, browser: Any
) -> None:
    owner = browser.new_context(base_url=sqlite_site.url)
    newcomer = browser.new_context(base_url=sqlite_site.url)
    try:
        page = owner.new_page()
        sign_up_in_browser(page)
        page.goto("/settings/users")
        page.fill('input[name="email"]', "bea@acme.example")
        page.click("text=Create invitation link")
        link = page.locator("#invite-link").inner_text()

        bea = newcomer.new_page()
        bea.goto(link.removeprefix(sqlite_site.settings.base_url))
        bea.fill('input[name="password"]', PASSWORD)
        bea.click('button[type="submit"]')
        bea.wait_for_url("**/campaigns")
        # A member's Settings holds only what she may use.
        bea.click("nav >> text=Settings")
        bea.wait_for_url("**/settings/users")
        assert bea.locator("nav.tabs a").all_inner_texts() == ["Users", "Mailboxes"]
        # So does the Settings area's own address, typed or bookmarked: no owners-only page.
        bea.goto("/settings")
        bea.wait_for_url("**/settings/users")
        assert bea.locator("nav.tabs a").all_inner_texts() == ["Users", "Mailboxes"]
        assert "Owners only" not in bea.content()

        page.goto("/settings/users")
        page.select_option('select[aria-label="Role of bea@acme.example"]', "owner")
        page.locator("tr", has_text="bea@acme.example").locator("text=Change role").click()
        page.wait_for_selector("text=bea@acme.example is now owner")
        bea.reload()
        assert "API keys" in bea.locator("nav.tabs").inner_text()

        dialogs = _dismiss_then_accept(page)
        remove = page.locator('button[aria-label="Remove bea@acme.example"]')
        remove.click()  # dismissed: nothing happens
        assert dialogs == [
            "Remove bea@acme.example? They are signed out and can no longer sign in."
        ]
        assert page.locator('button[aria-label="Remove bea@acme.example"]').count() == 1
        remove.click()
        page.wait_for_selector("text=bea@acme.example removed")
        assert page.locator('button[aria-label^="Remove "]').count() == 0  # none but herself
        bea.goto("/campaigns")
        bea.wait_for_url("**/signin**")
    finally:
        owner.close()
        newcomer.close()
