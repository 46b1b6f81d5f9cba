"""DNS look-ups for tracking domains: where a hostname's CNAME chain leads, asked of real resolvers.

The only module of the platform that does network I/O. It reports what DNS answered; what that
means for a tracking domain (and the words a user reads) is decided in `domains`.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.nameserver
import dns.resolver

from pixeltrail.config import ConfigError, Settings
from pixeltrail.platform.domains.hostnames import is_local_name, is_loopback_host

LIFETIME = 5.0
MAX_HOPS = 8
_TRY_TIMEOUT = 2.0


@dataclass(frozen=True)
class DnsAnswer:
    """What DNS said about `hostname` (names lowercase, without the trailing dot).

    - chain: the CNAME targets in order, empty when the name has no CNAME.
    - missing: the last name asked about (the hostname, or the end of its chain) does not
      exist (NXDOMAIN).
    - addresses: the hostname's own A/AAAA records, looked up only when it has no CNAME.
    - failure: why DNS gave no usable answer (time-out, server failure, loop), in words;
      when set, the other fields say only what was learnt before it.
    """

    hostname: str
    chain: tuple[str, ...] = ()
    missing: bool = False
    addresses: tuple[str, ...] = ()
    failure: str | None = None


def parse_servers(values: Sequence[str]) -> list[dns.nameserver.Nameserver]:
    """PIXELTRAIL_DNS_SERVERS entries: `ip`, `ip:port`, `ipv6` or `[ipv6]:port`."""
    servers: list[dns.nameserver.Nameserver] = []
    for value in values:
        host, port = value, "53"
        if value.startswith("["):
            host, _, rest = value[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif value.count(":") == 1:
            host, _, port = value.partition(":")
        try:
            address = str(ipaddress.ip_address(host))
            number = int(port)
        except ValueError:
            number = -1
        if number < 1 or number > 65535:
            raise ConfigError(
                f"PIXELTRAIL_DNS_SERVERS: {value!r} is not an IP address with an optional port "
                "(like 9.9.9.9, 127.0.0.1:5353 or [2620:fe::fe]:53)"
            )
        servers.append(dns.nameserver.Do53Nameserver(address, number))
    return servers


class CnameResolver:
    """Follows CNAME chains through the configured resolvers, within `lifetime` seconds in all.

    No cache: every check asks again, so a fixed record is seen as soon as resolvers see it.

    Names under `.localhost` are answered without asking anyone, as RFC 6761 has resolvers do:
    they are this machine. With `local_trial` (the instance's base URL is on this machine too)
    such a name reaches the instance exactly as a CNAME to it would: the chain ends at
    `stop_at`. Otherwise it has loopback addresses only, which never reach the instance.
    """

    def __init__(
        self, servers: Sequence[str] = (), lifetime: float = LIFETIME, local_trial: bool = False
    ) -> None:
        self.lifetime = lifetime
        self.local_trial = local_trial
        self.resolver: dns.resolver.Resolver | None = None
        self.unusable: str | None = None
        if servers:
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = parse_servers(servers)
            self.described = ", ".join(servers)
        else:
            try:
                self.resolver = dns.resolver.Resolver()
            except (OSError, dns.exception.DNSException) as exc:
                self.unusable = (
                    f"this machine has no DNS resolvers configured ({exc}); "
                    "set PIXELTRAIL_DNS_SERVERS"
                )
                self.described = "the system's resolvers"
            else:
                listed = ", ".join(str(s) for s in self.resolver.nameservers)
                self.described = f"the system's resolvers ({listed})"
        if self.resolver is not None:
            self.resolver.timeout = min(_TRY_TIMEOUT, lifetime)
            self.resolver.lifetime = lifetime
            self.resolver.cache = None

    @classmethod
    def from_settings(cls, settings: Settings, lifetime: float = LIFETIME) -> CnameResolver:
        return cls(settings.dns_servers, lifetime, is_loopback_host(settings.instance_host))

    def lookup(self, hostname: str, stop_at: str) -> DnsAnswer:
        """Where `hostname`'s CNAME chain leads, up to `stop_at` (not followed any further)."""
        if is_local_name(hostname):
            if self.local_trial:
                return DnsAnswer(hostname, (stop_at,))
            return DnsAnswer(hostname, addresses=("127.0.0.1", "::1"))
        if self.resolver is None:
            return DnsAnswer(hostname, failure=self.unusable)
        deadline = time.monotonic() + self.lifetime
        chain: list[str] = []
        name = hostname
        try:
            while name != stop_at:
                target = self._cname(name, deadline)
                if target is None:
                    break
                if target == hostname or target in chain:
                    return DnsAnswer(
                        hostname, tuple(chain), failure=f"the CNAME chain loops at {target}."
                    )
                chain.append(target)
                if len(chain) > MAX_HOPS:
                    return DnsAnswer(
                        hostname,
                        tuple(chain),
                        failure=f"the CNAME chain is longer than {MAX_HOPS} names",
                    )
                name = target
            addresses = () if chain else self._addresses(hostname, deadline)
        except dns.resolver.NXDOMAIN:
            return DnsAnswer(hostname, tuple(chain), missing=True)
        except dns.exception.Timeout:
            return DnsAnswer(
                hostname,
                tuple(chain),
                failure=f"no DNS answer within {self.lifetime:g} s from {self.described}",
            )
        except dns.resolver.NoNameservers as exc:
            return DnsAnswer(
                hostname, tuple(chain), failure=f"the DNS servers could not answer: {exc}"
            )
        except dns.exception.DNSException as exc:
            return DnsAnswer(hostname, tuple(chain), failure=f"the DNS look-up failed: {exc}")
        return DnsAnswer(hostname, tuple(chain), addresses=addresses)

    def _ask(self, name: str, rdtype: str, deadline: float) -> list[str]:
        assert self.resolver is not None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise dns.exception.Timeout
        answer = self.resolver.resolve(
            name, rdtype, lifetime=remaining, raise_on_no_answer=False, search=False
        )
        if answer.rrset is None:
            return []
        return [rdata.to_text() for rdata in answer.rrset]

    def _cname(self, name: str, deadline: float) -> str | None:
        targets = self._ask(name, "CNAME", deadline)
        return targets[0].rstrip(".").lower() if targets else None

    def _addresses(self, name: str, deadline: float) -> tuple[str, ...]:
        return tuple(self._ask(name, "A", deadline) + self._ask(name, "AAAA", deadline))
