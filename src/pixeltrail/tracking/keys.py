"""The key ring that signs tracking links: which keys exist, which one signs, their ids."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

MIN_SECRET_LENGTH = 16
KEY_ID_BYTES = 2


class InvalidKey(ValueError):
    """A secret key that cannot be used (too short, empty list)."""


def key_id_of(secret: bytes) -> bytes:
    """The public 2-byte id of a secret: lets a verifier pick the key without trying all of them."""
    return hashlib.sha256(b"pixeltrail key id\x00" + secret).digest()[:KEY_ID_BYTES]


@dataclass(frozen=True)
class SigningKey:
    """One secret, with the id that tokens carry and a subkey per purpose."""

    secret: bytes = field(repr=False)
    key_id: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> SigningKey:
        if len(secret) < MIN_SECRET_LENGTH:
            raise InvalidKey(f"a secret key must be at least {MIN_SECRET_LENGTH} bytes long")
        return cls(secret=secret, key_id=key_id_of(secret))

    def subkey(self, purpose: str) -> bytes:
        # One derived key per purpose, so a signature made for one kind of token
        # can never be replayed as another.
        return hmac.new(self.secret, b"pixeltrail/" + purpose.encode(), hashlib.sha256).digest()

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex()


class KeyRing:
    """The first key signs; every listed key verifies. Rotating = put the new key first."""

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        if not keys:
            raise InvalidKey("at least one secret key is needed")
        self._keys = tuple(keys)
        self._by_id: dict[bytes, list[SigningKey]] = {}
        for key in self._keys:
            self._by_id.setdefault(key.key_id, []).append(key)

    @classmethod
    def from_secrets(cls, secrets: Iterable[bytes]) -> KeyRing:
        return cls([SigningKey.from_secret(s) for s in secrets])

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """A comma-separated list of secrets, as in PIXELTRAIL_SECRET_KEY."""
        parts = [p.strip() for p in text.split(",")]
        return cls.from_secrets(p.encode() for p in parts if p)

    @property
    def signing_key(self) -> SigningKey:
        return self._keys[0]

    def __iter__(self) -> Iterator[SigningKey]:
        return iter(self._keys)

    def candidates(self, key_id: bytes) -> list[SigningKey]:
        return self._by_id.get(key_id, [])

    def __len__(self) -> int:
        return len(self._keys)
