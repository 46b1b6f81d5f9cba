"""Owners and members: members do the outreach, owners also manage the account (settings, API
keys, webhooks, people). An account keeps at least one owner; a removed person is signed out."""

from __future__ import annotations

import re
import threading

import httpx
import pytest
from sqlalchemy import func, select

from pixeltrail.platform.accounts.users import set_role, user_by_email
from pixeltrail.platform.errors import Conflict, Forbidden, PlatformError
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import accounts, api_keys, invites, users, webhook_endpoints

from .conftest import PASSWORD, Site, User
from .tenants import another_account

_LINK = re.compile(r'<code id="invite-link">([^<]+)</code>')
OWNER_PAGES = ("/settings/api-keys", "/settings/webhooks")


def _join(site: Site, owner: User, email: str) -> User:
    """Invite `email` from the owner's page and accept the link: the newcomer, signed in."""
    answer = owner.post("/settings/users", {"email": email})
    found = _LINK.search(answer.text)
    assert found is not None, answer.text
    newcomer = site.visitor()
    joined = newcomer.post(
        found.group(1).removeprefix(site.settings.base_url), {"password": PASSWORD}
    )
    assert joined.status_code == 303
    return newcomer


def _act(user: User, path: str, form: dict[str, object]) -> httpx.Response:
    """Post a form as from the people page (a page every signed-in user may open)."""
    return user.post(path, form, token_from="/settings/users")


def _user_id(site: Site, email: str) -> str:
    with site.engine.connect() as conn:
        return str(conn.execute(select(users.c.id).where(users.c.email == email)).scalar_one())


def _role(site: Site, email: str) -> str | None:
    with site.engine.connect() as conn:
        return conn.execute(select(users.c.role).where(users.c.email == email)).scalar()


def _count(site: Site, table: object) -> int:
    with site.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_a_member_does_the_outreach_but_cannot_manage_the_account(site: Site) -> None:
    owner = site.sign_up()
    bea = _join(site, owner, "bea@acme.example")
    for path in ("/campaigns", "/contacts", "/domains", "/settings/mailboxes", "/settings/users"):
        assert bea.get(path).status_code == 200, path
    for path in OWNER_PAGES:
        refused = bea.get(path)
        assert refused.status_code == 403, path
        assert "Owners only" in refused.text
        assert owner.get(path).status_code == 200, path
    # The Settings area's address takes her to the settings she may use, not to a refusal.
    area = bea.get("/settings")
    assert (area.status_code, area.headers["location"]) == (303, "/settings/users")
    assert owner.get("/settings").status_code == 200

    # Forms posted anyway (with a valid token from a page she may see) change nothing.
    keys, hooks = _count(site, api_keys), _count(site, webhook_endpoints)
    posts: dict[str, dict[str, object]] = {
        "/settings": {"name": "Taken over", "timezone": "UTC"},
        "/settings/api-keys": {"name": "mine"},
        "/settings/webhooks": {
            "url": "https://hooks.example.com/pt",
            "event_types": ["message.opened"],
        },
    }
    for path, form in posts.items():
        assert _act(bea, path, form).status_code == 403, path
    with site.engine.connect() as conn:
        assert conn.execute(select(accounts.c.name)).scalar_one() == "Acme"
    assert (_count(site, api_keys), _count(site, webhook_endpoints)) == (keys, hooks)

    invited = bea.post("/settings/users", {"email": "carl@acme.example"})
    assert invited.status_code == 403
    assert "only the account&#39;s owners can invite people" in invited.text
    with site.engine.connect() as conn:
        emails = conn.execute(select(invites.c.email)).scalars().all()
    assert "carl@acme.example" not in emails
    promoted = _act(
        bea, f"/settings/users/{_user_id(site, 'bea@acme.example')}/role", {"role": "owner"}
    )
    assert promoted.status_code == 403
    assert _role(site, "bea@acme.example") == "member"

    # Her pages show what she can use: no owners' tabs, no invitation form, no role controls.
    people = bea.get("/settings/users").text
    assert "bea@acme.example" in people and "owner@acme.example" in people
    assert "Create invitation link" not in people and "Change role" not in people
    assert 'href="/settings/api-keys"' not in people and 'href="/settings/webhooks"' not in people
    mine = owner.get("/settings/users").text
    assert "Create invitation link" in mine and 'href="/settings/api-keys"' in mine


