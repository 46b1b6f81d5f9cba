"""Tracking URLs: `<base>/o/<token>` for the pixel and `<base>/c/<token>` for a click."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pixeltrail.tracking.tokens import InvalidToken, LinkClaims, TokenSigner
from pixeltrail.tracking.urls import http_destination_error

# A base URL is written into href and src attributes as it is, quoted or not:
# it may hold nothing that HTML or a text part would read differently.
_SAFE_BASE = re.compile(r"[A-Za-z0-9\-._~:/@!$()*+,;%\[\]]+")
_TRACKING_PATH = re.compile(r"/([oc])/([^/]*)/?\Z")


class LinkBuilder:
    """Builds the tracking URLs of one base URL and reads them back.

    With `account_id`, open and click links are bound to that account (token version 2): they
    are answered on the instance's own host and the account's tracking domains only. Without,
    they are answered on every served host (version 1: what `pixeltrail instrument` makes).
    Unsubscribe links are never bound: they redirect nowhere and act on their own message.
    """

    def __init__(self, base_url: str, signer: TokenSigner, account_id: str | None = None) -> None:
        base = base_url.strip().rstrip("/")
        if error := http_destination_error(base):
            raise ValueError(f"{base_url!r}: {error.replace('destination', 'base URL')}")
        parts = urlsplit(base)
        if parts.query or parts.fragment or "?" in base or "#" in base:
            raise ValueError(f"{base_url!r}: a base URL has no query or fragment")
        if not _SAFE_BASE.fullmatch(base):
            raise ValueError(f"{base_url!r}: a base URL may hold only plain URL characters")
        self.base_url = base
        self.signer = signer
        self.account_id = account_id
        self.click_prefix = base + "/c/"
        self.open_prefix = base + "/o/"

    def open_url(self, message_id: str) -> str:
        return self.open_prefix + self.signer.open_token(message_id, self.account_id)

    def click_url(self, message_id: str, link: int, destination: str) -> str:
        token = self.signer.click_token(message_id, link, destination, account_id=self.account_id)
        return self.click_prefix + token

    def unsubscribe_url(self, message_id: str) -> str:
        return self.base_url + "/u/" + self.signer.unsubscribe_token(message_id)

    def honeypot_url(self, message_id: str) -> str:
        token = self.signer.click_token(
            message_id, 0, None, honeypot=True, account_id=self.account_id
        )
        return self.click_prefix + token

    def is_tracking_url(self, url: str) -> bool:
        """A link this base already tracks (so instrumenting twice changes nothing)."""
        return url.startswith((self.click_prefix, self.open_prefix))


def parse_tracking_url(url: str, signer: TokenSigner) -> LinkClaims:
    """Verify a tracking URL of any base: its path must end in /o/<token> or /c/<token>."""
    try:
        path = urlsplit(url.strip()).path
    except ValueError:
        raise InvalidToken("not a URL") from None
    match = _TRACKING_PATH.search(path)
    if match is None:
        raise InvalidToken("not a tracking URL: the path does not end in /o/<token> or /c/<token>")
    claims = signer.verify(match.group(2))
    expected = "open" if match.group(1) == "o" else "click"
    if claims.kind != expected:
        raise InvalidToken(f"a {claims.kind} token under /{match.group(1)}/")
    return claims
