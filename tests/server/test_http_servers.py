"""`serve` on either HTTP server (PIXELTRAIL_HTTP_SERVER): the same answers, the same client
addresses behind a trusted proxy, and the same clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from pixeltrail.config import HTTP_SERVERS, ConfigError, Settings
from pixeltrail.recording.spool import SpoolRotator
from pixeltrail.runtime.http_process import Server
from pixeltrail.tracking.tokens import new_message_id
from pixeltrail.web.tracking import PIXEL_GIF

from ..conftest import SECRET
from .conftest import ServerProcess, recorded, running

DESTINATION = "https://example.com/pricing?plan=pro&utm_source=email"


@pytest.mark.parametrize("http_server", HTTP_SERVERS)
def test_each_http_server_answers_records_and_stops_cleanly(
    tmp_path: Path, sqlite_url: str, sqlite_db: Engine, http_server: str
) -> None:
    server = ServerProcess(
        tmp_path / "data",
        sqlite_url,
        PIXELTRAIL_HTTP_SERVER=http_server,
        PIXELTRAIL_TRUSTED_PROXIES="127.0.0.1",
    ).start()
    message_id = new_message_id()
    try:
        assert f"with {http_server} " in server.log()
        background = server.background_pid()
        pixel = httpx.get(
            server.links.open_url(message_id),
            headers={"User-Agent": "opener", "X-Forwarded-For": "203.0.113.9"},
        )
        assert (pixel.status_code, pixel.content) == (200, PIXEL_GIF)
        assert pixel.headers["cache-control"] == "no-cache, no-store, must-revalidate, private"
        head = httpx.head(server.links.open_url(message_id), headers={"User-Agent": "header"})
        assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "43")
        click = httpx.get(
            server.links.click_url(message_id, 2, DESTINATION), headers={"User-Agent": "clicker"}
        )
        assert (click.status_code, click.headers["location"]) == (302, DESTINATION)
        assert click.headers["x-robots-tag"] == "noindex, nofollow"
        bad = httpx.get(server.base_url + "/c/" + "A" * 40)
        assert (bad.status_code, bad.headers["content-type"]) == (404, "text/html; charset=utf-8")
        assert httpx.post(server.links.open_url(message_id)).status_code == 405
        assert server.health()[0] == 200
    finally:
        server.stop()  # SIGTERM: answers finish, the spool is closed, the last flush runs
    assert server.process is not None
    assert server.process.returncode == -signal.SIGTERM
    assert not running(background)
    events = recorded(sqlite_db, message_id)
    hits = sorted((e.hit.user_agent, e.hit.method, e.hit.ip) for e in events)
    assert hits == [
        ("clicker", "GET", "127.0.0.1"),
        ("header", "HEAD", "127.0.0.1"),
        ("opener", "GET", "203.0.113.9"),  # from X-Forwarded-For: the peer is a trusted proxy
    ]
    assert list((tmp_path / "data" / "spool").iterdir()) == []
    assert "Traceback" not in server.log()


@pytest.mark.parametrize("http_server", HTTP_SERVERS)
def test_redirects_stay_on_this_site_whatever_host_is_sent(
    tmp_path: Path, sqlite_url: str, sqlite_db: Engine, http_server: str
) -> None:
    server = ServerProcess(tmp_path / "data", sqlite_url, PIXELTRAIL_HTTP_SERVER=http_server)
    server.start()
    evil = {"Host": "evil.example"}
    try:
        for path, target in [
            ("/campaigns/?a=1", "/campaigns?a=1"),
            ("/api/v1/contacts/", "/api/v1/contacts"),
        ]:
            answer = httpx.get(server.base_url + path, headers=evil)
            assert (answer.status_code, answer.headers["location"]) == (307, target)
        for path in ["//evil.example/", "/\\evil.example/", "/u/x/"]:
            answer = httpx.get(server.base_url + path, headers=evil)
            assert answer.status_code == 404 and "location" not in answer.headers, path
    finally:
        server.stop()
    assert "Traceback" not in server.log()


def test_the_http_server_setting_names_its_choices() -> None:
    assert Settings.from_env({}).http_server == "granian"
    assert Settings.from_env({"PIXELTRAIL_HTTP_SERVER": "Uvicorn"}).http_server == "uvicorn"
    with pytest.raises(ConfigError, match="PIXELTRAIL_HTTP_SERVER is granian or uvicorn"):
        Settings.from_env({"PIXELTRAIL_HTTP_SERVER": "gunicorn"})


def _in_process(tmp_path: Path) -> Server:
    return Server(
        Settings.from_env(
            {
                "PIXELTRAIL_DATA_DIR": str(tmp_path),
                "PIXELTRAIL_SECRET_KEY": SECRET,
                "PIXELTRAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'pixeltrail.db'}",
            }
        )
    )


def _lifespan(
    server: Server, on_sent: Callable[[MutableMapping[str, Any]], None] = lambda _: None
) -> list[MutableMapping[str, Any]]:
    """Start-up then shutdown, as an HTTP server drives them; what the app sent back."""
    sent: list[MutableMapping[str, Any]] = []
    events = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> MutableMapping[str, Any]:
        return next(events)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        on_sent(message)

    asyncio.run(server({"type": "lifespan", "state": {}}, receive, send))
    return sent


def test_what_start_up_made_is_left_out_of_garbage_collection(tmp_path: Path) -> None:
    """A full collection then walks only what requests leave behind, not the whole app."""
    frozen: list[int] = []
    tracked: list[int] = []

    def at_start(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            frozen.append(gc.get_freeze_count())
            tracked.append(len(gc.get_objects()))

    try:
        sent = _lifespan(_in_process(tmp_path), at_start)
    finally:
        gc.unfreeze()
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert frozen[0] > 10_000  # the app, its routes, SQLAlchemy's tables...
    assert tracked[0] < frozen[0] / 10  # ...and hardly anything is left for the collector


class _Broken:
    def start(self) -> None:
        raise OSError("no room for the spool")

    def stop(self) -> None:
        raise AssertionError("never started, never stopped")


def test_a_failed_start_up_is_reported_to_the_http_server_and_undone(tmp_path: Path) -> None:
    """The server then exits instead of answering without spool rotation or background."""
    server = _in_process(tmp_path)
    rotator = server.services[1]
    assert isinstance(rotator, SpoolRotator)
    server.services.append(_Broken())
    sent = _lifespan(server)
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "no room for the spool" in sent[0]["message"]
    assert rotator._thread is not None
    assert not rotator._thread.is_alive()  # what had started is stopped again