def test_an_owner_changes_roles_and_the_account_keeps_an_owner(site: Site) -> None:
    owner = site.sign_up()
    bea = _join(site, owner, "bea@acme.example")
    bea_id, owner_id = _user_id(site, "bea@acme.example"), _user_id(site, "owner@acme.example")

    made = _act(owner, f"/settings/users/{bea_id}/role", {"role": "owner"})
    assert made.status_code == 303
    assert "bea@acme.example is now owner" in owner.get("/settings/users").text
    assert bea.get("/settings").status_code == 200

    bad = _act(owner, f"/settings/users/{bea_id}/role", {"role": "admin"})
    assert bad.status_code == 422
    assert _role(site, "bea@acme.example") == "owner"

    # The first owner steps down; then the last owner cannot.
    stepped = _act(owner, f"/settings/users/{owner_id}/role", {"role": "member"})
    assert stepped.status_code == 303
    # At once, in the same session: the account's settings are no longer hers.
    assert owner.get("/settings").headers["location"] == "/settings/users"
    assert owner.get("/settings/api-keys").status_code == 403
    last = _act(bea, f"/settings/users/{bea_id}/role", {"role": "member"})
    assert last.status_code == 409
    assert "at least one owner" in last.text
    assert _role(site, "bea@acme.example") == "owner"

    # Another account's people are not found, the same as ids that do not exist.
    mallory = another_account(site)
    mallory_id = _user_id(site, "mallory@other.example")
    for target in (mallory_id, "usr_nosuchuser"):
        answer = _act(bea, f"/settings/users/{target}/role", {"role": "member"})
        assert answer.status_code == 404
    assert _role(site, "mallory@other.example") == "owner"
    assert _act(mallory, f"/settings/users/{bea_id}/role", {"role": "member"}).status_code == 404
    assert _role(site, "bea@acme.example") == "owner"


def test_a_removed_person_is_signed_out_and_their_invitations_stay(site: Site) -> None:
    owner = site.sign_up()
    bea = _join(site, owner, "bea@acme.example")
    bea_id = _user_id(site, "bea@acme.example")
    _act(owner, f"/settings/users/{bea_id}/role", {"role": "owner"})
    # Bea invites Carl, then leaves the team before Carl joins.
    link = _LINK.search(bea.post("/settings/users", {"email": "carl@acme.example"}).text)
    assert link is not None

    refused = _act(owner, f"/settings/users/{_user_id(site, 'owner@acme.example')}/remove", {})
    assert refused.status_code == 409
    assert "cannot remove yourself" in refused.text
    mallory = another_account(site)
    assert _act(mallory, f"/settings/users/{bea_id}/remove", {}).status_code == 404
    assert _role(site, "bea@acme.example") == "owner"

    removed = _act(owner, f"/settings/users/{bea_id}/remove", {})
    assert removed.status_code == 303
    people = owner.get("/settings/users").text
    assert "bea@acme.example removed" in people
    assert _role(site, "bea@acme.example") is None
    gone = bea.get("/campaigns")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/signin")
    again = site.visitor().post("/signin", {"email": "bea@acme.example", "password": PASSWORD})
    assert again.status_code == 401
    # Her invitation still works: Carl joins the account as a member.
    carl = site.visitor()
    joined = carl.post(link.group(1).removeprefix(site.settings.base_url), {"password": PASSWORD})
    assert joined.status_code == 303
    assert _role(site, "carl@acme.example") == "member"


def test_two_owners_demoting_each_other_at_once_leave_one_owner(site: Site) -> None:
    owner = site.sign_up()
    _join(site, owner, "bea@acme.example")
    with write_transaction(site.engine) as conn:
        found = user_by_email(conn, "owner@acme.example"), user_by_email(conn, "bea@acme.example")
        assert found[0] is not None and found[1] is not None
        first = found[0]
        bea = set_role(conn, first, found[1].id, "owner")
    errors: list[PlatformError] = []

    def bea_demotes_the_first_owner() -> None:
        try:
            with write_transaction(site.engine) as conn:
                set_role(conn, bea, first.id, "member")
        except PlatformError as exc:
            errors.append(exc)

    other = threading.Thread(target=bea_demotes_the_first_owner)
    with write_transaction(site.engine) as conn:
        set_role(conn, first, bea.id, "member")  # holds the account until it commits
        other.start()
        other.join(timeout=1.0)
        assert other.is_alive()  # waiting for the first transaction
    other.join(timeout=30)
    assert not other.is_alive()
    # Bea was no longer an owner by the time her change ran.
    assert len(errors) == 1 and isinstance(errors[0], Forbidden)
    with site.engine.connect() as conn:
        roles = {row.email: row.role for row in conn.execute(select(users.c.email, users.c.role))}
    assert roles == {"owner@acme.example": "owner", "bea@acme.example": "member"}


@pytest.mark.parametrize("role", ["owner", "member"])
def test_the_last_owner_cannot_step_down_on_the_platform_either(site: Site, role: str) -> None:
    site.sign_up()
    with write_transaction(site.engine) as conn:
        first = user_by_email(conn, "owner@acme.example")
        assert first is not None
        if role == "owner":
            assert set_role(conn, first, first.id, "owner").role == "owner"
        else:
            with pytest.raises(Conflict):
                set_role(conn, first, first.id, "member")


