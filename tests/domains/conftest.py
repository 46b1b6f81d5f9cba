"""A real DNS server on loopback whose records a test changes, and the API pointed at it.

def test_something(dns: FakeDns, api: Api) -> None:
    dns.cname("track.acme.test", CNAME_TARGET)     # what a customer creates
    dns.a("bare.acme.test", "203.0.113.7")
    dns.servfail.add("broken.acme.test")
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from dnslib import QTYPE, RCODE, RR  # type: ignore[import-untyped]
from dnslib.server import DNSLogger, DNSServer  # type: ignore[import-untyped]

from pixeltrail.config import Settings
from pixeltrail.web.api.app import mounted_api

from ..api.conftest import Api, make_settings, serving
from ..dbs import DATABASES, Database, fresh_database

CNAME_TARGET = "t.pixeltrail.test"
INSTANCE_URL = "https://app.pixeltrail.test"


@dataclass
class FakeDns:
    """Answers like a recursive resolver would, from `records`: name -> [(type, value)]."""

    records: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    port: int = 0

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cname(self, name: str, target: str) -> None:
        self.records[name] = [("CNAME", target)]

    def a(self, name: str, *addresses: str) -> None:
        self.records[name] = [("AAAA" if ":" in a else "A", a) for a in addresses]

    def resolve(self, request: Any, _handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        if name in self.servfail:
            reply.header.rcode = RCODE.SERVFAIL
        elif name not in self.records:
            reply.header.rcode = RCODE.NXDOMAIN
        else:
            for kind, value in self.records[name]:
                if kind == qtype:
                    rr = RR.fromZone(f"{name}. 60 IN {kind} {value}")
                    reply.add_answer(*rr)
        return reply


@pytest.fixture
def dns() -> Iterator[FakeDns]:
    zone = FakeDns()
    zone.records[CNAME_TARGET] = [("A", "192.0.2.10")]
    quiet = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
    server = DNSServer(zone, port=0, address="127.0.0.1", logger=quiet)
    zone.port = server.server.server_address[1]
    server.start_thread()
    try:
        yield zone
    finally:
        server.stop()
        server.server.server_close()


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
