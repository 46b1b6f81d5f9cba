"""Signed, compact, URL-safe tracking tokens for open pixels and click redirects.

Layout (before base64url without padding; version 1 has no account field)::

    open:   [version|kind] [key id:2] [message id:12] [account:8]                          [mac:16]
    click:  [version|kind] [key id:2] [message id:12] [account:8] [link:varint] [flags]
            [destination] [mac:16]

The MAC is HMAC-SHA256 over every byte before it, truncated to 128 bits, with a subkey
derived for this purpose from the secret named by the key id. A click token carries its
destination (UTF-8, raw-deflated with a fixed dictionary when that is shorter), so the
redirect needs no database. Tokens never expire: a token stays valid as long as its key
is listed.

Version 2 tokens are bound to the account whose message they are in: `account` is that
account's tag (`account_tag`), signed with the rest, and the tracking routes answer them only
on the instance's own host and on that account's tracking domains, so nobody can send people
through another account's domain. Version 1 tokens (every link sent before, and tokens made
without an account: `pixeltrail instrument`, unsubscribe links) have no account field and are
answered on every served host, as they always were.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import secrets
import zlib
from enum import IntEnum
from typing import Literal, NamedTuple, Protocol

from pixeltrail.tracking.keys import KEY_ID_BYTES, KeyRing
from pixeltrail.tracking.urls import MAX_DESTINATION_BYTES, http_destination_error

VERSION = 1
VERSION_BOUND = 2
MESSAGE_ID_BYTES = 12
ACCOUNT_TAG_BYTES = 8
MAC_BYTES = 16
MAX_LINK = 2**32 - 1
# The longest token a valid destination can produce, with room to spare; longer is refused
# before any decoding work.
MAX_TOKEN_CHARS = (MAX_DESTINATION_BYTES + 64) * 4 // 3 + 4
SUBKEY_PURPOSE = "link-token/v1"
_HEADER = 1 + KEY_ID_BYTES + MESSAGE_ID_BYTES
_BOUND_HEADER = _HEADER + ACCOUNT_TAG_BYTES
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
assert (1 + KEY_ID_BYTES) % 3 == 0
assert MESSAGE_ID_BYTES % 3 == 0
_MESSAGE_ID_CHARS = slice((1 + KEY_ID_BYTES) * 4 // 3, _HEADER * 4 // 3)

FLAG_DEFLATED = 0x01
FLAG_HONEYPOT = 0x02
_KNOWN_FLAGS = FLAG_DEFLATED | FLAG_HONEYPOT

# Frozen forever for token version 1: changing a byte breaks every click link sent.
# The most common fragments stand at the end, where deflate reaches them most cheaply.
_DEFLATE_DICTIONARY = (
    b"/wp-content/uploads/.pdf.png.jpg/download/docs/articles/events/webinar/pricing/demo/"
    b"signup/register/login/account/careers/about/contact/?page=&lang=en&source=email&ref="
    b"https://calendly.com/https://docs.google.com/document/d//edit?usp=sharing"
    b"https://drive.google.com/file/d//view?usp=sharinghttps://youtu.be/"
    b"https://www.youtube.com/watch?v=https://zoom.us/j/https://twitter.com/https://x.com/"
    b"https://www.facebook.com/https://www.instagram.com/https://github.com/"
    b"https://www.linkedin.com/company/https://www.linkedin.com/in/"
    b".html.php.aspx/index.html/blog//products//en/.co.uk/.de/.fr/.io/.org/.net/"
    b"utm_content=&utm_term=&utm_id=email&utm_source=newsletter&utm_medium=email"
    b"&utm_campaign=?utm_source=http://www.https://www..com/"
)


class Kind(IntEnum):
    OPEN = 1
    CLICK = 2
    UNSUBSCRIBE = 3


_OPEN, _CLICK, _UNSUBSCRIBE = int(Kind.OPEN), int(Kind.CLICK), int(Kind.UNSUBSCRIBE)

# What a compiled reader of these tokens (tracking/_hitline.c) is built for; it refuses to run
# on another.
TOKEN_LAYOUT = (
    VERSION,
    _OPEN,
    _CLICK,
    KEY_ID_BYTES,
    MESSAGE_ID_BYTES,
    MAC_BYTES,
    FLAG_DEFLATED,
    FLAG_HONEYPOT,
    VERSION_BOUND,
    ACCOUNT_TAG_BYTES,
)

# What the tracking routes hand the token check for a host that answers every account's
# tokens (the instance's own); a tracking domain hands its owner's `account_tag`.
ANY_ACCOUNT = b""


class InvalidToken(ValueError):
    """A token that does not verify; `reason` says why in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LinkClaims(NamedTuple):
    """What a verified token says (a named tuple: made on every tracking request, and three
    times cheaper to make than a frozen dataclass)."""

    kind: Literal["open", "click", "unsubscribe"]
    message_id: str
    key_id: str
    link: int | None = None
    destination: str | None = None
    honeypot: bool = False
    # The tag of the account a version 2 token is bound to; None for version 1 (any host).
    account: bytes | None = None

    def answered_on(self, account: bytes) -> bool:
        """Whether a host that serves `account` (a tag, or ANY_ACCOUNT) answers this token."""
        return self.account is None or not account or self.account == account


