"""Human-or-machine verdicts for the hits of one message: known sources (data) and timing rules."""

from __future__ import annotations

import bisect
import dataclasses
import ipaddress
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from pixeltrail.tracking.hits import Classification, Hit, Verdict

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

DATA_FILE = "machine_rules.toml"
# When several known sources match one hit, the strongest decides (first in the file among equals).
_STRENGTH = (
    Classification.SCANNER,
    Classification.BOT,
    Classification.APPLE_MPP,
    Classification.PROXY_OPEN,
    Classification.HUMAN,
)
_SECTIONS = frozenset({"thresholds", "apple_relay", "user_agent", "network"})
# [thresholds] key: (Rules field, multiplier, largest allowed value)
_THRESHOLDS: dict[str, tuple[str, int, int | None]] = {
    "click_after_send_seconds": ("click_after_send_ms", 1000, None),
    "honeypot_window_seconds": ("honeypot_window_ms", 1000, None),
    "all_links_burst_seconds": ("burst_ms", 1000, None),
    "burst_min_links": ("burst_min_links", 1, None),
    "forward_ipv4_prefix": ("forward_ipv4_prefix", 1, 32),
    "forward_ipv6_prefix": ("forward_ipv6_prefix", 1, 128),
}
NO_SIGNAL = "no machine signal"
HEAD_REASON = "HEAD request (link checkers and scanners use HEAD)"
HONEYPOT_REASON = "honeypot link clicked (invisible to people)"
FORWARD_REASON = (
    "likely forward: a second client (other network and user agent) after the first human open"
)


@dataclass(frozen=True)
class Signal:
    """A known source of traffic (user agent or networks): its verdicts, and where that is from."""

    name: str
    on_open: Verdict
    on_click: Verdict
    source: str
    pattern: re.Pattern[str] | None = None
    networks: tuple[Network, ...] = ()
    # Per IP version: sorted, merged (first, last) address integers of `networks`.
    _ranges: dict[int, tuple[list[int], list[int]]] = dataclasses.field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        v4 = [n for n in self.networks if isinstance(n, ipaddress.IPv4Network)]
        v6 = [n for n in self.networks if isinstance(n, ipaddress.IPv6Network)]
        self._ranges[4] = _spans(ipaddress.collapse_addresses(v4))
        self._ranges[6] = _spans(ipaddress.collapse_addresses(v6))

    def matches(self, hit: Hit, address: Address | None) -> bool:
        if self.pattern is not None:
            return self.pattern.search(hit.user_agent) is not None
        if address is None:
            return False
        # O(log n) for the tens of thousands of Apple relay ranges, not one test per network.
        firsts, lasts = self._ranges[address.version]
        value = int(address)
        i = bisect.bisect_right(firsts, value) - 1
        return i >= 0 and value <= lasts[i]

    def verdict(self, hit: Hit) -> Verdict:
        chosen = self.on_open if hit.kind == "open" else self.on_click
        return Verdict(chosen.classification, chosen.reason.replace("{ip}", hit.ip))


def _spans(networks: Iterable[Network]) -> tuple[list[int], list[int]]:
    """First and last address (as integers) of sorted, non-overlapping networks."""
    spans = [(int(n.network_address), int(n.broadcast_address)) for n in networks]
    return [first for first, _ in spans], [last for _, last in spans]


