"""Secrets at rest: a round trip, key rotation, and clear errors for what cannot be read."""

from __future__ import annotations

import pytest

from pixeltrail.platform.secretbox import SecretBox, SecretUnreadable
from pixeltrail.tracking.keys import KeyRing

OLD = "old-secret-key-0123456789abcdef"
NEW = "new-secret-key-0123456789abcdef"
URL = "smtps://ada:s3cr%40t@smtp.example.com:465"


def box(keys: str) -> SecretBox:
    return SecretBox(KeyRing.parse(keys))


def test_round_trip_and_nothing_readable_at_rest() -> None:
    stored = box(OLD).encrypt(URL)
    assert box(OLD).decrypt(stored) == URL
    assert "s3cr" not in stored and "ada" not in stored and "smtp.example" not in stored
    assert box(OLD).encrypt(URL) != stored  # a fresh IV each time
    assert "secret-key" not in repr(box(OLD))


def test_rotation_old_values_still_read_new_ones_use_the_new_key() -> None:
    before = box(OLD).encrypt(URL)
    rotated = box(f"{NEW},{OLD}")
    assert rotated.decrypt(before) == URL
    assert rotated.needs_rotation(before)
    after = rotated.encrypt(URL)
    assert not rotated.needs_rotation(after)
    assert box(NEW).decrypt(after) == URL
    with pytest.raises(SecretUnreadable, match="no longer in PIXELTRAIL_SECRET_KEY"):
        box(OLD).decrypt(after)


def test_a_key_that_left_the_ring_is_named_not_guessed() -> None:
    stored = box(OLD).encrypt(URL)
    with pytest.raises(SecretUnreadable, match="no longer in PIXELTRAIL_SECRET_KEY") as caught:
        box(NEW).decrypt(stored)
    assert URL not in str(caught.value)


@pytest.mark.parametrize("position", [-2, -10, -60, -90])
def test_a_tampered_value_is_refused_clearly(position: int) -> None:
    stored = box(OLD).encrypt(URL)
    flipped = "A" if stored[position] != "A" else "B"
    tampered = stored[:position] + flipped + stored[len(stored) + position + 1 :]
    with pytest.raises(SecretUnreadable, match="altered or damaged"):
        box(OLD).decrypt(tampered)


@pytest.mark.parametrize("stored", ["", "plain text", "sb1.zz.abc", "sb2.0000.abc", "sb1.abcd."])
def test_values_pixeltrail_never_wrote(stored: str) -> None:
    with pytest.raises(SecretUnreadable):
        box(OLD).decrypt(stored)