@functools.lru_cache(maxsize=4096)
def account_tag(account_id: str) -> bytes:
    """The 8 bytes that bind a token to an account: a hash of its id (ids are random, so two
    accounts of one instance sharing a tag is as likely as guessing a 64-bit number)."""
    return hashlib.sha256(b"pixeltrail account\x00" + account_id.encode()).digest()[
        :ACCOUNT_TAG_BYTES
    ]


def new_message_id() -> str:
    """A random, opaque message id (12 bytes, base64url: 16 characters)."""
    return _b64encode(secrets.token_bytes(MESSAGE_ID_BYTES))


def message_id_error(message_id: str) -> str | None:
    """Why this is not a message id, or None."""
    if len(message_id) != MESSAGE_ID_BYTES * 4 // 3 or not _B64URL.fullmatch(message_id):
        return "a message id is 16 URL-safe base64 characters (A-Z a-z 0-9 - _)"
    return None


@functools.lru_cache(maxsize=1024)
def _message_id_bytes(message_id: str) -> bytes:
    if error := message_id_error(message_id):
        raise ValueError(error)
    return _b64decode(message_id)


# URL-safe to standard alphabet; "+", "/" and "=" become "*", which strict decoding refuses.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/***")
_FROM_STANDARD = bytes.maketrans(b"+/", b"-_")
# The last character of a canonical encoding leaves no unused bit set: by length mod 4.
_CANONICAL_LAST = {
    0: frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
    2: frozenset(b"AQgw"),
    3: frozenset(b"AEIMQUYcgkosw048"),
}
_PADDING = ("", "", "==", "=")


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_FROM_STANDARD).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    """Strict base64url: alphabet only, no padding, canonical trailing bits."""
    # The hot path (every tracking request): one strict C decode. Anything it refuses goes
    # through the checks below, which say why.
    remainder = len(text) % 4
    if remainder != 1 and text.isascii():
        raw = text.encode("ascii")
        if not raw or raw[-1] in _CANONICAL_LAST[remainder]:
            try:
                return binascii.a2b_base64(
                    raw.translate(_TO_STANDARD) + _PADDING[remainder].encode(), strict_mode=True
                )
            except binascii.Error:
                pass
    return _b64decode_checked(text)


def _b64decode_checked(text: str) -> bytes:
    if not _B64URL.fullmatch(text):
        if "=" in text:
            raise InvalidToken("token is padded; tracking tokens carry no '=' padding")
        raise InvalidToken("token has characters outside the URL-safe base64 alphabet")
    if len(text) % 4 == 1:
        raise InvalidToken("token length is impossible for base64 (truncated?)")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("token is not valid base64url") from None
    if _b64encode(data) != text:
        raise InvalidToken("token is not in canonical base64url form (re-encoded?)")
    return data


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _ONE_BYTE[n]
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


_ONE_BYTE = tuple(bytes([n]) for n in range(0x80))


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(5):
        if pos + i >= len(data):
            raise InvalidToken("token payload is cut short")
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if i and byte == 0:
                raise InvalidToken("token payload is not canonical")
            return value, pos + i + 1
    raise InvalidToken("token link position is too large")


