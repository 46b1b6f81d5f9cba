"""Settings → Mailboxes: a mail server on this host or an internal network is refused, the reason
shown beside the SMTP URL in the add form, which keeps what was typed."""

from __future__ import annotations

import html
from typing import Any

import pytest
from sqlalchemy import select

from pixeltrail.store.schema import mailboxes

from ..sending.conftest import machine_name
from .conftest import Site, sign_up_in_browser

FORM = {"name": "Relay", "from_email": "relay@acme.example", "kind": "smtp", "daily_limit": "50"}


def _names(site: Site) -> set[str]:
    with site.engine.connect() as conn:
        return set(conn.scalars(select(mailboxes.c.name)))


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address (this server itself)"),
        ("localhost", "localhost is this server itself"),
        ("10.20.30.40", "10.20.30.40 is a private address (an internal network)"),
        ("[fc00::25]", "fc00::25 is a private address (an internal network)"),
        ("169.254.169.254", "169.254.169.254 is a link-local address"),
    ],
)
def test_an_internal_mail_server_is_refused_beside_the_smtp_url(
    site: Site, host: str, reason: str
) -> None:
    owner = site.sign_up()
    url = f"smtp://{host}:25?starttls=off"
    answer = owner.post("/settings/mailboxes", {**FORM, "smtp_url": url})
    assert answer.status_code == 422
    page = html.unescape(answer.text)
    error = f'<p class="error" role="alert" id="smtp-url-error">smtp_url: the mail server {reason}'
    assert error in page
    # Next to the field it concerns, in the add form, which kept what was typed.
    field = page.index(f'<input name="smtp_url" value="{url}"')
    assert page.index("<h2>Add a mailbox</h2>") < field < page.index(error)
    assert (
        'aria-invalid="true" aria-describedby="smtp-url-error"' in page[field : page.index(error)]
    )
    assert 'value="relay@acme.example"' in page
    assert _names(site) == {"Built-in outbox"}


def test_a_name_resolving_to_this_host_is_refused(site: Site) -> None:
    name = machine_name()
    owner = site.sign_up()
    answer = owner.post("/settings/mailboxes", {**FORM, "smtp_url": f"smtp://{name}?starttls=off"})
    assert answer.status_code == 422
    assert f"smtp_url: the mail server {name} resolves to" in html.unescape(answer.text)
    assert _names(site) == {"Built-in outbox"}


def test_the_browser_shows_the_refusal_under_the_smtp_url(sqlite_site: Site, browser: Any) -> None:
    context = browser.new_context(base_url=sqlite_site.url)
    try:
        page = context.new_page()
        sign_up_in_browser(page)
        page.goto("/settings/mailboxes")
        page.fill('input[name="name"][placeholder="Sales"]', "Relay")
        page.fill('section input[name="from_email"]', "relay@acme.example")
        page.fill('input[name="smtp_url"]', "smtp://localhost:25?starttls=off")
        page.click("text=Add mailbox")
        smtp_url = page.get_by_role("textbox", name="SMTP URL")
        smtp_url.wait_for()
        # The field names its error (screen readers read it with the field), shown below it.
        assert smtp_url.get_attribute("aria-invalid") == "true"
        assert smtp_url.input_value() == "smtp://localhost:25?starttls=off"
        error = page.locator("#" + str(smtp_url.get_attribute("aria-describedby")))
        assert error.is_visible()
        assert error.inner_text() == (
            "smtp_url: the mail server localhost is this server itself; only "
            "PIXELTRAIL_MAIL_ALLOW_LOCAL=1 allows mail servers on this host or its network"
        )
        field_box, error_box = smtp_url.bounding_box(), error.bounding_box()
        assert field_box is not None and error_box is not None
        assert 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 120
        assert _names(sqlite_site) == {"Built-in outbox"}
    finally:
        context.close()
