"""Tracking tokens: round trips, rejection of every kind of bad token, key rotation."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixeltrail.tracking.keys import KeyRing
from pixeltrail.tracking.tokens import (
    ACCOUNT_TAG_BYTES,
    ANY_ACCOUNT,
    MAX_TOKEN_CHARS,
    InvalidToken,
    TokenSigner,
    _b64decode,
    account_tag,
    message_id_error,
    new_message_id,
)

from ..conftest import SECRET

message_ids = st.binary(min_size=12, max_size=12).map(
    lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")
)
hosts = st.from_regex(r"[a-z0-9]{1,20}(\.[a-z]{2,6}){1,2}", fullmatch=True)
paths = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="#?"),
    max_size=200,
)
destinations = st.builds(
    lambda scheme, host, path, query: f"{scheme}://{host}/{path}{query}",
    st.sampled_from(["http", "https", "HTTPS"]),
    hosts,
    paths,
    st.sampled_from(["", "?a=1&b=2", "?utm_source=newsletter&utm_medium=email#top", "#frag"]),
)


def _signer(*secrets: str) -> TokenSigner:
    return TokenSigner(KeyRing.parse(",".join(secrets)))


@given(message_ids, st.integers(min_value=0, max_value=2**32 - 1), destinations)
def test_click_token_round_trip(message_id: str, link: int, destination: str) -> None:
    signer = _signer(SECRET)
    claims = signer.verify(signer.click_token(message_id, link, destination))
    assert (claims.kind, claims.message_id, claims.link, claims.destination) == (
        "click",
        message_id,
        link,
        destination,
    )
    assert not claims.honeypot


@given(message_ids)
def test_open_token_round_trip(message_id: str) -> None:
    signer = _signer(SECRET)
    claims = signer.verify(signer.open_token(message_id))
    assert (claims.kind, claims.message_id, claims.destination) == ("open", message_id, None)


@settings(max_examples=50)
@given(message_ids, destinations, st.data())
def test_every_single_character_change_is_rejected(
    message_id: str, destination: str, data: st.DataObject
) -> None:
    signer = _signer(SECRET)
    token = signer.click_token(message_id, 3, destination)
    index = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.%")
    )
    if replacement == token[index]:
        return
    tampered = token[:index] + replacement + token[index + 1 :]
    with pytest.raises(InvalidToken):
        signer.verify(tampered)


@settings(max_examples=50)
@given(message_ids, destinations, st.data())
def test_every_single_byte_change_is_rejected(
    message_id: str, destination: str, data: st.DataObject
) -> None:
    signer = _signer(SECRET)
    raw = bytearray(base64.urlsafe_b64decode(signer.click_token(message_id, 1, destination) + "=="))
    index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(InvalidToken):
        signer.verify(tampered)


@given(st.text(max_size=300))
def test_arbitrary_text_never_raises_anything_else(text: str) -> None:
    with pytest.raises(InvalidToken):
        _signer(SECRET).verify(text)


URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@given(st.text(alphabet=URLSAFE + "+/= \n.%", max_size=60) | st.text(max_size=60))
def test_token_text_decodes_only_when_it_is_canonical_base64url(text: str) -> None:
    try:
        data = _b64decode(text)
    except InvalidToken:
        canonical = None
    else:
        canonical = base64.urlsafe_b64encode(data).decode().rstrip("=")
        assert canonical == text
    # And everything canonical decodes: what the signer writes is always read back.
    if text and all(c in URLSAFE for c in text) and len(text) % 4 != 1:
        padded = text + "=" * (-len(text) % 4)
        again = base64.urlsafe_b64encode(base64.urlsafe_b64decode(padded)).decode().rstrip("=")
        assert (canonical is not None) == (again == text)


@given(st.binary(max_size=64))
def test_any_bytes_encoded_decode_back(data: bytes) -> None:
    assert _b64decode(base64.urlsafe_b64encode(data).decode().rstrip("=")) == data


def _reason(signer: TokenSigner, token: str) -> str:
    with pytest.raises(InvalidToken) as excinfo:
        signer.verify(token)
    return excinfo.value.reason


def test_bad_tokens_are_rejected_with_a_reason() -> None:
    signer = _signer(SECRET)
    token = signer.click_token(new_message_id(), 1, "https://example.com/pricing?plan=pro")
    assert "padded" in _reason(signer, token + "==")
    assert "truncated" in _reason(signer, token[:20]) or "short" in _reason(signer, token[:20])
    cut = base64.urlsafe_b64encode(base64.urlsafe_b64decode(token + "==")[:-3]).decode()
    assert "signature" in _reason(signer, cut.rstrip("="))
    assert "alphabet" in _reason(signer, token.replace(token[5], "%2F", 1))
    assert "longer" in _reason(signer, "A" * (MAX_TOKEN_CHARS + 1))
    assert "too short" in _reason(signer, "")
    # The same bytes in standard base64 (with + and /) are not our encoding.
    std = base64.b64encode(base64.urlsafe_b64decode(token + "==")).decode().rstrip("=")
    if std != token:
        assert "alphabet" in _reason(signer, std)


def test_non_canonical_base64_is_rejected() -> None:
    signer = _signer(SECRET)
    for _ in range(20):
        token = signer.open_token(new_message_id())
        # 31 bytes -> 42 chars: the last character carries 4 unused bits.
        last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(token[-1])
        if last % 4 != 3:
            variant = (
                token[:-1]
                + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last + 1]
            )
            assert "canonical" in _reason(signer, variant)
            return
    pytest.fail("no token with spare bits found")


def test_key_rotation_old_keys_verify_new_key_signs() -> None:
    old = _signer("old-secret-0123456789abcdef")
    token = old.click_token(new_message_id(), 2, "https://example.com/a")
    rotated = _signer("new-secret-0123456789abcdef", "old-secret-0123456789abcdef")
    assert rotated.verify(token).destination == "https://example.com/a"
    fresh = rotated.open_token(new_message_id())
    assert rotated.verify(fresh).key_id != old.verify(token).key_id
    # Once the old key is dropped, its links stop verifying, with a reason naming the key.
    dropped = _signer("new-secret-0123456789abcdef")
    assert "not listed" in _reason(dropped, token)
    assert "not listed" in _reason(old, fresh)


def test_a_foreign_key_with_a_colliding_id_still_fails_the_signature() -> None:
    signer = _signer(SECRET)
    token = signer.open_token(new_message_id())
    raw = bytearray(base64.urlsafe_b64decode(token + "=="))
    forged = _signer("attacker-secret-0123456789abcdef").open_token(new_message_id())
    forged_raw = bytearray(base64.urlsafe_b64decode(forged + "=="))
    forged_raw[1:3] = raw[1:3]  # claim our key id
    forged_token = base64.urlsafe_b64encode(bytes(forged_raw)).decode().rstrip("=")
    assert "signature" in _reason(signer, forged_token)


@pytest.mark.parametrize(
    "destination",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/",
        "/relative/path",
        "ftp://example.com/file",
        "https://",
        "https:///path",
        "http:example.com",
        "https://exa\nmple.com",
        "https://example.com/\r\nSet-Cookie: a=b",
        "https://example.com/" + "a" * 5000,
    ],
)
def test_only_http_destinations_can_be_signed(destination: str) -> None:
    with pytest.raises(ValueError, match="destination"):
        _signer(SECRET).click_token(new_message_id(), 1, destination)


def test_tokens_carry_no_readable_address_and_ids_are_random() -> None:
    signer = _signer(SECRET)
    ids = {new_message_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(message_id_error(i) is None for i in ids)
    token = signer.click_token(new_message_id(), 1, "https://example.com/?email=jane@acme.example")
    assert "jane" not in token
    assert "acme" not in base64.urlsafe_b64decode(token + "==").decode("latin-1")


def test_click_links_stay_short() -> None:
    signer = _signer(SECRET)
    base = "https://t.example.com/c/"
    for destination in [
        "https://example.com",
        "https://www.example.com/products/shoes?utm_source=newsletter&utm_medium=email"
        "&utm_campaign=fall-2026",
        "https://calendly.com/jane-doe/30min",
        "https://www.linkedin.com/in/janedoe/",
    ]:
        link = base + signer.click_token(new_message_id(), 7, destination)
        assert len(link) - len(destination) < 80, (destination, len(link))


def test_honeypot_token_is_recognisable() -> None:
    signer = _signer(SECRET)
    claims = signer.verify(signer.click_token(new_message_id(), 0, None, honeypot=True))
    assert claims.honeypot
    assert claims.destination is None
    assert claims.link == 0


def test_malformed_message_ids_are_refused() -> None:
    signer = _signer(SECRET)
    for bad in ["", "msg-42", "A" * 15, "A" * 17, "AAAAAAAAAAAAAAA="]:
        assert message_id_error(bad)
        with pytest.raises(ValueError, match="message id"):
            signer.open_token(bad)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        KeyRing.parse("short")
    with pytest.raises(ValueError, match="at least one"):
        KeyRing.parse(" , ")


# Made by the signer before tokens could be bound to an account (version 1), with SECRET: links
# already sent carry these, and must verify to the same claims forever.
SENT_MESSAGE = "Tm90aGluZ1RvU2Vl"
SENT_DESTINATION = "https://acme.example/pricing?utm_source=email"
SENT_OPEN = "EVjITm90aGluZ1RvU2VlkZk16bh-d9Kyy7o1_ns50w"
SENT_CLICK = "EljITm90aGluZ1RvU2VlAwGDCSQm56bqpVYAtQNjFppCkc0AWwEAX1ZNuyhW9gBmCS33-QRGvw"
SENT_HONEYPOT = "EljITm90aGluZ1RvU2VlAAJ6K01rXIQ8peJESKyKwPTV"
SENT_UNSUBSCRIBE = "E1jITm90aGluZ1RvU2Vllku1KqMvUecVLwJEFMIfGA"


def test_links_sent_before_accounts_were_bound_verify_as_they_did() -> None:
    signer = _signer(SECRET)
    opened, click = signer.verify(SENT_OPEN), signer.verify(SENT_CLICK)
    honeypot, unsubscribe = signer.verify(SENT_HONEYPOT), signer.verify(SENT_UNSUBSCRIBE)
    assert (opened.kind, opened.message_id, opened.account) == ("open", SENT_MESSAGE, None)
    assert (click.kind, click.link, click.destination, click.account) == (
        "click",
        3,
        SENT_DESTINATION,
        None,
    )
    assert (honeypot.honeypot, honeypot.destination, honeypot.account) == (True, None, None)
    assert (unsubscribe.kind, unsubscribe.message_id) == ("unsubscribe", SENT_MESSAGE)
    # Unbound, they are answered on every served host, whoever's it is.
    for host in [ANY_ACCOUNT, account_tag("acct_acme"), account_tag("acct_globex")]:
        assert opened.answered_on(host)
        assert click.answered_on(host)
    # And a token made without an account is still made exactly as then.
    assert signer.open_token(SENT_MESSAGE) == SENT_OPEN
    assert signer.click_token(SENT_MESSAGE, 3, SENT_DESTINATION) == SENT_CLICK
    assert signer.click_token(SENT_MESSAGE, 0, None, honeypot=True) == SENT_HONEYPOT
    assert signer.unsubscribe_token(SENT_MESSAGE) == SENT_UNSUBSCRIBE


@given(message_ids, st.integers(min_value=0, max_value=2**32 - 1), destinations, st.text())
def test_bound_tokens_carry_their_account_and_are_answered_only_on_its_hosts(
    message_id: str, link: int, destination: str, account_id: str
) -> None:
    signer = _signer(SECRET)
    click = signer.verify(signer.click_token(message_id, link, destination, account_id=account_id))
    opened = signer.verify(signer.open_token(message_id, account_id))
    assert (click.kind, click.message_id, click.link, click.destination) == (
        "click",
        message_id,
        link,
        destination,
    )
    assert (opened.kind, opened.message_id) == ("open", message_id)
    tag = account_tag(account_id)
    for claims in (click, opened):
        assert claims.account == tag
        assert claims.answered_on(ANY_ACCOUNT)  # the instance's own host
        assert claims.answered_on(tag)  # the account's own tracking domains
        assert not claims.answered_on(account_tag(account_id + "x"))  # anyone else's


def test_accounts_tags_differ_and_are_stable() -> None:
    assert account_tag("acct_acme") == account_tag("acct_acme")
    assert len(account_tag("acct_acme")) == ACCOUNT_TAG_BYTES
    assert account_tag("acct_acme") != account_tag("acct_globex")


@settings(max_examples=50)
@given(message_ids, destinations, st.data())
def test_the_bound_account_cannot_be_changed_or_dropped(
    message_id: str, destination: str, data: st.DataObject
) -> None:
    signer = _signer(SECRET)
    for token in (
        signer.click_token(message_id, 1, destination, account_id="acct_globex"),
        signer.open_token(message_id, "acct_globex"),
    ):
        raw = base64.urlsafe_b64decode(token + "==")
        # Another account's tag written over it: the signature no longer matches.
        swapped = raw[:15] + account_tag("acct_acme") + raw[15 + ACCOUNT_TAG_BYTES :]
        assert "signature" in _reason(signer, _encode(swapped))
        changed = bytearray(raw)
        changed[data.draw(st.integers(min_value=15, max_value=15 + ACCOUNT_TAG_BYTES - 1))] ^= (
            data.draw(st.integers(min_value=1, max_value=255))
        )
        assert "signature" in _reason(signer, _encode(bytes(changed)))
        # Made unbound (version 1, the tag cut out): refused as well.
        unbound = bytes([raw[0] - 0x10]) + raw[1:15] + raw[15 + ACCOUNT_TAG_BYTES :]
        assert "signature" in _reason(signer, _encode(unbound))


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
