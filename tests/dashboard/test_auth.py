"""Getting in and staying safe: sign-up, sign-in, sessions, CSRF, rate limits, headers."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from pixeltrail.store.schema import mailboxes, users
from pixeltrail.web.api.app import mounted_api
from pixeltrail.web.dashboard import throttle
from pixeltrail.web.dashboard.throttle import Limit

from ..api.conftest import make_settings, serving
from ..dbs import fresh_database
from .conftest import PASSWORD, Site, User

OWNER = "owner@acme.example"


@pytest.fixture
def proxied_site(tmp_path: Path) -> Iterator[Site]:
    """Behind a trusted proxy: each visitor says where it comes from with X-Forwarded-For.
    The throttle lives in the server's memory, so one database is enough."""
    with fresh_database("sqlite", tmp_path) as database:
        database.migrated()
        settings = make_settings(tmp_path, database.url, PIXELTRAIL_TRUSTED_PROXIES="127.0.0.1")
        with serving(mounted_api(database.engine, settings)) as url:
            site = Site(url, database.engine, settings)
            try:
                yield site
            finally:
                for user in site.users:
                    user.close()


def visitor_from(site: Site, address: str) -> User:
    visitor = site.visitor()
    visitor.client.headers["X-Forwarded-For"] = address
    return visitor


def sign_in_status(visitor: User, password: str, email: str = OWNER) -> int:
    return visitor.post("/signin", {"email": email, "password": password}).status_code


def test_first_visit_creates_the_account_and_its_owner(site: Site) -> None:
    visitor = site.visitor()
    first = visitor.get("/")
    assert first.status_code == 303
    assert first.headers["location"] == "/setup"
    owner = site.sign_up("Owner@Acme.example", "Acme Sales")
    page = owner.get("/campaigns")
    assert page.status_code == 200
    assert "owner@acme.example" in page.text
    with site.engine.connect() as conn:
        row = conn.execute(select(users.c.email, users.c.role)).one()
        boxes = conn.execute(select(mailboxes.c.name, mailboxes.c.smtp_url_encrypted)).all()
    assert tuple(row) == ("owner@acme.example", "owner")
    # Ready to send at once: the built-in outbox, from the owner's address.
    assert [tuple(box) for box in boxes] == [("Built-in outbox", None)]
    # Set-up happens once: afterwards it sends people to sign in and refuses a second owner.
    assert site.visitor().get("/setup").headers["location"] == "/signin"
    again = site.visitor().post(
        "/setup",
        {"account_name": "Evil", "email": "evil@x.example", "password": PASSWORD},
        token_from="/signin",
    )
    assert again.status_code == 303
    assert again.headers["location"] == "/signin"
    with site.engine.connect() as conn:
        assert len(conn.execute(select(users.c.id)).all()) == 1


def test_setup_form_errors_name_the_problem_and_keep_the_values(site: Site) -> None:
    answer = site.visitor().post(
        "/setup",
        {"account_name": "Acme", "email": "owner@acme.example", "password": "short"},
    )
    assert answer.status_code == 422
    assert "at least 8 characters" in answer.text
    assert 'value="owner@acme.example"' in answer.text


def test_session_cookie_flags_and_security_headers(site: Site) -> None:
    visitor = site.visitor()
    answer = visitor.post(
        "/setup", {"account_name": "Acme", "email": "o@acme.example", "password": PASSWORD}
    )
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "pt_session" in v
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http here; Secure is set under https
    page = visitor.get("/campaigns")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"


def test_pages_need_a_session(site: Site) -> None:
    site.sign_up()
    stranger = site.visitor()
    answer = stranger.get("/campaigns")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=/campaigns"
    stranger.client.cookies.set("pt_session", "made-up")
    assert stranger.get("/campaigns").status_code == 303


