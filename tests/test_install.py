"""The package as a user installs it: the sdist and the wheel built from a copy of this tree,
the wheel installed into a fresh virtual environment (dependencies pinned from uv.lock),
`pixeltrail serve` started from there, and every dashboard page loaded once signed in.

Nothing is written into this tree: setuptools writes build/ and *.egg-info beside the sources,
so the build runs on a copy.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from pixeltrail.web.dashboard.app import ROUTES

from .dashboard.conftest import PASSWORD, User
from .server.conftest import ServerProcess, eventually, free_port

ROOT = Path(__file__).resolve().parent.parent
# The Makefile installs uv here before anything else.
UV = ROOT / ".tools" / "bin" / "uv"
# Not part of a source tree: environments, caches, build output, local data.
_LOCAL = {".git", ".venv", ".tools", "build", "dist", "data"}
_GENERATED = {"__pycache__", ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
_KEY = re.compile(r'<code id="new-key">(pt_[^<]+)</code>')
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
OWNER = "owner@acme.example"
CSV = "Email,First Name\nada@example.org,Ada\n"


@dataclass(frozen=True)
class Built:
    tree: Path
    sdist: Path
    wheel: Path
    sources: frozenset[str]  # every file of the package in the tree, as "pixeltrail/..."


def _copied(folder: str, names: list[str]) -> set[str]:
    at_top = Path(folder) == ROOT
    return {
        name
        for name in names
        if name in _GENERATED
        or name.endswith((".egg-info", ".so", ".pyc"))
        or (at_top and name in _LOCAL)
    }


def uv(*args: str, cwd: Path) -> str:
    command = str(UV) if UV.exists() else shutil.which("uv")
    if command is None:
        pytest.fail(f"uv is needed to build the package ({UV}); `make test` installs it")
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    done = subprocess.run(
        [command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"uv {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """An sdist, and the wheel built from it, as `uv build` makes them."""
    base = tmp_path_factory.mktemp("package")
    tree = base / "tree"
    shutil.copytree(ROOT, tree, ignore=_copied)
    package = tree / "src" / "pixeltrail"
    sources = frozenset(
        path.relative_to(package.parent).as_posix() for path in package.rglob("*") if path.is_file()
    )
    dist = base / "dist"
    uv("build", "--quiet", "--python", sys.executable, "--out-dir", str(dist), cwd=tree)
    [sdist] = dist.glob("*.tar.gz")
    [wheel] = dist.glob("*.whl")
    return Built(tree, sdist, wheel, sources)


def test_the_sdist_and_the_wheel_hold_every_file_of_the_package(built: Built) -> None:
    templates = {name for name in built.sources if name.endswith(".html")}
    assert "pixeltrail/web/dashboard/templates/campaigns/list.html" in templates
    assert "pixeltrail/store/migrations/env.py" in built.sources

    top = built.sdist.name.removesuffix(".tar.gz")
    with tarfile.open(built.sdist) as sdist:
        in_sdist = {name.removeprefix(f"{top}/src/") for name in sdist.getnames()}
    # The C sources too: the wheel is built from the sdist.
    assert sorted(built.sources - in_sdist) == []
    assert {"setup.py", "pyproject.toml", "README.md"} <= {
        name.removeprefix(f"{top}/") for name in in_sdist
    }

    with zipfile.ZipFile(built.wheel) as wheel:
        in_wheel = set(wheel.namelist())
    run_time = {name for name in built.sources if not name.endswith(".c")}
    assert sorted(run_time - in_wheel) == []


@pytest.fixture
def installed(built: Built, tmp_path: Path) -> Path:
    """A fresh virtual environment with the wheel and the dependencies uv.lock pins."""
    venv = tmp_path / "venv"
    uv("venv", "--quiet", "--python", sys.executable, str(venv), cwd=tmp_path)
    pins = tmp_path / "constraints.txt"
    uv(
        "export",
        "--frozen",
        "--no-dev",
        "--no-emit-project",
        "--no-hashes",
        "--quiet",
        "--output-file",
        str(pins),
        cwd=built.tree,
    )
    python = venv / "bin" / "python"
    uv(
        "pip",
        "install",
        "--quiet",
        "--python",
        str(python),
        "-c",
        str(pins),
        str(built.wheel),
        cwd=tmp_path,
    )
    where = subprocess.run(
        [str(python), "-c", "import pixeltrail; print(pixeltrail.__file__)"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    return venv


@pytest.fixture
def server(installed: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'db' / 'pixeltrail.db'}",
        command=[str(installed / "bin" / "pixeltrail")],
        PIXELTRAIL_CNAME_TARGET="pixeltrail.acme.example",
        # The webhook below goes to a closed port here, not out to the network.
        PIXELTRAIL_WEBHOOKS_ALLOW_LOCAL="1",
    )
    process.env.pop("PYTHONPATH", None)
    yield process.start()
    process.stop()


def test_the_installed_wheel_serves_every_dashboard_page(
    built: Built, server: ServerProcess
) -> None:
    visitor = User(server.base_url)
    owner = User(server.base_url)
    try:
        setup = owner.get("/setup")
        assert setup.status_code == 200
        assert 'name="account_name"' in setup.text
        signed_up = owner.post(
            "/setup",
            {"account_name": "Acme", "email": OWNER, "password": PASSWORD, "timezone": "UTC"},
        )
        assert signed_up.status_code == 303, signed_up.text
        ids = _objects(owner, server)
        _every_page(owner, ids, server)
        _static_files(owner, built)
        _public_pages(visitor, ids)
    finally:
        visitor.close()
        owner.close()
    assert "Traceback" not in server.log(), server.log()


def _objects(owner: User, server: ServerProcess) -> dict[str, str]:
    """One of each thing a dashboard page shows by id, made through the server; their ids."""
    created = owner.post("/settings/api-keys", {"name": "install check"})
    assert created.status_code == 200, created.text
    key = _KEY.search(created.text)
    assert key is not None, created.text
    ids: dict[str, str] = {"key_id": _found(owner, "/settings/api-keys", r"/api-keys/([^/]+)/")}
    with httpx.Client(
        base_url=server.base_url + "/api/v1",
        headers={"Authorization": f"Bearer {key.group(1)}"},
        timeout=30,
    ) as api:
        ids |= _through_the_api(api)

    invited = owner.post("/settings/users", {"email": "grace@acme.example"})
    assert invited.status_code == 200, invited.text
    token = re.search(r"/invite/([\w-]+)", invited.text)
    assert token is not None, invited.text
    ids["token"] = token.group(1)
    ids["user_id"] = _found(owner, "/settings/users", r"/settings/users/([^/]+)/role")
    ids["invite_id"] = _found(owner, "/settings/users", r"/settings/invites/([^/]+)/revoke")

    # One upload left at its mapping, one imported (its progress has a page of its own).
    ids["new_upload"] = _upload(owner, "Email\ngrace@example.org\n")
    ids["upload_id"] = _upload(owner, "Email\nlin@example.org\n")
    started = owner.post(f"/contacts/import/{ids['upload_id']}", {"map_0": "email"})
    assert started.status_code == 303, started.text

    # The campaign was launched with the built-in outbox: its message lands there.
    ids["message_id"] = eventually(
        lambda: re.search(r'href="/outbox/([^"/?]+)"', owner.get("/outbox").text), timeout=60
    ).group(1)
    return ids


def _through_the_api(api: httpx.Client) -> dict[str, str]:
    mailbox = api.post(
        "/mailboxes", json={"name": "Sales", "from_email": "sales@acme.example", "from_name": "Al"}
    )
    assert mailbox.status_code == 201, mailbox.text
    imported = api.post("/contacts/import", content=CSV, headers={"content-type": "text/csv"})
    assert imported.status_code == 200, imported.text
    [contact] = api.get("/contacts").json()["items"]
    campaign = api.post(
        "/campaigns",
        json={
            "name": "Launch",
            "mailbox_id": mailbox.json()["id"],
            "steps": [
                {
                    "subject": "Hi {{ first_name }}",
                    "delay_days": 0,
                    "html": '<p>Hello {{ first_name }}. <a href="https://acme.example/">Acme</a></p>',
                }
            ],
        },
    )
    assert campaign.status_code == 201, campaign.text
    campaign_id = campaign.json()["id"]
    enrolled = api.post(f"/campaigns/{campaign_id}/contacts", json={"contact_ids": [contact["id"]]})
    assert enrolled.status_code == 200, enrolled.text
    launched = api.post(f"/campaigns/{campaign_id}/launch", json={})
    assert launched.status_code == 200, launched.text
    domain = api.post("/tracking-domains", json={"hostname": "track.acme.example"})
    assert domain.status_code == 201, domain.text
    endpoint = api.post(
        "/webhooks",
        json={"url": f"http://127.0.0.1:{free_port()}/in", "event_types": ["message.opened"]},
    )
    assert endpoint.status_code == 201, endpoint.text
    delivery = api.post(f"/webhooks/{endpoint.json()['id']}/test")
    assert delivery.status_code == 202, delivery.text
    return {
        "campaign_id": campaign_id,
        "position": "1",
        "contact_id": contact["id"],
        "mailbox_id": mailbox.json()["id"],
        "domain_id": domain.json()["id"],
        "endpoint_id": endpoint.json()["id"],
        "delivery_id": delivery.json()["id"],
    }


def _found(user: User, path: str, pattern: str) -> str:
    page = user.get(path)
    found = re.search(pattern, page.text)
    assert found is not None, f"{path}: no {pattern}\n{page.text}"
    return found.group(1)


def _upload(user: User, content: str) -> str:
    answer = user.post(
        "/contacts/import",
        token_from="/contacts/import",
        files={"file": ("people.csv", content, "text/csv")},
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"].rsplit("/", 1)[1]


def _every_page(owner: User, ids: dict[str, str], server: ServerProcess) -> None:
    """Each GET route of the dashboard, its ids filled in, redirects followed: a real page."""
    routes = [r for r in ROUTES if isinstance(r, Route) and "GET" in (r.methods or ())]
    unknown = {name for r in routes for name in r.param_convertors} - ids.keys()
    assert not unknown, f"make one of each in _objects: {sorted(unknown)}"
    paths = [_PARAM.sub(lambda m: ids[m.group(1)], r.path) for r in routes]
    assert len(paths) > 25
    for path in [*paths, f"/contacts/import/{ids['new_upload']}"]:
        answer = owner.get(path, follow_redirects=True)
        _assert_page(path, answer, server)
    # The pages that show a template of their own, each for what it is.
    assert 'name="map_0"' in owner.get(f"/contacts/import/{ids['new_upload']}").text
    assert "Hello Ada." in owner.get(f"/outbox/{ids['message_id']}/body").text
    assert "ada@example.org" in owner.get(f"/campaigns/{ids['campaign_id']}/report.csv").text
    assert "track.acme.example" in owner.get(f"/domains/{ids['domain_id']}").text


def _assert_page(path: str, answer: httpx.Response, server: ServerProcess) -> None:
    body = answer.text
    where = f"{path} (at {answer.url.path}): {answer.status_code}\n{body[:2000]}\n{server.log()}"
    assert answer.status_code == 200, where
    assert body.strip(), where
    assert "Back to the dashboard" not in body, where  # the error page's
    if '<header class="top">' in body:  # a whole dashboard page: signed in, with its own title
        assert OWNER in body, where
        assert "<main>" in body, where


def _static_files(user: User, built: Built) -> None:
    prefix = "pixeltrail/web/dashboard/static/"
    with zipfile.ZipFile(built.wheel) as wheel:
        shipped = {n: wheel.read(n) for n in wheel.namelist() if n.startswith(prefix)}
    assert shipped
    for name, content in shipped.items():
        answer = user.get("/static/" + name.removeprefix(prefix))
        assert answer.status_code == 200, name
        assert answer.content == content, name


def _public_pages(visitor: User, ids: dict[str, str]) -> None:
    """What someone not signed in sees: the sign-in page, and an invitation's page."""
    start = visitor.get("/", follow_redirects=True)
    assert start.status_code == 200
    assert start.url.path == "/signin"
    assert 'name="password"' in start.text
    invite = visitor.get(f"/invite/{ids['token']}")
    assert invite.status_code == 200
    assert "grace@acme.example" in invite.text
