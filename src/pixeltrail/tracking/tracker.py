"""One message being instrumented: its options, its id, and the links tracked so far."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pixeltrail.tracking.links import LinkBuilder
from pixeltrail.tracking.tokens import InvalidToken
from pixeltrail.tracking.urls import http_destination_error

# Template merge tags: such an href is finished by a template engine later, so the
# URL a reader gets is not known yet.
MERGE_TAG_MARKERS = ("{{", "{%", "*|", "<%", "[%", "%%", "${")
# <a data-track="off" href="..."> keeps its link as it is.
OPT_OUT_ATTRIBUTE = "data-track"
OPT_OUT_VALUES = frozenset({"off", "false", "no", "0"})
_MERGE_TAG = re.compile("|".join(re.escape(m) for m in MERGE_TAG_MARKERS))


@dataclass(frozen=True)
class TrackingOptions:
    """What to track in one message."""

    opens: bool = True
    clicks: bool = True
    text_links: bool = True
    honeypot: bool = False


@dataclass(frozen=True)
class TrackedLink:
    position: int
    destination: str
    url: str


@dataclass
class MessageTracker:
    """Hands out tracking URLs for one message, numbering its links 1, 2, 3... in order."""

    links: LinkBuilder
    message_id: str
    options: TrackingOptions = field(default_factory=TrackingOptions)
    tracked: list[TrackedLink] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def destination_for(self, url: str) -> str | None:
        """The destination to track for a browser-ready URL, or None to leave it alone."""
        return link_destination(url, self.links)

    def click_url(self, destination: str) -> str:
        position = len(self.tracked) + 1
        url = self.links.click_url(self.message_id, position, destination)
        self.tracked.append(TrackedLink(position, destination, url))
        return url

    def open_url(self) -> str:
        return self.links.open_url(self.message_id)

    def honeypot_url(self) -> str:
        return self.links.honeypot_url(self.message_id)

    def is_honeypot_url(self, url: str) -> bool:
        if not url.startswith(self.links.click_prefix):
            return False
        try:
            claims = self.links.signer.verify(url[len(self.links.click_prefix) :])
        except InvalidToken:
            return False
        return claims.honeypot


def link_destination(url: str, links: LinkBuilder) -> str | None:
    """The destination to track for a browser-ready URL, or None to leave it alone."""
    if _MERGE_TAG.search(url) or links.is_tracking_url(url):
        return None
    if http_destination_error(url):
        return None
    return url


def has_merge_tag(text: str) -> bool:
    return _MERGE_TAG.search(text) is not None
