"""Shared fixtures: a key ring, a link builder and per-message trackers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pixeltrail.tracking.keys import KeyRing
from pixeltrail.tracking.links import LinkBuilder
from pixeltrail.tracking.tokens import TokenSigner, new_message_id
from pixeltrail.tracking.tracker import MessageTracker, TrackingOptions

BASE_URL = "https://t.example.com"
SECRET = "test-secret-key-0123456789abcdef"
CORPUS = Path(__file__).parent / "corpus" / "emails"

TrackerFactory = Callable[..., MessageTracker]


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(KeyRing.parse(SECRET))


@pytest.fixture
def links(signer: TokenSigner) -> LinkBuilder:
    return LinkBuilder(BASE_URL, signer)


@pytest.fixture
def make_tracker(links: LinkBuilder) -> TrackerFactory:
    def make(message_id: str | None = None, **options: bool) -> MessageTracker:
        return MessageTracker(links, message_id or new_message_id(), TrackingOptions(**options))

    return make
