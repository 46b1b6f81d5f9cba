"""Hostnames as users type them, checked and normalised to the ASCII form DNS and TLS use."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

import dns.exception
import dns.name

from pixeltrail.platform.errors import Invalid

MAX_INPUT = 1000
MAX_HOSTNAME = 253
MAX_LABEL = 63
# Letters, digits and inner hyphens: what a name needs for DNS, browsers and a certificate.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
# Dots that IDNA (UTS #46) reads as label separators: ideographic and full-width ones.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def normalize_hostname(value: object, field: str = "hostname") -> str:
    """`value` as stored: lowercase ASCII (IDNA 2008), no trailing dot; Invalid saying why not.

    Refused: IP addresses, anything with a scheme, path, query, port or user, wildcards,
    single-label names, labels over 63 and names over 253 characters.
    """
    if not isinstance(value, str) or not value.strip():
        raise Invalid("a hostname is required, like track.example.com", field)
    text = value.strip()
    shown = text[:100]
    if len(text) > MAX_INPUT:
        raise Invalid(f"a hostname has at most {MAX_HOSTNAME} characters", field)

    def refuse(reason: str) -> Invalid:
        return Invalid(f"{shown!r} {reason}", field)

    if "://" in text:
        raise refuse("has a scheme: give the hostname alone, like track.example.com")
    if any(c in text for c in "/?#\\"):
        raise refuse("has a path: give the hostname alone, like track.example.com")
    if "@" in text:
        raise refuse("has a user name: give the hostname alone, like track.example.com")
    if "*" in text:
        raise refuse("is a wildcard: add each tracking hostname on its own")
    if _is_ip(text):
        raise refuse("is an IP address: a tracking domain is a hostname, like track.example.com")
    if ":" in text:
        if text.rpartition(":")[2].isdigit():
            raise refuse("has a port: give the hostname alone (links use the standard port)")
        raise refuse("has a scheme: give the hostname alone, like track.example.com")
    if any(c.isspace() for c in text):
        raise refuse("has spaces in it")
    name = text.translate(_DOTS)
    if name.endswith("."):
        name = name[:-1]
    labels = name.split(".")
    if "" in labels:
        raise refuse("has an empty label (two dots in a row, or a leading dot)")
    ascii_labels = [_to_ascii(label, refuse) for label in labels]
    for label in ascii_labels:
        if len(label) > MAX_LABEL:
            raise refuse(f"has a label longer than {MAX_LABEL} characters ({label[:20]}...)")
        if not _LABEL.fullmatch(label):
            raise refuse(
                f"has a label {label!r} with characters a hostname cannot have "
                "(letters, digits and hyphens, not at either end)"
            )
    if len(ascii_labels) < 2:
        raise refuse("is a single label: use a full hostname, like track.example.com")
    if ascii_labels[-1].isdigit():
        raise refuse("ends in a number: it looks like an IP address, not a hostname")
    hostname = ".".join(ascii_labels)
    if len(hostname) > MAX_HOSTNAME:
        raise Invalid(f"a hostname has at most {MAX_HOSTNAME} characters", field)
    return hostname


def is_local_name(hostname: str) -> bool:
    """Whether `hostname` is under `.localhost`: RFC 6761 reserves those names for the machine
    itself (resolvers answer them with loopback addresses, and Chromium and Firefox do so
    without asking DNS), so nobody can point one elsewhere with a CNAME."""
    return hostname.rstrip(".").lower().endswith(".localhost")


def is_loopback_host(host: str) -> bool:
    """Whether a base URL's host is this machine: localhost, a `.localhost` name or a loopback
    address. Such an instance is being tried out locally; nobody else can reach it."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or is_local_name(name):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_ip(text: str) -> bool:
    candidate = text[1:].partition("]")[0] if text.startswith("[") else text
    try:
        ipaddress.ip_address(candidate.partition("%")[0])
    except ValueError:
        # "1.2.3.4:80" is an address with a port: refused as an address, the clearer reason.
        host, _, port = text.rpartition(":")
        return bool(host) and port.isdigit() and _is_ip(host)
    return True


def _to_ascii(label: str, refuse: Callable[[str], Invalid]) -> str:
    """One label in ASCII: lowercased; a Unicode one through IDNA 2008 (UTS #46 mapping)."""
    if label.isascii():
        lowered = label.lower()
        if lowered.startswith("xn--"):
            try:
                dns.name.IDNA_2008_Strict.decode(lowered.encode())
            except dns.exception.DNSException:
                raise refuse(f"has a label {lowered!r} that is not valid IDNA") from None
        return lowered
    try:
        return dns.name.IDNA_2008_UTS_46.encode(label).decode("ascii")
    except dns.name.LabelTooLong:
        raise refuse(f"has a label longer than {MAX_LABEL} characters once encoded") from None
    except dns.exception.DNSException as exc:
        raise refuse(f"is not a valid international name: {exc}") from None
