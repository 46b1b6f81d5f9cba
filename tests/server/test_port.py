"""One port, one data directory: `serve` refuses a port already in use unless told to share it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pixeltrail.config import HTTP_SERVERS
from pixeltrail.tracking.tokens import new_message_id

from ..conftest import SECRET
from .conftest import ServerProcess, eventually

DESTINATION = "https://example.com/pricing"


def server_of(tmp_path: Path, name: str, port: int | None, *args: str, **env: str) -> ServerProcess:
    """A server of its own data directory and database, on `port` if given."""
    home = tmp_path / name
    home.mkdir()
    server = ServerProcess(
        home / "data", f"sqlite:///{home / 'pixeltrail.db'}", ["--no-background", *args], **env
    )
    if port is not None:
        server.port = port
        server.base_url = server.env["PIXELTRAIL_BASE_URL"] = f"http://127.0.0.1:{port}"
    return server


@pytest.mark.parametrize("http_server", HTTP_SERVERS)
def test_a_second_server_on_a_port_in_use_is_refused_unless_it_shares(
    tmp_path: Path, http_server: str
) -> None:
    # The first lets others share its port, as granian always does and uvicorn when asked.
    first = server_of(tmp_path, "first", None, "--reuse-port", PIXELTRAIL_HTTP_SERVER=http_server)
    port = first.port
    second = server_of(tmp_path, "second", port, PIXELTRAIL_HTTP_SERVER=http_server)
    # Another secret: the first's links are bad links there (404), so who answered shows.
    sharing = server_of(
        tmp_path,
        "sharing",
        port,
        "--reuse-port",
        PIXELTRAIL_HTTP_SERVER=http_server,
        PIXELTRAIL_SECRET_KEY=SECRET + "-other",
    )
    click = first.links.click_url(new_message_id(), 1, DESTINATION)

    def answers() -> set[int]:
        return {httpx.get(click, timeout=5).status_code for _ in range(20)}  # new connections

    try:
        first.start()
        refused = subprocess.run(
            [sys.executable, "-m", "pixeltrail", "serve", "--port", str(port), "--no-background"],
            check=False,
            env=second.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 1
        assert f"port {port} on 127.0.0.1 is already in use" in refused.stderr
        assert "--reuse-port shares it" in refused.stderr
        assert answers() == {302}  # all to the first
        # Asked to share, it starts, and the kernel hands it some of the connections.
        sharing.start()
        eventually(lambda: answers() == {302, 404})
    finally:
        sharing.stop()
        first.stop()
    assert "Traceback" not in first.log() + sharing.log()


@pytest.mark.parametrize("http_server", HTTP_SERVERS)
def test_sharing_a_port_whose_server_does_not_share_is_refused_in_one_line(
    tmp_path: Path, http_server: str
) -> None:
    # uvicorn without --reuse-port holds its port alone.
    first = server_of(tmp_path, "first", None, PIXELTRAIL_HTTP_SERVER="uvicorn")
    second = server_of(tmp_path, "second", first.port, PIXELTRAIL_HTTP_SERVER=http_server)
    try:
        first.start()
        refused = subprocess.run(
            [
                sys.executable,
                "-m",
                "pixeltrail",
                "serve",
                "--no-background",
                "--reuse-port",
                "--port",
                str(first.port),
            ],
            check=False,
            env=second.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 1
        assert f"port {first.port} on 127.0.0.1 is already in use" in refused.stderr
        assert "Traceback" not in refused.stderr, refused.stderr
    finally:
        first.stop()


@pytest.mark.parametrize("http_server", HTTP_SERVERS)
def test_a_host_name_is_listened_on(tmp_path: Path, http_server: str) -> None:
    server = server_of(
        tmp_path, "named", None, "--host", "localhost", PIXELTRAIL_HTTP_SERVER=http_server
    )
    try:
        server.start()
        click = server.links.click_url(new_message_id(), 1, DESTINATION)
        assert httpx.get(click, timeout=5).status_code == 302
    finally:
        server.stop()
    assert "Traceback" not in server.log()
