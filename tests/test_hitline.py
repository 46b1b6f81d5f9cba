"""The compiled token check accepts exactly the tokens the Python reference accepts, with the
same claims, and writes the reference's spool line byte for byte; anything else is left to
the reference (None)."""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixeltrail.recording.spool import Spool, read_segment
from pixeltrail.tracking import hitline, tokens
from pixeltrail.tracking.hitline import HitLine, compiled_hit_line
from pixeltrail.tracking.hits import Hit, spool_line
from pixeltrail.tracking.keys import KeyRing
from pixeltrail.tracking.tokens import InvalidToken, TokenSigner, new_message_id
from pixeltrail.web.client_ip import ClientAddress
from pixeltrail.web.tracking import BAD_LINK, EMPTY_PAGE, PIXEL, REDIRECT, TrackingApp

from .conftest import SECRET
from .test_tokens import destinations, message_ids

OTHER = "other-secret-0123456789abcdef"
SIGNER = TokenSigner(KeyRing.parse(f"{SECRET},{OTHER}"))
# Header values as a reader's client may send them: quotes, backslashes, controls, non-ASCII.
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=80) | st.sampled_from(
    ['Mozilla/5.0 "quoted" \\ back', "tab\there\nnew\rline\x00\x1f\x7f", "é漢🙂"]
)


def _line() -> HitLine:
    found = compiled_hit_line(SIGNER)
    assert found is not None, "the compiled module is not built"
    return found


LINE = _line()


def _reference(token: str, is_open: bool) -> dict[str, object] | None:
    """What the Python path records for this token, or None where it records nothing."""
    try:
        claims = SIGNER.verify(token)
    except InvalidToken:
        return None
    if claims.kind != ("open" if is_open else "click"):
        return None
    return {
        "kind": claims.kind,
        "message_id": claims.message_id,
        "link": claims.link,
        "destination": claims.destination,
        "honeypot": claims.honeypot,
    }


def _check(
    token: str, is_open: bool, ip: str = "192.0.2.1", agent: str = "UA", method: str = "GET"
) -> None:
    expected = _reference(token, is_open)
    found = LINE(token, is_open, ip, agent, method)
    if expected is None:
        assert found is None, token
        return
    assert found is not None, token
    line, destination = found
    assert destination == expected["destination"]
    hit = Hit.from_json(line)
    # Byte for byte the reference's line for the same event id and time.
    assert line == spool_line(
        hit.id,
        str(expected["kind"]),
        str(expected["message_id"]),
        hit.link,
        hit.destination,
        hit.at_ms,
        ip,
        agent,
        method,
        bool(expected["honeypot"]),
    )
    assert (hit.kind, hit.message_id, hit.link, hit.destination, hit.honeypot) == (
        expected["kind"],
        expected["message_id"],
        expected["link"],
        expected["destination"],
        expected["honeypot"],
    )
    assert (hit.ip, hit.user_agent, hit.method) == (ip, agent, method)


@given(message_ids, st.integers(min_value=0, max_value=2**32 - 1), destinations, texts, texts)
def test_valid_clicks_give_the_reference_line(
    message_id: str, link: int, destination: str, agent: str, ip: str
) -> None:
    token = SIGNER.click_token(message_id, link, destination)
    _check(token, False, ip=ip, agent=agent, method="HEAD")
    _check(token, True)  # a click token on /o/ is not an open


@given(message_ids)
def test_opens_honeypots_and_other_keys(message_id: str) -> None:
    _check(SIGNER.open_token(message_id), True)
    _check(SIGNER.open_token(message_id), False)
    _check(SIGNER.click_token(message_id, 0, None, honeypot=True), False)
    _check(SIGNER.unsubscribe_token(message_id), True)
    old = TokenSigner(KeyRing.parse(OTHER))  # a listed key that no longer signs
    _check(old.click_token(message_id, 7, "https://example.com/a"), False)
    foreign = TokenSigner(KeyRing.parse("foreign-secret-0123456789abcdef"))
    _check(foreign.open_token(message_id), True)


@settings(max_examples=300)
@given(message_ids, destinations, st.data())
def test_tampered_tokens_are_left_to_the_reference(
    message_id: str, destination: str, data: st.DataObject
) -> None:
    token = SIGNER.click_token(message_id, 3, destination)
    raw = bytearray(base64.urlsafe_b64decode(token + "=="))
    index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    _check(base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("="), False)
    cut = data.draw(st.integers(min_value=0, max_value=len(token)))
    _check(token[:cut], False)
    char = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    other = data.draw(st.sampled_from("Aw_-+/=.% é\x00"))
    _check(token[:char] + other + token[char + 1 :], False)


@given(st.text(max_size=300))
def test_arbitrary_text_is_left_to_the_reference(text: str) -> None:
    _check(text, False)
    _check(text, True)