@dataclass(frozen=True)
class Rules:
    """Compiled machine_rules.toml (plus the caller's Apple egress ranges)."""

    signals: tuple[Signal, ...]
    click_after_send_ms: int
    honeypot_window_ms: int
    burst_ms: int
    burst_min_links: int
    forward_ipv4_prefix: int
    forward_ipv6_prefix: int
    # Known-source verdicts by (kind, ip, user agent): the flusher judges the hits around new
    # ones again at every flush, and the signals depend on nothing else.
    _known: dict[tuple[str, str, str], Verdict | None] = dataclasses.field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @classmethod
    def load(cls, apple_ranges: Iterable[str] = (), extra_toml: str | None = None) -> Rules:
        """Parse the packaged rules. `apple_ranges`: CIDRs, or lines of Apple's egress CSV (the
        first field is used). `extra_toml`: more entries in the same format, appended after the
        packaged ones; its [thresholds] and [apple_relay] keys override the packaged values."""
        text = resources.files("pixeltrail.tracking").joinpath(DATA_FILE).read_text("utf-8")
        data = tomllib.loads(text)
        if extra_toml is not None:
            data = _merge(data, tomllib.loads(extra_toml))
        signals = [
            _signal(entry, where, pattern=_agent_pattern(entry, where))
            for where, entry in _numbered("user_agent", data)
        ]
        signals += [
            _signal(entry, where, networks=_networks(entry.get("cidrs", []), where))
            for where, entry in _numbered("network", data)
        ]
        apple = _networks(apple_ranges, "apple_ranges")
        if apple:
            relay = {"name": "Apple relay", **data.get("apple_relay", {})}
            signals.append(_signal(relay, "apple_relay", networks=apple))
        limits = _limits(data.get("thresholds", {}))
        return cls(signals=tuple(signals), **limits)

    @property
    def reach_ms(self) -> int:
        """How far in time another hit can change a hit's verdict (honeypot window, bursts);
        the first human open of a message (for forwards) reaches any later open."""
        return max(self.honeypot_window_ms, self.burst_ms)

    @classmethod
    def default(cls) -> Rules:
        """The packaged rules without Apple ranges, parsed once."""
        return _default_rules()


@cache
def _default_rules() -> Rules:
    return Rules.load()


def classify_message(
    hits: Sequence[Hit],
    rules: Rules,
    sent_at_ms: int | None = None,
    link_count: int | None = None,
    reader: Hit | None = None,
    judged: tuple[int, int] | None = None,
    destination_count: int | None = None,
) -> dict[str, Verdict]:
    """A verdict for every hit id of ONE message, given all its hits in any order.

    `sent_at_ms`: when the message was sent (enables the click-right-after-sending rule).
    `destination_count`: how many different destinations the message's tracked links have, not
    counting the honeypot. The burst rule then asks for clicks on every one of them (or on
    `burst_min_links` when there are more); the HTML and text copies of a link, or two links to
    the same page, are one destination however many of them are clicked.
    `link_count`: for messages sent before destination counts were kept, how many tracked links
    they have, each copy counted; without `destination_count`, the burst rule then counts
    clicked link positions against it, as it did when they were sent.
    More hits later can change earlier verdicts (a honeypot click condemns the clicks around it):
    recompute with all hits and store what changed.

    Or with part of them (the flusher, `record_hits`): only hits at times within `judged`
    (first, last ms) get a verdict, the others are there as their neighbours (a hit's verdict
    depends on no hit further than `Rules.reach_ms` from it); `reader` is the message's first
    human open when it is older than all of them.
    """
    ordered = sorted(hits, key=lambda h: (h.at_ms, h.id))
    if not ordered:
        return {}
    honeypot_ms = [h.at_ms for h in ordered if h.honeypot]
    bursts = _burst_reasons(ordered, rules, link_count, destination_count)
    first, last = judged if judged is not None else (ordered[0].at_ms, ordered[-1].at_ms)
    verdicts: dict[str, Verdict] = {}
    client: tuple[str, str] | None = None
    if reader is not None:
        client = (_network_key(reader.ip, rules), reader.user_agent)
    for hit in ordered:
        if not first <= hit.at_ms <= last:
            continue
        verdict = _verdict(hit, rules, honeypot_ms, sent_at_ms, bursts)
        if verdict.classification == Classification.HUMAN and hit.kind == "open":
            # The first human open is the reader's client; another network AND another user
            # agent later is most likely someone the message was forwarded to: still a person.
            this = (_network_key(hit.ip, rules), hit.user_agent)
            if client is None:
                client = this
            elif this[0] != client[0] and this[1] != client[1]:
                verdict = Verdict(Classification.HUMAN, FORWARD_REASON)
        verdicts[hit.id] = verdict
    return verdicts