def _deflate(data: bytes) -> bytes:
    # memLevel 1: URLs are short, and a small state is ten times cheaper to set up.
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 1, zlib.Z_DEFAULT_STRATEGY, _DEFLATE_DICTIONARY)
    return c.compress(data) + c.flush()


@functools.lru_cache(maxsize=4096)
def _packed_destination(destination: str) -> tuple[bytes, int]:
    """The destination as a click token carries it, and FLAG_DEFLATED if deflated. Cached: the
    messages of a campaign carry the same few destinations, each in thousands of tokens."""
    if error := http_destination_error(destination):
        raise ValueError(error)
    raw = destination.encode("utf-8")
    packed = _deflate(raw)
    return (packed, FLAG_DEFLATED) if len(packed) < len(raw) else (raw, 0)


def _inflate(data: bytes) -> bytes:
    d = zlib.decompressobj(-15, zdict=_DEFLATE_DICTIONARY)
    try:
        out = d.decompress(data, MAX_DESTINATION_BYTES + 1)
    except zlib.error:
        raise InvalidToken("token destination does not decompress") from None
    if len(out) > MAX_DESTINATION_BYTES or d.unconsumed_tail or not d.eof or d.unused_data:
        raise InvalidToken("token destination does not decompress cleanly")
    return out


class _Keyed(Protocol):
    def copy(self) -> _Keyed: ...
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


def _keyed(key: bytes) -> _Keyed:
    """HMAC-SHA256 keyed with `key`, to copy for each token: OpenSSL's HMAC object itself
    where the hmac module wraps one (a copy then costs no Python-level wrapper per call)."""
    wrapper = hmac.new(key, digestmod=hashlib.sha256)
    inner: _Keyed = getattr(wrapper, "_hmac", None) or wrapper
    return inner


