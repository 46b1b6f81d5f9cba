"""A hit on the tracking server (one pixel load or one click) and its human/machine verdict."""

from __future__ import annotations

import ipaddress
import json
import os
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from json.encoder import encode_basestring
from typing import Any, Literal

HitKind = Literal["open", "click"]

# One encoder for every spool line: json.dumps with options builds a new encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class Classification(StrEnum):
    """A hit's verdict: a human, or which kind of machine. A proxied open is a real open made
    through a mail provider's image proxy: reports count it as an open, with its reason."""

    HUMAN = "human"
    APPLE_MPP = "apple_mpp"
    PROXY_OPEN = "proxy_open"
    SCANNER = "scanner"
    BOT = "bot"


COUNTED_AS_OPEN = frozenset({Classification.HUMAN, Classification.PROXY_OPEN})


def anonymize_ip(ip: str) -> str:
    """The address cut to its network, /24 for IPv4 and /48 for IPv6: what anonymising keeps."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


EVENT_ID_BYTES = 16
# Random bytes for the next event ids, read from the OS 256 ids at a time rather than one
# getrandom(2) per hit; emptied in a forked child, which must not reuse its parent's.
_ID_BATCH = 256
_event_ids: list[str] = []
os.register_at_fork(after_in_child=_event_ids.clear)


def new_event_id() -> str:
    """A random, unique event id (16 bytes, hex): replays are idempotent on it."""
    try:
        return _event_ids.pop()
    except IndexError:
        batch = os.urandom(EVENT_ID_BYTES * _ID_BATCH).hex()
        size = 2 * EVENT_ID_BYTES
        _event_ids.extend(batch[i : i + size] for i in range(size, len(batch), size))
        return batch[:size]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ms_to_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Hit:
    """One request to /o/ or /c/ with a valid token, as recorded before answering."""

    id: str
    kind: HitKind
    message_id: str
    link: int | None
    destination: str | None
    at_ms: int
    ip: str
    user_agent: str
    method: str
    honeypot: bool = False

    def to_json(self) -> str:
        """The spool line of this hit (without its newline); `spool_line` writes the same."""
        # Not dataclasses.asdict: it deep-copies every field and costs 4x the encoding.
        return _ENCODER.encode(
            {
                "id": self.id,
                "kind": self.kind,
                "message_id": self.message_id,
                "link": self.link,
                "destination": self.destination,
                "at_ms": self.at_ms,
                "ip": self.ip,
                "user_agent": self.user_agent,
                "method": self.method,
                "honeypot": self.honeypot,
            }
        )

    @classmethod
    def from_json(cls, line: str | bytes) -> Hit:
        data: dict[str, Any] = json.loads(line)
        return cls(**data)


def spool_line(
    id: str,
    kind: str,
    message_id: str,
    link: int | None,
    destination: str | None,
    at_ms: int,
    ip: str,
    user_agent: str,
    method: str,
    honeypot: bool,
) -> bytes:
    """`Hit(...).to_json()` and a newline, as UTF-8, without making the Hit: the tracking
    routes write one per request. Strings are escaped by the encoder's own function."""
    link_json = "null" if link is None else str(int(link))
    destination_json = "null" if destination is None else encode_basestring(destination)
    return (
        f'{{"id":{encode_basestring(id)},"kind":{encode_basestring(kind)},'
        f'"message_id":{encode_basestring(message_id)},"link":{link_json},'
        f'"destination":{destination_json},"at_ms":{int(at_ms)},"ip":{encode_basestring(ip)},'
        f'"user_agent":{encode_basestring(user_agent)},"method":{encode_basestring(method)},'
        f'"honeypot":{"true" if honeypot else "false"}}}\n'
    ).encode()


@dataclass(frozen=True)
class Verdict:
    classification: str
    reason: str


@dataclass(frozen=True)
class Event:
    """A recorded hit with its classification (kept forever with the raw hit; reports filter)."""

    hit: Hit
    classification: str
    reason: str

    def with_verdict(self, verdict: Verdict) -> Event:
        return replace(self, classification=verdict.classification, reason=verdict.reason)

    def as_record(self) -> dict[str, Any]:
        """The public JSON shape of an event (CLI and API)."""
        h = self.hit
        return {
            "id": h.id,
            "kind": h.kind,
            "message_id": h.message_id,
            "link": h.link,
            "destination": h.destination,
            "at": ms_to_iso(h.at_ms),
            "ip": h.ip,
            "user_agent": h.user_agent,
            "method": h.method,
            "classification": self.classification,
            "reason": self.reason,
        }
