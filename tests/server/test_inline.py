"""Tracking requests answered inline by granian's scheduler, the rest through the event loop.

Each test runs a real embedded granian server in a child process: the scheduler is granian's
own machinery, replaced for the life of the `install` block.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import httpx
import pytest

from .conftest import eventually, free_port

_SERVER = textwrap.dedent(
    """
    import asyncio, sys, threading
    import uvloop
    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server
    from pixeltrail.web import inline

    LOOP_THREAD = threading.get_ident()

    def where():
        return "loop" if threading.get_ident() == LOOP_THREAD else "granian"

    async def app(scope, proto):
        proto.response_bytes(200, [("x-answered", "scheduled"), ("x-thread", where())], b"")

    def answer(scope, proto):
        if scope.path == "/boom":
            raise RuntimeError("the handler failed")
        if not scope.path.startswith("/o/"):
            return False
        proto.response_bytes(200, [("x-answered", "inline"), ("x-thread", where())], b"gif")
        return True

    async def main(port):
        server = Server(app, address="127.0.0.1", port=port, interface=Interfaces.RSGI,
                        http=HTTPModes.http1, websockets=False, log_access=False)
        with inline.install(answer) as installed:
            print("installed" if installed else "not installed", flush=True)
            await server.serve()

    uvloop.run(main(int(sys.argv[1])))
    """
)


@pytest.fixture
def server() -> Iterator[tuple[str, str]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline().strip()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        eventually(up)
        yield first, base
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_tracking_requests_are_answered_where_granian_hands_them_over(
    server: tuple[str, str],
) -> None:
    installed, base = server
    assert installed == "installed"  # the pinned granian has the internals it plugs into
    pixel = httpx.get(f"{base}/o/token")
    assert (pixel.status_code, pixel.content) == (200, b"gif")
    assert pixel.headers["x-answered"] == "inline"
    assert pixel.headers["x-thread"] == "granian"  # not the event loop's thread
    other = httpx.get(f"{base}/api/v1/campaigns")
    assert other.headers["x-answered"] == "scheduled"
    assert other.headers["x-thread"] == "loop"
    # Many in a row, on one connection and several: every one answered.
    with httpx.Client(base_url=base) as client:
        assert {client.get(f"/o/{n}").headers["x-answered"] for n in range(200)} == {"inline"}


def test_a_failing_inline_answer_is_a_500_and_the_server_goes_on(
    server: tuple[str, str],
) -> None:
    _, base = server
    assert httpx.get(f"{base}/boom").status_code == 500
    assert httpx.get(f"{base}/o/after").headers["x-answered"] == "inline"


def test_without_the_expected_internals_nothing_is_replaced(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from granian.server import embed

    from pixeltrail.web import inline

    original = embed._new_cbscheduler  # type: ignore[attr-defined]
    monkeypatch.delattr("granian._futures._cbsched_aioschedule")
    with inline.install(lambda scope, proto: True) as installed:
        assert not installed
        assert embed._new_cbscheduler is original  # type: ignore[attr-defined]
    assert "go through the event loop" in caplog.text


def test_the_server_is_given_back_its_scheduler_afterwards() -> None:
    from granian.server import embed

    from pixeltrail.web import inline

    original = embed._new_cbscheduler  # type: ignore[attr-defined]
    with inline.install(lambda scope, proto: True) as installed:
        assert installed
        assert embed._new_cbscheduler is not original  # type: ignore[attr-defined]
    assert embed._new_cbscheduler is original  # type: ignore[attr-defined]
