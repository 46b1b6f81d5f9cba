"""A real DNS server on loopback whose records a test changes, and the API pointed at it.

def test_something(dns: FakeDns, api: Api) -> None:
    dns.cname("track.acme.test", CNAME_TARGET)     # what a customer creates
    dns.a("bare.acme.test", "203.0.113.7")
    dns.servfail.add("broken.acme.test")
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pixeltrail.config import Settings
from pixeltrail.web.api.app import mounted_api

from ..api.conftest import Api, make_settings, serving
from ..dbs import DATABASES, Database, fresh_database
from ..dns_server import FakeDns, fake_dns

__all__ = ["CNAME_TARGET", "INSTANCE_URL", "FakeDns", "domain_settings"]

CNAME_TARGET = "t.pixeltrail.test"
INSTANCE_URL = "https://app.pixeltrail.test"


@pytest.fixture
def dns() -> Iterator[FakeDns]:
    with fake_dns((CNAME_TARGET, "A", "192.0.2.10")) as zone:
        yield zone


@pytest.fixture
def silent_dns() -> Iterator[str]:
    """host:port of a UDP socket that never answers: every question times out."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def domain_settings(tmp_path: Path, database_url: str, dns_server: str, **env: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        PIXELTRAIL_BASE_URL=INSTANCE_URL,
        PIXELTRAIL_CNAME_TARGET=CNAME_TARGET,
        PIXELTRAIL_DNS_SERVERS=dns_server,
        **env,
    )


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path) as database:
        database.migrated()
        yield database


@pytest.fixture
def settings(tmp_path: Path, database: Database, dns: FakeDns) -> Settings:
    return domain_settings(tmp_path, database.url, dns.server)


@pytest.fixture
def api(database: Database, settings: Settings) -> Iterator[Api]:
    with (
        serving(mounted_api(database.engine, settings)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield Api(database.engine, settings, client)