def test_the_command_line_makes_someone_owner_again(site: Site) -> None:
    """Whoever runs the instance can hand an account back to someone when its owners left."""
    from click.testing import CliRunner

    from pixeltrail.cli import main

    owner = site.sign_up()
    bea = _join(site, owner, "bea@acme.example")
    env = {
        "PIXELTRAIL_DATA_DIR": str(site.settings.data_dir),
        "PIXELTRAIL_DATABASE_URL": site.settings.database_url,
        "PIXELTRAIL_SECRET_KEY": site.settings.secret_keys or "",
    }
    run = CliRunner().invoke
    made = run(main, ["account", "set-role", "Bea@acme.example", "owner"], env=env)
    assert made.exit_code == 0, made.output
    assert "bea@acme.example is now owner of Acme" in made.output
    assert bea.get("/settings").status_code == 200

    assert (
        run(main, ["account", "set-role", "owner@acme.example", "member"], env=env).exit_code == 0
    )
    last = run(main, ["account", "set-role", "bea@acme.example", "member"], env=env)
    assert last.exit_code != 0
    assert "at least one owner" in last.output
    assert _role(site, "bea@acme.example") == "owner"
    unknown = run(main, ["account", "set-role", "nobody@acme.example", "owner"], env=env)
    assert unknown.exit_code != 0 and "no user nobody@acme.example" in unknown.output
    wrong = run(main, ["account", "set-role", "bea@acme.example", "admin"], env=env)
    assert wrong.exit_code != 0 and _role(site, "bea@acme.example") == "owner"


def test_an_owner_withdraws_an_open_invitation_and_its_link_stops_working(site: Site) -> None:
    owner = site.sign_up()
    bea = _join(site, owner, "bea@acme.example")
    answer = owner.post("/settings/users", {"email": "carl@acme.example"})
    link = _LINK.search(answer.text)
    assert link is not None
    path = link.group(1).removeprefix(site.settings.base_url)
    with site.engine.connect() as conn:
        ids = {row.email: row.id for row in conn.execute(select(invites.c.email, invites.c.id))}
    carl, accepted = ids["carl@acme.example"], ids["bea@acme.example"]

    # Not by a member, not another account, not an invitation already accepted.
    assert "Withdraw" not in bea.get("/settings/users").text
    by_member = _act(bea, f"/settings/invites/{carl}/revoke", {})
    assert by_member.status_code == 403
    mallory = another_account(site)
    assert _act(mallory, f"/settings/invites/{carl}/revoke", {}).status_code == 404
    assert _act(owner, f"/settings/invites/{accepted}/revoke", {}).status_code == 404
    assert site.visitor().get(path).status_code == 200  # still open

    withdrawn = _act(owner, f"/settings/invites/{carl}/revoke", {})
    assert withdrawn.status_code == 303
    page = owner.get("/settings/users").text
    assert "Invitation for carl@acme.example withdrawn" in page
    assert "Open invitations" not in page
    assert site.visitor().get(path).status_code == 404
    refused = site.visitor().post(path, {"password": PASSWORD}, token_from="/signin")
    assert refused.status_code == 404
    assert _role(site, "carl@acme.example") is None


def test_inviting_an_address_again_replaces_its_open_invitation(site: Site) -> None:
    owner = site.sign_up()
    mallory = another_account(site)

    def invite(user: User, email: str) -> str:
        answer = user.post("/settings/users", {"email": email})
        found = _LINK.search(answer.text)
        assert found is not None, answer.text
        return found.group(1).removeprefix(site.settings.base_url)

    first = invite(owner, "carl@acme.example")
    assert "It replaces" not in owner.get("/settings/users").text
    again = owner.post("/settings/users", {"email": "Carl@Acme.example"})
    assert "It replaces the earlier invitation for carl@acme.example" in again.text
    found = _LINK.search(again.text)
    assert found is not None
    second = found.group(1).removeprefix(site.settings.base_url)
    # One open invitation left, the new one: the first link stops working.
    page = owner.get("/settings/users").text
    assert page.count("Withdraw the invitation for carl@acme.example?") == 1
    assert site.visitor().get(first).status_code == 404
    refused = site.visitor().post(first, {"password": PASSWORD}, token_from="/signin")
    assert refused.status_code == 404
    # Another account inviting the same address replaces only its own invitation.
    theirs = invite(mallory, "carl@acme.example")
    assert site.visitor().get(theirs).status_code == 200
    assert site.visitor().get(second).status_code == 200
    assert site.visitor().post(second, {"password": PASSWORD}).status_code == 303
    assert _role(site, "carl@acme.example") == "member"
    with site.engine.connect() as conn:
        rows = conn.execute(select(invites.c.account_id, invites.c.accepted_at_ms)).all()
    assert len(rows) == 2 and sum(row.accepted_at_ms is not None for row in rows) == 1