def test_non_canonical_and_oversized_tokens_are_left_to_the_reference() -> None:
    token = SIGNER.open_token(new_message_id())
    # The last character with a spare bit set decodes to the same bytes, but is not ours.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    for spare in range(1, 4):
        twin = token[:-1] + alphabet[last | spare]
        if twin != token:
            assert LINE(twin, True, "", "", "GET") is None
    assert LINE(token + "=", True, "", "", "GET") is None
    assert LINE("A" * 100_000, False, "", "", "GET") is None


def test_lines_are_valid_json_with_fresh_ids_and_the_time_now() -> None:
    import time

    token = SIGNER.click_token(new_message_id(), 2, 'https://example.com/\u00e9?q="x"')
    before = time.time_ns() // 1_000_000
    lines = [LINE(token, False, "::1", "UA", "GET") for _ in range(600)]
    after = time.time_ns() // 1_000_000
    hits = [json.loads(found[0]) for found in lines if found is not None]
    assert len(hits) == 600
    assert len({h["id"] for h in hits}) == 600
    assert all(len(h["id"]) == 32 and int(h["id"], 16) >= 0 for h in hits)
    assert all(before <= h["at_ms"] <= after for h in hits)
    assert hits[0]["destination"] == 'https://example.com/\u00e9?q="x"'


def test_a_forked_child_makes_other_event_ids() -> None:
    token = SIGNER.open_token(new_message_id())
    LINE(token, True, "", "", "GET")  # the parent has ids left in its batch
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        found = LINE(token, True, "", "", "GET")
        os.write(write, found[0] if found else b"{}")
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = json.loads(os.read(read, 4096))
    os.close(read)
    found = LINE(token, True, "", "", "GET")
    assert found is not None
    assert child["id"] != json.loads(found[0])["id"]


def test_lone_surrogates_are_left_to_the_reference() -> None:
    token = SIGNER.open_token(new_message_id())
    assert LINE(token, True, "", "bad \udc80", "GET") is None


def test_a_module_built_for_another_token_layout_is_not_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """If tokens.py changes its layout (say, a longer MAC) and the module is not rebuilt, the
    routes take the reference alone and say so, rather than read tokens the old way."""
    changed = list(tokens.TOKEN_LAYOUT)
    changed[5] += 4  # MAC_BYTES
    monkeypatch.setattr(hitline, "TOKEN_LAYOUT", tuple(changed))
    with caplog.at_level(logging.WARNING, logger=hitline.__name__):
        assert compiled_hit_line(SIGNER) is None
    assert "another token layout" in caplog.text


def test_event_ids_are_the_reference_generators(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = iter(["first-id", 'quoted "id"'])
    monkeypatch.setattr(hitline, "new_event_id", lambda: next(ids))
    line = compiled_hit_line(SIGNER)
    assert line is not None
    token = SIGNER.open_token(new_message_id())
    found = [line(token, True, "", "", "GET") for _ in range(2)]
    assert [json.loads(f[0])["id"] for f in found if f] == ["first-id", 'quoted "id"']


def test_wrong_argument_types_are_type_errors() -> None:
    token = SIGNER.open_token(new_message_id())
    with pytest.raises(TypeError):
        LINE(token, True, None, "", "GET")  # type: ignore[arg-type]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "reference"])
def test_the_tracking_routes_record_the_same_either_way(tmp_path: Path, compiled: bool) -> None:
    """The routes' `record` answers and spools the same hits with the compiled check as with
    the reference alone (what runs where the module is not built)."""
    spool = Spool(tmp_path / "spool")
    app = TrackingApp(SIGNER, spool, ClientAddress(), lambda: (True, {}))
    if not compiled:
        app.hit_line = None
    message_id = new_message_id()
    requests = [
        (True, SIGNER.open_token(message_id), (PIXEL, None)),
        (
            False,
            SIGNER.click_token(message_id, 4, "https://example.com/é"),
            (REDIRECT, "https://example.com/é"),
        ),
        (False, SIGNER.click_token(message_id, 9, None, honeypot=True), (EMPTY_PAGE, None)),
        (True, SIGNER.click_token(message_id, 4, "https://example.com/"), (PIXEL, None)),
        (False, SIGNER.open_token(message_id), (BAD_LINK, None)),
        (False, SIGNER.open_token(message_id)[:-2], (BAD_LINK, None)),
    ]
    for is_open, token, answer in requests:
        assert app.record(is_open, token, "HEAD", lambda: "198.51.100.7", 'A "UA"') == answer
    spool.close()
    hits = [hit for path in spool.ready_segments() for hit in read_segment(path)[0]]
    assert [(h.kind, h.message_id, h.link, h.destination, h.honeypot) for h in hits] == [
        ("open", message_id, None, None, False),
        ("click", message_id, 4, "https://example.com/é", False),
        ("click", message_id, 9, None, True),
    ]
    assert {(h.ip, h.user_agent, h.method) for h in hits} == {("198.51.100.7", 'A "UA"', "HEAD")}
