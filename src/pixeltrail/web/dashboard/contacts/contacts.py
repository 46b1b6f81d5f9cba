"""Contacts: the list with search and paging, adding one, a contact's page (its address, names
and custom fields edited there), removing one."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from pixeltrail.platform.accounts.accounts import get_account
from pixeltrail.platform.contacts.contacts import (
    create_contact,
    delete_contact,
    get_contact,
    list_contacts,
    update_contact,
)
from pixeltrail.platform.errors import PlatformError
from pixeltrail.web.dashboard.contacts import imports, suppressions
from pixeltrail.web.dashboard.pages import Ctx, page, route

PAGE_SIZE = 50
_NEW = ("email", "first_name", "last_name", "company")


def _list(ctx: Ctx, status: int = 200, error: PlatformError | None = None) -> Response:
    search = ctx.query.get("q", "").strip()
    values = {name: ctx.field(name).strip() for name in _NEW}
    with ctx.read() as conn:
        account = get_account(conn, ctx.account_id)
        try:
            found, next_cursor = list_contacts(
                conn,
                ctx.account_id,
                cursor=ctx.query.get("cursor") or None,
                limit=PAGE_SIZE,
                search=search or None,
            )
        except PlatformError as exc:  # a search too long, a cursor not ours
            found, next_cursor, error, status = [], None, exc, exc.status
    return ctx.render(
        "contacts/list.html",
        status=status,
        contacts=found,
        next_cursor=next_cursor,
        q=search,
        paged=bool(ctx.query.get("cursor")),
        values=values,
        tz=account.timezone,
        error=error,
    )


@page
def contact_list(ctx: Ctx) -> Response:
    if ctx.form is None:
        return _list(ctx)
    given: dict[str, Any] = {name: ctx.field(name).strip() for name in _NEW}
    with ctx.form_errors(lambda exc: _list(ctx, exc.status, exc)), ctx.write() as conn:
        contact, created = create_contact(
            conn,
            ctx.account_id,
            given["email"],
            **{name: given[name] or None for name in _NEW[1:]},
        )
    verb = "added" if created else "was already a contact: updated"
    return ctx.redirect(f"/contacts/{contact.id}", flash=f"{contact.email} {verb}")


def _detail(ctx: Ctx, status: int = 200, error: PlatformError | None = None) -> Response:
    with ctx.read() as conn:
        account = get_account(conn, ctx.account_id)
        contact = get_contact(conn, ctx.account_id, ctx.params["contact_id"])
    return ctx.render(
        "contacts/detail.html", status=status, contact=contact, tz=account.timezone, error=error
    )


@page
def contact_detail(ctx: Ctx) -> Response:
    if ctx.form is None:
        return _detail(ctx)
    changes: dict[str, Any] = {name: ctx.field(name) for name in _NEW[1:]}
    if "email" in ctx.form:
        changes["email"] = ctx.field("email")
    changes["do_not_track"] = ctx.checked("do_not_track")
    with ctx.form_errors(lambda exc: _detail(ctx, exc.status, exc)), ctx.write() as conn:
        contact = update_contact(conn, ctx.account_id, ctx.params["contact_id"], changes)
    return ctx.redirect(f"/contacts/{contact.id}", flash="Saved")


@page
def contact_fields(ctx: Ctx) -> Response:
    """Custom fields: each shown one with its new value (blank removes it), and one new one."""
    contact_id = ctx.params["contact_id"]
    assert ctx.form is not None
    keys = [str(key) for key in ctx.form.getlist("key")]
    values = [str(value) for value in ctx.form.getlist("value")]
    changes: dict[str, str | None] = {
        key: value if value.strip() else None for key, value in zip(keys, values, strict=False)
    }
    new_key = ctx.field("new_key").strip()
    if new_key:
        changes[new_key] = ctx.field("new_value")
    with ctx.form_errors(lambda exc: _detail(ctx, exc.status, exc)), ctx.write() as conn:
        update_contact(conn, ctx.account_id, contact_id, {"fields": changes})
    return ctx.redirect(f"/contacts/{contact_id}", flash="Custom fields saved")


@page
def contact_delete(ctx: Ctx) -> Response:
    contact_id = ctx.params["contact_id"]
    with ctx.form_errors(lambda exc: _detail(ctx, exc.status, exc)), ctx.write() as conn:
        contact = get_contact(conn, ctx.account_id, contact_id)
        delete_contact(conn, ctx.account_id, contact_id)
    return ctx.redirect("/contacts", flash=f"{contact.email} removed")


routes = [
    route("/contacts", contact_list, "GET", "POST"),
    # Before /contacts/{contact_id}, which would take "import" for an id.
    *imports.routes,
    *suppressions.routes,
    route("/contacts/{contact_id}", contact_detail, "GET", "POST"),
    route("/contacts/{contact_id}/fields", contact_fields, "POST"),
    route("/contacts/{contact_id}/delete", contact_delete, "POST"),
]
