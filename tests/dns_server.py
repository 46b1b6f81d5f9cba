"""A real DNS server on loopback whose records a test changes (tests of domains and pages).

with fake_dns() as dns:
    dns.cname("track.acme.test", "t.pixeltrail.test")     # what a customer creates
    dns.a("bare.acme.test", "203.0.113.7")
    dns.servfail.add("broken.acme.test")
    settings = ... PIXELTRAIL_DNS_SERVERS=dns.server
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dnslib import QTYPE, RCODE, RR  # type: ignore[import-untyped]
from dnslib.server import DNSLogger, DNSServer  # type: ignore[import-untyped]


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


@contextmanager
def fake_dns(*records: tuple[str, str, str]) -> Iterator[FakeDns]:
    """A running FakeDns holding `records` ((name, type, value) each) to begin with."""
    zone = FakeDns()
    for name, kind, value in records:
        zone.records.setdefault(name, []).append((kind, value))
    quiet = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
    server = DNSServer(zone, port=0, address="127.0.0.1", logger=quiet)
    zone.port = server.server.server_address[1]
    server.start_thread()
    try:
        yield zone
    finally:
        server.stop()
        server.server.server_close()