def test_sign_in_and_out(site: Site) -> None:
    site.sign_up("owner@acme.example")
    wrong = site.visitor().post("/signin", {"email": "owner@acme.example", "password": "nope-nope"})
    assert wrong.status_code == 401
    assert "wrong email or password" in wrong.text
    unknown = site.visitor().post("/signin", {"email": "who@x.example", "password": PASSWORD})
    assert unknown.status_code == 401
    assert "wrong email or password" in unknown.text
    user = site.sign_in("OWNER@acme.example")
    assert user.get("/campaigns").status_code == 200
    out = user.post("/signout", token_from="/campaigns")
    assert out.status_code == 303
    # The old cookie value is dead on the server too, not only forgotten by the browser.
    stolen = site.visitor()
    stolen.client.cookies.set("pt_session", user.client.cookies.get("pt_session") or "x")
    assert stolen.get("/campaigns").status_code == 303


def test_sign_in_goes_back_only_to_our_own_pages(site: Site) -> None:
    site.sign_up("owner@acme.example")
    for target, expected in [
        ("/contacts", "/contacts"),
        ("https://evil.example/", "/campaigns"),
        ("//evil.example/", "/campaigns"),
        ("/\\evil.example", "/campaigns"),
    ]:
        user = site.visitor()
        token = user.csrf("/signin")
        answer = user.client.post(
            "/signin",
            params={"next": target},
            data={"csrf_token": token, "email": "owner@acme.example", "password": PASSWORD},
            headers={"Origin": site.url},
        )
        assert answer.headers["location"] == expected


def test_sign_in_attempts_are_rate_limited(site: Site) -> None:
    site.sign_up("owner@acme.example")
    attacker = site.visitor()
    statuses = [
        attacker.post(
            "/signin", {"email": "owner@acme.example", "password": f"guess-{n}"}
        ).status_code
        for n in range(10)
    ]
    assert statuses[:8] == [401] * 8
    assert statuses[8:] == [429, 429]
    # Even the right password waits now, from this client: the limit is on the email being
    # guessed from here.
    late = attacker.post("/signin", {"email": "owner@acme.example", "password": PASSWORD})
    assert late.status_code == 429
    assert int(late.headers["retry-after"]) > 60


def test_sign_in_attempts_sent_in_parallel_get_no_more_password_checks(site: Site) -> None:
    """Thirty guesses at once, the right password among them: no more than 8 are checked,
    and the right one, arriving past the limit, does not sign in."""
    site.sign_up(OWNER)
    attacker = site.visitor()
    token = attacker.csrf("/signin")
    passwords = [f"guess-{n}" for n in range(30)]
    passwords[25] = PASSWORD

    def attempt(password: str) -> int:
        return attacker.client.post(
            "/signin",
            data={"csrf_token": token, "email": OWNER, "password": password},
            headers={"Origin": attacker.url},
        ).status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(attempt, passwords))
    assert statuses.count(401) <= 8, statuses
    assert set(statuses) <= {401, 429, 303}, statuses
    assert statuses.count(401) + statuses.count(303) <= 8, statuses


def test_failures_from_one_address_do_not_lock_the_owner_out_elsewhere(proxied_site: Site) -> None:
    proxied_site.sign_up(OWNER)
    attacker = visitor_from(proxied_site, "203.0.113.66")
    statuses = [sign_in_status(attacker, f"guess-{n}") for n in range(9)]
    assert statuses == [401] * 8 + [429]
    assert sign_in_status(attacker, PASSWORD) == 429
    # The owner, at another address, signs in as usual, and the attacker stays locked.
    owner = visitor_from(proxied_site, "198.51.100.7")
    assert sign_in_status(owner, PASSWORD) == 303
    assert "owner@acme.example" in owner.get("/campaigns").text
    assert sign_in_status(attacker, PASSWORD) == 429
    # A colleague behind the same address as the attacker is not locked out either.
    assert (
        sign_in_status(visitor_from(proxied_site, "203.0.113.66"), "x" * 9, "c@acme.example") == 401
    )


def test_an_ipv6_client_is_counted_by_its_64_network(proxied_site: Site) -> None:
    proxied_site.sign_up(OWNER)
    # Eight addresses of one /64 are one client: a new address in it gains no fresh attempts.
    statuses = [
        sign_in_status(visitor_from(proxied_site, f"2001:db8:1:1::{n + 1}"), f"guess-{n}")
        for n in range(8)
    ]
    assert statuses == [401] * 8
    assert sign_in_status(visitor_from(proxied_site, "2001:db8:1:1::ffff"), PASSWORD) == 429
    assert sign_in_status(visitor_from(proxied_site, "2001:db8:1:2::1"), PASSWORD) == 303