def _verdict(
    hit: Hit, rules: Rules, honeypot_ms: list[int], sent_at_ms: int | None, bursts: dict[str, str]
) -> Verdict:
    if hit.method.strip().upper() == "HEAD":
        return Verdict(Classification.SCANNER, HEAD_REASON)
    if hit.honeypot:
        return Verdict(Classification.SCANNER, HONEYPOT_REASON)
    # Who it is comes before how it behaves: "Microsoft EOP range" tells the user more than
    # "within 10 s of a honeypot click", and an MPP prefetch stays MPP.
    known = _known_source(hit, rules)
    if known is not None and known.classification != Classification.HUMAN:
        return known
    behaviour = _behaviour(hit, rules, honeypot_ms, sent_at_ms, bursts)
    if behaviour is not None:
        return Verdict(Classification.SCANNER, behaviour)
    return known or Verdict(Classification.HUMAN, NO_SIGNAL)


KNOWN_CACHE_SIZE = 100_000


def _known_source(hit: Hit, rules: Rules) -> Verdict | None:
    key = (hit.kind, hit.ip, hit.user_agent)
    try:
        return rules._known[key]
    except KeyError:
        pass
    if len(rules._known) >= KNOWN_CACHE_SIZE:
        rules._known.clear()
    verdict = rules._known[key] = _match_source(hit, rules)
    return verdict


def _match_source(hit: Hit, rules: Rules) -> Verdict | None:
    address = _address(hit.ip)
    found = [s.verdict(hit) for s in rules.signals if s.matches(hit, address)]
    if not found:
        return None
    return min(found, key=lambda v: _STRENGTH.index(v.classification))


def _behaviour(
    hit: Hit, rules: Rules, honeypot_ms: list[int], sent_at_ms: int | None, bursts: dict[str, str]
) -> str | None:
    # Opens count too: a scanner that clicks every link renders the message (and its pixel) in
    # the same pass, and scans run at delivery, before a person sees the message.
    if honeypot_ms:
        gap = min((hit.at_ms - t for t in honeypot_ms), key=abs)
        if abs(gap) <= rules.honeypot_window_ms:
            side = "after" if gap >= 0 else "before"
            return (
                f"within {_secs(rules.honeypot_window_ms)} s of a honeypot click"
                f" ({_secs(abs(gap))} s {side} it)"
            )
    if hit.kind != "click":
        return None
    if sent_at_ms is not None and hit.at_ms - sent_at_ms <= rules.click_after_send_ms:
        if hit.at_ms < sent_at_ms:
            return "clicked before the recorded send time"
        return f"clicked {_secs(hit.at_ms - sent_at_ms)} s after sending"
    return bursts.get(hit.id)


def _burst_reasons(
    ordered: list[Hit], rules: Rules, link_count: int | None, destination_count: int | None
) -> dict[str, str]:
    """Clicks inside a window of `burst_ms` that covers every link (or `burst_min_links`)."""
    by_position = destination_count is None and link_count is not None
    total = link_count if by_position else destination_count
    needed = rules.burst_min_links if total is None else min(total, rules.burst_min_links)
    if needed < 2:
        return {}
    clicks = [h for h in ordered if h.kind == "click" and not h.honeypot and h.link is not None]
    keys = [_link_key(h, by_position) for h in clicks]
    best: dict[str, tuple[int, str]] = {}
    seen: Counter[str | int | None] = Counter()
    left = 0
    for right, hit in enumerate(clicks):
        seen[keys[right]] += 1
        while hit.at_ms - clicks[left].at_ms > rules.burst_ms:
            seen[keys[left]] -= 1
            if seen[keys[left]] == 0:
                del seen[keys[left]]
            left += 1
        distinct = len(seen)
        if distinct < needed:
            continue
        window = clicks[left : right + 1]
        span = window[-1].at_ms - window[0].at_ms
        when = "at the same moment" if span == 0 else f"within {_secs(span)} s"
        if total is not None and distinct >= total:
            reason = f"all {distinct} links clicked {when}"
        else:
            reason = f"{distinct} different links clicked {when}"
        for member in window:
            if member.id not in best or best[member.id][0] <= distinct:
                best[member.id] = (distinct, reason)
    return {hit_id: reason for hit_id, (_, reason) in best.items()}


