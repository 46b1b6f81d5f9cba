"""The compiled token check accepts exactly the tokens the Python reference accepts, with the
same claims, on hosts serving every account or one (bound tokens), and writes the reference's
spool line byte for byte; anything else is left to the reference (None)."""

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
from pixeltrail.tracking.tokens import (
    ANY_ACCOUNT,
    InvalidToken,
    TokenSigner,
    account_tag,
    new_message_id,
)
from pixeltrail.web.client_ip import ClientAddress
from pixeltrail.web.hosts import UNKNOWN_ACCOUNT
from pixeltrail.web.tracking import BAD_LINK, EMPTY_PAGE, PIXEL, REDIRECT, TrackingApp

from ..conftest import SECRET
from .test_tokens import destinations, message_ids

OTHER = "other-secret-0123456789abcdef"
SIGNER = TokenSigner(KeyRing.parse(f"{SECRET},{OTHER}"))
ACME, GLOBEX = "acct_acme", "acct_globex"
# Whose tokens a host answers: every account's (the instance), one account's (its domain),
# none bound (a domain whose account is not known yet).
served = st.sampled_from([ANY_ACCOUNT, account_tag(ACME), account_tag(GLOBEX), UNKNOWN_ACCOUNT])
accounts = st.sampled_from([None, ACME, GLOBEX]) | st.text(max_size=30)
# Header values as a reader's client may send them: quotes, backslashes, controls, non-ASCII.
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=80) | st.sampled_from(
    ['Mozilla/5.0 "quoted" \\ back', "tab\there\nnew\rline\x00\x1f\x7f", "é漢🙂"]
)


def _line() -> HitLine:
    found = compiled_hit_line(SIGNER)
    assert found is not None, "the compiled module is not built"
    return found


LINE = _line()


def _reference(token: str, is_open: bool, account: bytes) -> dict[str, object] | None:
    """What the Python path records for this token, or None where it records nothing."""
    try:
        claims = SIGNER.verify(token)
    except InvalidToken:
        return None
    if claims.kind != ("open" if is_open else "click") or not claims.answered_on(account):
        return None
    return {
        "kind": claims.kind,
        "message_id": claims.message_id,
        "link": claims.link,
        "destination": claims.destination,
        "honeypot": claims.honeypot,
    }


def _check(
    token: str,
    is_open: bool,
    ip: str = "192.0.2.1",
    agent: str = "UA",
    method: str = "GET",
    account: bytes = ANY_ACCOUNT,
) -> None:
    expected = _reference(token, is_open, account)
    found = LINE(token, is_open, ip, agent, method, account)
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


@given(
    message_ids,
    st.integers(min_value=0, max_value=2**32 - 1),
    destinations,
    accounts,
    served,
    st.booleans(),
)
def test_bound_tokens_give_the_reference_line_where_their_host_serves_them(
    message_id: str,
    link: int,
    destination: str,
    account_id: str | None,
    account: bytes,
    honeypot: bool,
) -> None:
    click = SIGNER.click_token(
        message_id,
        link,
        None if honeypot else destination,
        honeypot=honeypot,
        account_id=account_id,
    )
    opened = SIGNER.open_token(message_id, account_id)
    for token in (click, opened):
        _check(token, False, account=account)
        _check(token, True, account=account)
    if account_id is not None:  # refused exactly on the hosts of other accounts
        found = LINE(click, False, "", "", "GET", account)
        assert (found is not None) == (account in (ANY_ACCOUNT, account_tag(account_id)))


@settings(max_examples=300)
@given(message_ids, destinations, st.sampled_from([None, ACME]), served, st.data())
def test_tampered_tokens_are_left_to_the_reference(
    message_id: str,
    destination: str,
    account_id: str | None,
    account: bytes,
    data: st.DataObject,
) -> None:
    token = SIGNER.click_token(message_id, 3, destination, account_id=account_id)
    raw = bytearray(base64.urlsafe_b64decode(token + "=="))
    index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    _check(base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("="), False, account=account)
    cut = data.draw(st.integers(min_value=0, max_value=len(token)))
    _check(token[:cut], False, account=account)
    char = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    other = data.draw(st.sampled_from("Aw_-+/=.% é\x00"))
    _check(token[:char] + other + token[char + 1 :], False, account=account)


@given(st.text(max_size=300), served)
def test_arbitrary_text_is_left_to_the_reference(text: str, account: bytes) -> None:
    _check(text, False, account=account)
    _check(text, True, account=account)


def test_non_canonical_and_oversized_tokens_are_left_to_the_reference() -> None:
    token = SIGNER.open_token(new_message_id())
    # The last character with a spare bit set decodes to the same bytes, but is not ours.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    for spare in range(1, 4):
        twin = token[:-1] + alphabet[last | spare]
        if twin != token:
            assert LINE(twin, True, "", "", "GET", ANY_ACCOUNT) is None
    assert LINE(token + "=", True, "", "", "GET", ANY_ACCOUNT) is None
    assert LINE("A" * 100_000, False, "", "", "GET", ANY_ACCOUNT) is None


