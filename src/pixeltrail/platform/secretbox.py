"""Short secrets encrypted at rest (SMTP URLs, webhook secrets) with the instance's key ring.

Each secret of the key ring (PIXELTRAIL_SECRET_KEY, or the key file) gets its own Fernet key,
derived as HMAC-SHA256(secret, b"pixeltrail/secretbox/v1"): never the signing subkeys, so a
leaked database value says nothing about the keys that sign tracking links. The first key
encrypts; every listed key decrypts, so rotating is the same as for links: put the new key
first and keep the old one listed until the values it encrypted have been written again.

A stored value is `sb1.<key id>.<Fernet token>`: the key id (the same public 2-byte id tracking
tokens carry) says which key to try, so a missing key is told apart from a tampered value.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.fernet import Fernet, InvalidToken

from pixeltrail.tracking.keys import KeyRing, SigningKey

PURPOSE = "secretbox/v1"  # SigningKey.subkey prefixes it with "pixeltrail/"
_VERSION = "sb1"


class SecretUnreadable(ValueError):
    """A stored secret that none of the instance's keys can decrypt; the message says why."""


def _fernet(key: SigningKey) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(key.subkey(PURPOSE)))


class SecretBox:
    """Encrypts with the key ring's first key, decrypts with whichever key the value names."""

    __slots__ = ("_ring",)

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    def __repr__(self) -> str:
        return f"SecretBox(keys={len(self._ring)})"

    def encrypt(self, plaintext: str) -> str:
        key = self._ring.signing_key
        token = _fernet(key).encrypt(plaintext.encode()).decode("ascii")
        return f"{_VERSION}.{key.key_id_hex}.{token}"

    def decrypt(self, stored: str) -> str:
        version, _, rest = stored.partition(".")
        key_hex, _, token = rest.partition(".")
        if version != _VERSION or not token:
            raise SecretUnreadable("the stored secret is not in a format pixeltrail writes")
        try:
            key_id = bytes.fromhex(key_hex)
        except ValueError:
            raise SecretUnreadable(
                "the stored secret is not in a format pixeltrail writes"
            ) from None
        candidates = self._ring.candidates(key_id)
        if not candidates:
            raise SecretUnreadable(
                f"the stored secret was encrypted with key {key_hex}, which is no longer in "
                "PIXELTRAIL_SECRET_KEY: add that key back (after the current one), or set the "
                "secret again"
            )
        for key in candidates:
            try:
                return _fernet(key).decrypt(token.encode("ascii")).decode()
            except (InvalidToken, UnicodeError, binascii.Error):
                continue
        raise SecretUnreadable(
            f"the stored secret does not verify with key {key_hex}: it was altered or damaged; "
            "set the secret again"
        )

    def needs_rotation(self, stored: str) -> bool:
        """Whether `stored` was encrypted with another key than the one that encrypts now."""
        return stored.split(".", 2)[1:2] != [self._ring.signing_key.key_id_hex]