def test_failures_for_one_email_from_many_addresses_lock_it_everywhere(
    proxied_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The email's own limit, lowered from 100 an hour (test_throttle.py has the real one) to
    # spare a hundred password checks: 3 failures from each of 4 addresses reach it.
    monkeypatch.setattr(throttle, "PER_EMAIL", Limit(12, 60 * 60))
    proxied_site.sign_up(OWNER)
    statuses = [
        sign_in_status(visitor_from(proxied_site, f"203.0.113.{n // 3 + 1}"), f"guess-{n}")
        for n in range(12)
    ]
    assert statuses == [401] * 12
    fresh = visitor_from(proxied_site, "198.51.100.7")
    late = fresh.post("/signin", {"email": OWNER, "password": PASSWORD})
    assert late.status_code == 429
    assert 15 * 60 < int(late.headers["retry-after"]) <= 60 * 60
    # Only that email: another one is still checked from the same address.
    assert sign_in_status(fresh, "x" * 9, "c@acme.example") == 401


def test_forms_without_the_csrf_token_are_refused(site: Site) -> None:
    owner = site.sign_up()
    before = owner.get("/campaigns")
    assert before.status_code == 200
    missing = owner.client.post("/signout", data={}, headers={"Origin": site.url})
    assert missing.status_code == 403
    wrong = owner.client.post(
        "/signout", data={"csrf_token": "x" * 43}, headers={"Origin": site.url}
    )
    assert wrong.status_code == 403
    # Another site's page posting with the user's cookie: refused by its Origin too.
    token = owner.csrf("/campaigns")
    foreign = owner.client.post(
        "/signout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    # Still signed in: none of those did anything.
    assert owner.get("/campaigns").status_code == 200
    # Sign-in itself needs the pre-session token (login CSRF).
    bare = site.visitor().client.post(
        "/signin", data={"email": "owner@acme.example", "password": PASSWORD}
    )
    assert bare.status_code == 403


def test_invited_user_joins_the_same_account(site: Site) -> None:
    from pixeltrail.platform.accounts.users import invite_user, user_by_email
    from pixeltrail.store.db import write_transaction

    site.sign_up("owner@acme.example")
    with write_transaction(site.engine) as conn:
        owner = user_by_email(conn, "owner@acme.example")
        assert owner is not None
        _invite, token = invite_user(conn, owner, "colleague@acme.example")
    newcomer = site.visitor()
    page = newcomer.get(f"/invite/{token}")
    assert "colleague@acme.example" in page.text
    joined = newcomer.post(f"/invite/{token}", {"password": PASSWORD})
    assert joined.status_code == 303
    assert "colleague@acme.example" in newcomer.get("/campaigns").text
    # Used once only.
    assert site.visitor().get(f"/invite/{token}").status_code == 404
    assert site.visitor().get("/invite/not-a-token").status_code == 404
    site.sign_in("colleague@acme.example")


def test_an_account_made_on_the_command_line_signs_in_after_set_password(site: Site) -> None:
    from click.testing import CliRunner

    from pixeltrail.cli import main

    env = {
        "PIXELTRAIL_DATA_DIR": str(site.settings.data_dir),
        "PIXELTRAIL_DATABASE_URL": site.settings.database_url,
        "PIXELTRAIL_SECRET_KEY": site.settings.secret_keys or "",
    }
    made = CliRunner().invoke(
        main, ["account", "create", "--name", "Acme", "--owner-email", "cli@acme.example"], env=env
    )
    assert made.exit_code == 0, made.output
    # No password yet: sign-in is refused like any wrong password.
    refused = site.visitor().post("/signin", {"email": "cli@acme.example", "password": PASSWORD})
    assert refused.status_code == 401
    short = CliRunner().invoke(
        main, ["account", "set-password", "cli@acme.example"], input="short\nshort\n", env=env
    )
    assert short.exit_code != 0
    assert "at least 8 characters" in short.output
    done = CliRunner().invoke(
        main,
        ["account", "set-password", "cli@acme.example"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        env=env,
    )
    assert done.exit_code == 0, done.output
    assert "cli@acme.example" in site.sign_in("cli@acme.example").get("/campaigns").text
