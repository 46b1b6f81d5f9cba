"""The dashboard over real HTTP, on real databases; and a real Chromium driven by Playwright.

def test_something(site: Site) -> None:
    owner = site.sign_up()                      # the first visit creates the account
    page = owner.get("/campaigns")              # an httpx client with the session cookie
    token = owner.csrf("/settings")             # the form token of a page, for posts
    owner.post("/settings", {"name": "x"})      # adds the token itself

def test_in_browser(site: Site, browser: Browser) -> None:
    page = browser.new_page(base_url=site.url)
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from pixeltrail.config import Settings
from pixeltrail.web.api.app import mounted_api

from ..api.conftest import make_settings, serving
from ..dbs import DATABASES, Database, fresh_database

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CHROMIUM = os.environ.get("PIXELTRAIL_TEST_CHROMIUM", "/usr/bin/chromium")
# No network here but loopback: keep Chromium from calling home at start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


class User:
    """A browser-like client: keeps cookies, posts forms with the page's CSRF token."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
        self.url = url

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def csrf(self, path: str) -> str:
        page = self.get(path)
        assert page.status_code == 200, (path, page.status_code)
        return csrf_of(page.text)

    def post(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        token_from: str | None = None,
        files: Any = None,
    ) -> httpx.Response:
        """Post a form as our own page would: with its CSRF token and our Origin."""
        token = self.csrf(token_from or path)
        return self.client.post(
            path,
            data={"csrf_token": token, **(data or {})},
            files=files,
            headers={"Origin": self.url},
        )

    def close(self) -> None:
        self.client.close()


@dataclass
class Site:
    url: str
    engine: Engine
    settings: Settings
    users: list[User] = field(default_factory=list)

    def visitor(self) -> User:
        user = User(self.url)
        self.users.append(user)
        return user

    def sign_up(self, email: str = "owner@acme.example", account: str = "Acme") -> User:
        user = self.visitor()
        answer = user.post(
            "/setup",
            {"account_name": account, "email": email, "password": PASSWORD, "timezone": "UTC"},
        )
        assert answer.status_code == 303, answer.text
        return user

    def sign_in(self, email: str, password: str = PASSWORD) -> User:
        user = self.visitor()
        answer = user.post("/signin", {"email": email, "password": password})
        assert answer.status_code == 303, answer.text
        return user


@pytest.fixture(params=DATABASES)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    with fresh_database(request.param, tmp_path) as database:
        yield from _serve(database, tmp_path)


@pytest.fixture
def sqlite_site(tmp_path: Path) -> Iterator[Site]:
    """For browser tests: the pages are the same on either database."""
    with fresh_database("sqlite", tmp_path) as database:
        yield from _serve(database, tmp_path)


def _serve(database: Database, tmp_path: Path) -> Iterator[Site]:
    database.migrated()
    settings = make_settings(tmp_path, database.url)
    with serving(mounted_api(database.engine, settings)) as url:
        site = Site(url, database.engine, settings)
        try:
            yield site
        finally:
            for user in site.users:
                user.close()


# Function scope: Playwright's sync API keeps an event loop running in this thread while it is
# open, and tests elsewhere call asyncio.run(); each browser test opens and closes its own.
@pytest.fixture
def playwright() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is needed for the dashboard tests ({CHROMIUM}); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


def launch_chromium(playwright: Any, *extra_args: str) -> Any:
    """Debian's Chromium (no browser download here), quiet on a machine without network."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])


def sign_up_in_browser(page: Any) -> None:
    """Create the account through the set-up page, as a new user does; signed in afterwards."""
    page.goto("/setup")
    page.fill('input[name="account_name"]', "Acme")
    page.fill('input[name="email"]', "owner@acme.example")
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url("**/campaigns")


@pytest.fixture
def browser(playwright: Any) -> Iterator[Any]:
    chromium = launch_chromium(playwright)
    yield chromium
    chromium.close()