def test_lines_are_valid_json_with_fresh_ids_and_the_time_now() -> None:
    import time

    token = SIGNER.click_token(new_message_id(), 2, 'https://example.com/\u00e9?q="x"')
    before = time.time_ns() // 1_000_000
    lines = [LINE(token, False, "::1", "UA", "GET", ANY_ACCOUNT) for _ in range(600)]
    after = time.time_ns() // 1_000_000
    hits = [json.loads(found[0]) for found in lines if found is not None]
    assert len(hits) == 600
    assert len({h["id"] for h in hits}) == 600
    assert all(len(h["id"]) == 32 and int(h["id"], 16) >= 0 for h in hits)
    assert all(before <= h["at_ms"] <= after for h in hits)
    assert hits[0]["destination"] == 'https://example.com/\u00e9?q="x"'


def test_a_forked_child_makes_other_event_ids() -> None:
    token = SIGNER.open_token(new_message_id())
    LINE(token, True, "", "", "GET", ANY_ACCOUNT)  # the parent has ids left in its batch
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        found = LINE(token, True, "", "", "GET", ANY_ACCOUNT)
        os.write(write, found[0] if found else b"{}")
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = json.loads(os.read(read, 4096))
    os.close(read)
    found = LINE(token, True, "", "", "GET", ANY_ACCOUNT)
    assert found is not None
    assert child["id"] != json.loads(found[0])["id"]


def test_lone_surrogates_are_left_to_the_reference() -> None:
    token = SIGNER.open_token(new_message_id())
    assert LINE(token, True, "", "bad \udc80", "GET", ANY_ACCOUNT) is None


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
    found = [line(token, True, "", "", "GET", ANY_ACCOUNT) for _ in range(2)]
    assert [json.loads(f[0])["id"] for f in found if f] == ["first-id", 'quoted "id"']


def test_wrong_argument_types_are_type_errors() -> None:
    token = SIGNER.open_token(new_message_id())
    with pytest.raises(TypeError):
        LINE(token, True, None, "", "GET", ANY_ACCOUNT)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        LINE(token, True, "", "", "GET", "")  # type: ignore[arg-type]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "reference"])
def test_the_tracking_routes_record_the_same_either_way(tmp_path: Path, compiled: bool) -> None:
    """The routes' `record` answers and spools the same hits with the compiled check as with
    the reference alone (what runs where the module is not built)."""
    spool = Spool(tmp_path / "spool")
    app = TrackingApp(SIGNER, spool, ClientAddress(), lambda: (True, {}))
    if not compiled:
        app.hit_line = None
    message_id, bound = new_message_id(), new_message_id()
    acme, globex = account_tag(ACME), account_tag(GLOBEX)
    requests = [
        (True, SIGNER.open_token(message_id), ANY_ACCOUNT, (PIXEL, None)),
        (
            False,
            SIGNER.click_token(message_id, 4, "https://example.com/é"),
            globex,  # unbound (version 1): answered on any served host, as always
            (REDIRECT, "https://example.com/é"),
        ),
        (
            False,
            SIGNER.click_token(message_id, 9, None, honeypot=True),
            ANY_ACCOUNT,
            (EMPTY_PAGE, None),
        ),
        (True, SIGNER.click_token(message_id, 4, "https://example.com/"), acme, (PIXEL, None)),
        (False, SIGNER.open_token(message_id), ANY_ACCOUNT, (BAD_LINK, None)),
        (False, SIGNER.open_token(message_id)[:-2], ANY_ACCOUNT, (BAD_LINK, None)),
        # Bound to Acme: answered on the instance and Acme's domains, on Globex's not at all.
        (True, SIGNER.open_token(bound, ACME), acme, (PIXEL, None)),
        (True, SIGNER.open_token(bound, ACME), globex, (PIXEL, None)),
        (True, SIGNER.open_token(bound, ACME), UNKNOWN_ACCOUNT, (PIXEL, None)),
        (
            False,
            SIGNER.click_token(bound, 1, "https://acme.example/", account_id=ACME),
            globex,
            (BAD_LINK, None),
        ),
        (
            False,
            SIGNER.click_token(bound, 2, "https://acme.example/", account_id=ACME),
            ANY_ACCOUNT,
            (REDIRECT, "https://acme.example/"),
        ),
        (
            False,
            SIGNER.click_token(bound, 3, None, honeypot=True, account_id=ACME),
            globex,
            (BAD_LINK, None),
        ),
    ]
    for is_open, token, account, answer in requests:
        found = app.record(is_open, token, "HEAD", lambda: "198.51.100.7", 'A "UA"', account)
        assert found == answer
    spool.close()
    hits = [hit for path in spool.ready_segments() for hit in read_segment(path)[0]]
    assert [(h.kind, h.message_id, h.link, h.destination, h.honeypot) for h in hits] == [
        ("open", message_id, None, None, False),
        ("click", message_id, 4, "https://example.com/é", False),
        ("click", message_id, 9, None, True),
        ("open", bound, None, None, False),
        ("click", bound, 2, "https://acme.example/", False),
    ]
    assert {(h.ip, h.user_agent, h.method) for h in hits} == {("198.51.100.7", 'A "UA"', "HEAD")}