def _link_key(click: Hit, by_position: bool) -> str | int | None:
    """What makes two clicks different links: their destination (a link's HTML and text copies
    are one), or their position for messages whose count was of positions."""
    if by_position or click.destination is None:
        return click.link
    return click.destination


def _address(ip: str) -> Address | None:
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _network_key(ip: str, rules: Rules) -> str:
    """The reader's network: /24 of an IPv4 address, /48 of an IPv6 one (by default)."""
    return _network_of(ip, rules.forward_ipv4_prefix, rules.forward_ipv6_prefix)


@lru_cache(maxsize=65536)
def _network_of(ip: str, v4_prefix: int, v6_prefix: int) -> str:
    address = _address(ip)
    if address is None:
        return ip
    prefix = v4_prefix if address.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _secs(ms: int) -> str:
    return f"{ms / 1000:.1f}".removesuffix(".0")


# --- parsing the data file ------------------------------------------------------------------


def _numbered(array: str, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{array}[{i}]", entry) for i, entry in enumerate(data.get(array, []))]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    unknown = set(extra) - _SECTIONS
    if unknown:
        raise ValueError(f"extra_toml: unknown section(s) {sorted(unknown)}")
    merged = dict(base)
    for table in ("thresholds", "apple_relay"):
        merged[table] = {**base.get(table, {}), **extra.get(table, {})}
    for array in ("user_agent", "network"):
        merged[array] = [*base.get(array, []), *extra.get(array, [])]
    return merged


def _limits(table: dict[str, Any]) -> dict[str, int]:
    """[thresholds] as the Rules fields they fill (seconds become milliseconds)."""
    if set(table) != set(_THRESHOLDS):
        raise ValueError(f"thresholds: expected exactly {sorted(_THRESHOLDS)}, got {sorted(table)}")
    limits: dict[str, int] = {}
    for key, (field, scale, maximum) in _THRESHOLDS.items():
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"thresholds.{key}: {value!r} is not a number >= 0")
        if maximum is not None and (value > maximum or int(value) != value):
            raise ValueError(f"thresholds.{key}: {value!r} is not a prefix length 0..{maximum}")
        limits[field] = round(value * scale)
    return limits


def _classification(value: Any, where: str) -> str:
    if value not in _STRENGTH:
        raise ValueError(f"{where}: classification {value!r} is not one of {_STRENGTH}")
    return str(value)


def _signal(
    entry: dict[str, Any],
    where: str,
    pattern: re.Pattern[str] | None = None,
    networks: tuple[Network, ...] = (),
) -> Signal:
    for key in ("open", "reason", "source"):
        if not entry.get(key):
            raise ValueError(f"{where}: {key!r} is required")
    if pattern is None and not networks:
        raise ValueError(f"{where}: 'cidrs' is required")
    on_open = Verdict(_classification(entry["open"], where), str(entry["reason"]))
    on_click = Verdict(
        _classification(entry.get("click", entry["open"]), where),
        str(entry.get("click_reason", entry["reason"])),
    )
    name, source = str(entry.get("name", where)), str(entry["source"])
    return Signal(name, on_open, on_click, source, pattern, networks)


def _agent_pattern(entry: dict[str, Any], where: str) -> re.Pattern[str]:
    given = [key for key in ("exact", "contains", "regex") if key in entry]
    if len(given) != 1:
        raise ValueError(f"{where}: needs exactly one of 'exact', 'contains', 'regex'")
    value = str(entry[given[0]])
    if given[0] == "exact":
        return re.compile(rf"\A{re.escape(value)}\Z")
    if given[0] == "contains":
        return re.compile(re.escape(value), re.IGNORECASE)
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"{where}: bad regex {value!r}: {exc}") from None


def _networks(values: Iterable[str], where: str) -> tuple[Network, ...]:
    networks: list[Network] = []
    for raw in values:
        text = str(raw).split(",", 1)[0].strip()
        if not text or text.startswith("#"):
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{where}: {raw!r} is not an IP network") from None
    return tuple(networks)