class TokenSigner:
    """Makes and verifies tokens with a key ring."""

    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys
        key = keys.signing_key
        # Keyed once: each token copies this state (the key's two blocks already hashed).
        self._signing = _keyed(key.subkey(SUBKEY_PURPOSE))
        # Each kind's first bytes: version and kind, then the key id (unbound, bound).
        self._heads = {kind: bytes([VERSION << 4 | kind]) + key.key_id for kind in Kind}
        self._bound_heads = {kind: bytes([VERSION_BOUND << 4 | kind]) + key.key_id for kind in Kind}
        # Keyed once per listed key id (a ring never changes): the id in hex for the claims,
        # and a keyed HMAC of each key with that id, copied for every token verified.
        self._verifying: dict[bytes, tuple[str, tuple[_Keyed, ...]]] = {}

    @property
    def keys(self) -> KeyRing:
        return self._keys

    def _verifiers(self, key_id: bytes) -> tuple[str, tuple[_Keyed, ...]]:
        found = self._verifying.get(key_id)
        if found is None:
            candidates = self._keys.candidates(key_id)
            keyed = tuple(_keyed(k.subkey(SUBKEY_PURPOSE)) for k in candidates)
            found = (key_id.hex(), keyed)
            if candidates:  # unknown ids are not kept: anyone can send any number of them
                self._verifying[key_id] = found
        return found

    def _sign(
        self, kind: Kind, message_id: str, account_id: str | None, payload: bytes = b""
    ) -> str:
        if account_id is None:
            body = self._heads[kind] + _message_id_bytes(message_id) + payload
        else:
            body = (
                self._bound_heads[kind]
                + _message_id_bytes(message_id)
                + account_tag(account_id)
                + payload
            )
        mac = self._signing.copy()
        mac.update(body)
        return _b64encode(body + mac.digest()[:MAC_BYTES])

    def open_token(self, message_id: str, account_id: str | None = None) -> str:
        """An open pixel's token; bound to `account_id`'s hosts when given (version 2)."""
        return self._sign(Kind.OPEN, message_id, account_id)

    def unsubscribe_token(self, message_id: str) -> str:
        """Names the message (and so its contact) whose reader wants no more email."""
        return self._sign(Kind.UNSUBSCRIBE, message_id, None)

    def click_token(
        self,
        message_id: str,
        link: int,
        destination: str | None,
        *,
        honeypot: bool = False,
        account_id: str | None = None,
    ) -> str:
        """Sign a redirect to `destination` (http/https only; none for the honeypot link),
        bound to `account_id`'s hosts when given (version 2)."""
        if not 0 <= link <= MAX_LINK:
            raise ValueError(f"link position must be between 0 and {MAX_LINK}")
        flags = FLAG_HONEYPOT if honeypot else 0
        raw = b""
        if destination is not None:
            raw, deflated = _packed_destination(destination)
            flags |= deflated
        elif not honeypot:
            raise ValueError("a click token needs a destination")
        payload = _varint(link) + _ONE_BYTE[flags] + raw
        return self._sign(Kind.CLICK, message_id, account_id, payload)

    def verify(self, token: str) -> LinkClaims:
        """The claims of a valid token; InvalidToken with a reason otherwise. Never raises else."""
        if not isinstance(token, str):
            raise InvalidToken("token is not text")
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken(f"token is longer than {MAX_TOKEN_CHARS} characters")
        data = _b64decode(token)
        if len(data) < _HEADER + MAC_BYTES:
            raise InvalidToken("token is too short (truncated?)")
        version, kind = data[0] >> 4, data[0] & 0x0F
        if version == VERSION:
            header = _HEADER
        elif version == VERSION_BOUND:
            header = _BOUND_HEADER
            if len(data) < header + MAC_BYTES:
                raise InvalidToken("token is too short (truncated?)")
        else:
            raise InvalidToken(f"token version {version} is not supported")
        body, mac = data[:-MAC_BYTES], data[-MAC_BYTES:]
        key_id_hex, keyed = self._verifiers(data[1 : 1 + KEY_ID_BYTES])
        if not keyed:
            raise InvalidToken(f"token was signed with key {key_id_hex}, which is not listed")
        for key in keyed:
            candidate = key.copy()
            candidate.update(body)
            if hmac.compare_digest(candidate.digest()[:MAC_BYTES], mac):
                break
        else:
            raise InvalidToken("token signature does not match (tampered or forged)")
        # The message id's bytes start and end on base64 boundaries: its characters in the
        # (canonical, as decoded above) token are its own encoding.
        message_id = token[_MESSAGE_ID_CHARS]
        account = body[_HEADER:header] if header != _HEADER else None
        if kind in (_OPEN, _UNSUBSCRIBE):  # ints: no enum lookups
            if len(body) != header:
                raise InvalidToken("token has unexpected payload")
            name: Literal["open", "unsubscribe"] = "open" if kind == _OPEN else "unsubscribe"
            return LinkClaims(name, message_id, key_id_hex, account=account)
        if kind != _CLICK:
            raise InvalidToken(f"token kind {kind} is unknown")
        return self._click_claims(body, header, message_id, key_id_hex, account)

    def _click_claims(
        self, body: bytes, header: int, message_id: str, key_id: str, account: bytes | None
    ) -> LinkClaims:
        # Only reached for bodies this instance signed, so malformed payloads mean a bug
        # or a leaked key; still answer with a reason, never an exception.
        if len(body) > header and body[header] < 0x80:  # a one-byte link position
            link, pos = body[header], header + 1
        else:
            link, pos = _read_varint(body, header)
        if pos >= len(body):
            raise InvalidToken("click token has no flags")
        flags = body[pos]
        if flags & ~_KNOWN_FLAGS:
            raise InvalidToken("click token has unknown flags")
        honeypot = bool(flags & FLAG_HONEYPOT)
        destination = checked_destination(body[pos + 1 :], bool(flags & FLAG_DEFLATED))
        if not destination:
            if honeypot:
                return LinkClaims("click", message_id, key_id, link, None, True, account)
            raise InvalidToken("click token has no destination")
        return LinkClaims("click", message_id, key_id, link, destination, honeypot, account)


# Read from signed bytes only (the MAC is checked first), and a campaign's links carry the
# same few destinations in every message: most clicks find theirs here, inflated and checked.
@functools.lru_cache(maxsize=1024)
def checked_destination(raw: bytes, deflated: bool) -> str:
    """The destination a click token carries ("" for none), checked as when it was signed."""
    if deflated:
        raw = _inflate(raw)
    if not raw:
        return ""
    try:
        destination = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidToken("token destination is not UTF-8") from None
    if error := http_destination_error(destination):
        raise InvalidToken(error)
    return destination
