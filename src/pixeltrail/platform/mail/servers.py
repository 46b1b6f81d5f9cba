"""Where mail servers may be: public hosts only, unless the instance allows local ones.

A mailbox names its mail server (SMTP today, any other mail protocol the same way) and the
instance connects to it, so a tenant could otherwise relay through the host's own MTA or probe
the internal network. The rule is address_policy's, as for webhooks: loopback, private,
unique-local and `localhost` hosts are refused, link-local (metadata services), multicast and
reserved ones always. It is checked twice:

- when a mailbox is saved (`check_mail_server`): the host as written and, for a name, every
  address it resolves to now (a name that does not resolve yet is accepted);
- at every connection (`mail_server_addresses`): the name is resolved again, every address
  must be allowed, and the connection goes to one of those checked addresses.

PIXELTRAIL_MAIL_ALLOW_LOCAL=1 (`Settings.mail_allow_local`) allows loopback and private
addresses for every mail server the instance talks to: a relay on the same host or network.
"""

from __future__ import annotations

import threading

from pixeltrail.platform.address_policy import (
    Resolver,
    UnsafeAddress,
    address_refusal,
    is_loopback_name,
    parse_ip,
    resolve,
)
from pixeltrail.platform.errors import Invalid

ALLOW_LOCAL = "PIXELTRAIL_MAIL_ALLOW_LOCAL"
# A save waits at most this long for DNS (it may hold the database's write lock meanwhile);
# a name not resolved by then is accepted and checked at every connection.
SAVE_LOOKUP_SECONDS = 3.0
_ALLOWED_LOCALLY = f"only {ALLOW_LOCAL}=1 allows mail servers on this host or its network"


def mail_server_addresses(
    host: str, port: int, allow_local: bool, resolver: Resolver = resolve
) -> list[str]:
    """The addresses to connect to for the mail server `host`, every one of them allowed.

    Raises UnsafeAddress saying why when any is refused (its message names the host and the
    reason: "localhost resolves to 127.0.0.1, which is a loopback address ..."), OSError when
    `host` does not resolve.
    """
    literal = parse_ip(host)
    if literal is None and is_loopback_name(host) and not allow_local:
        raise UnsafeAddress(f"{host} is this server itself; {_ALLOWED_LOCALLY}")
    addresses = [str(literal)] if literal is not None else resolver(host, port)
    if not addresses:
        raise OSError(f"{host} has no address")
    for text in addresses:
        address = parse_ip(text)
        if address is None:
            reason = "is not an IP address"
        else:
            refusal = address_refusal(address, allow_local)
            if refusal is None:
                continue
            allowed_locally = address_refusal(address, True) is None
            reason = f"{refusal}; {_ALLOWED_LOCALLY}" if allowed_locally else refusal
        shown = host if literal is not None else f"{host} resolves to {text}, which"
        raise UnsafeAddress(f"{shown} {reason}")
    return addresses


def check_mail_server(
    host: str,
    port: int,
    allow_local: bool,
    field: str,
    resolver: Resolver = resolve,
    lookup_seconds: float = SAVE_LOOKUP_SECONDS,
) -> None:
    """Invalid naming `field` when the instance may not connect to the mail server `host`."""
    try:
        mail_server_addresses(host, port, allow_local, _bounded(resolver, lookup_seconds))
    except UnsafeAddress as exc:
        raise Invalid(f"{field}: the mail server {exc}", field) from None
    except OSError:
        return  # not resolvable now: checked again at every connection


def _bounded(resolver: Resolver, seconds: float) -> Resolver:
    """`resolver`, giving up (TimeoutError) after `seconds`; the look-up ends on its own."""

    def lookup(host: str, port: int) -> list[str]:
        answer: list[list[str] | Exception] = []

        def run() -> None:
            try:
                answer.append(resolver(host, port))
            except Exception as exc:
                answer.append(exc)

        thread = threading.Thread(target=run, name="pixeltrail-mail-lookup", daemon=True)
        thread.start()
        thread.join(seconds)
        if not answer:
            raise TimeoutError(f"{host} did not resolve within {seconds:g} s")
        if isinstance(answer[0], Exception):
            raise answer[0]
        return answer[0]

    return lookup
