"""The tracking server as a mail client, a browser and a scanner meet it over HTTP."""

from __future__ import annotations

import base64

import httpx
from sqlalchemy import Engine

from pixeltrail.tracking.tokens import new_message_id
from pixeltrail.web.tracking import PIXEL_GIF

from .conftest import ServerProcess, eventually, recorded, wait_recorded

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)


def test_pixel_is_served_uncached_and_recorded(server: ServerProcess, db: Engine) -> None:
    message_id = new_message_id()
    url = server.links.open_url(message_id)
    r = httpx.get(url, headers={"User-Agent": IPHONE})
    assert r.status_code == 200
    assert r.content == PIXEL_GIF
    assert len(r.content) == 43
    assert r.headers["content-type"] == "image/gif"
    assert r.headers["cache-control"] == "no-cache, no-store, must-revalidate, private"
    assert r.headers["pragma"] == "no-cache"
    assert "1970" in r.headers["expires"]
    assert r.headers["x-robots-tag"] == "noindex, nofollow"
    head = httpx.head(url)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == "43"

    events = wait_recorded(db, message_id, 2)
    get, head_event = sorted(events, key=lambda e: e.hit.method)
    assert (get.hit.kind, get.hit.method, get.hit.user_agent) == ("open", "GET", IPHONE)
    assert get.hit.ip == "127.0.0.1"
    assert get.classification == "human"
    assert head_event.hit.method == "HEAD"
    assert head_event.classification != "human"
    assert head_event.reason


def test_click_redirects_to_the_signed_destination(server: ServerProcess, db: Engine) -> None:
    message_id = new_message_id()
    destination = "https://example.com/pricing?plan=pro&utm_source=email#compare"
    url = server.links.click_url(message_id, 3, destination)
    r = httpx.get(url, headers={"User-Agent": IPHONE})
    assert r.status_code == 302
    assert r.headers["location"] == destination
    assert r.headers["x-robots-tag"] == "noindex, nofollow"
    events = eventually(lambda: recorded(db, message_id))
    assert len(events) == 1
    assert (events[0].hit.kind, events[0].hit.link, events[0].hit.destination) == (
        "click",
        3,
        destination,
    )


def test_non_ascii_destinations_redirect_as_a_browser_would(server: ServerProcess) -> None:
    url = server.links.click_url(new_message_id(), 1, "https://bücher.example/straße?q=a b")
    r = httpx.get(url)
    assert r.status_code == 302
    assert r.headers["location"] == "https://xn--bcher-kva.example/stra%C3%9Fe?q=a%20b"


def test_bad_tokens_never_redirect_and_record_nothing(server: ServerProcess, db: Engine) -> None:
    message_id = new_message_id()
    click = server.links.click_url(message_id, 1, "https://example.com/")
    token = click.rsplit("/", 1)[1]
    raw = bytearray(base64.urlsafe_b64decode(token + "=="))
    raw[-1] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for bad in [
        f"{server.base_url}/c/{tampered}",
        f"{server.base_url}/c/{token[:-5]}",
        f"{server.base_url}/c/{token}==",
        f"{server.base_url}/c/",
        f"{server.base_url}/c/%2B{token[1:]}",
        f"{server.base_url}/c/{'A' * 7000}",
        server.links.open_url(message_id).replace("/o/", "/c/"),
        server.links.unsubscribe_url(message_id).replace("/u/", "/c/"),
    ]:
        r = httpx.get(bad)
        assert r.status_code == 404, bad
        assert "location" not in r.headers
        assert "not valid" in r.text
    # A broken pixel helps no one: a bad open token still gets the GIF.
    r = httpx.get(f"{server.base_url}/o/{tampered}")
    assert (r.status_code, r.content) == (200, PIXEL_GIF)
    # Nothing of it was recorded, while a valid hit is.
    httpx.get(server.links.open_url(message_id))
    assert len(eventually(lambda: recorded(db, message_id))) == 1


def test_other_methods_oversized_requests_and_the_rest(server: ServerProcess) -> None:
    click = server.links.click_url(new_message_id(), 1, "https://example.com/")
    assert httpx.post(click).status_code == 405
    assert httpx.get(server.base_url + "/c/" + "A" * 9000).status_code == 414
    big = {f"x-filler-{i}": "v" * 1000 for i in range(20)}
    assert httpx.get(click, headers=big).status_code == 431
    robots = httpx.get(server.base_url + "/robots.txt")
    assert robots.text == "User-agent: *\nDisallow: /\n"
    status, report = server.health()
    assert status == 200
    assert report["status"] == "ok"
    assert httpx.get(server.base_url + "/nothing-here").status_code == 404


def test_forwarded_for_is_ignored_from_untrusted_peers(server: ServerProcess, db: Engine) -> None:
    message_id = new_message_id()
    httpx.get(server.links.open_url(message_id), headers={"X-Forwarded-For": "203.0.113.9"})
    events = eventually(lambda: recorded(db, message_id))
    assert events[0].hit.ip == "127.0.0.1"
