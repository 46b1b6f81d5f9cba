"""Trailing-slash redirects over real HTTP: to a path of this site, whatever Host was sent."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pixeltrail.web.slash_redirects import redirect_slashes_here

from ..api.conftest import serving
from .conftest import Site

EVIL = {"Host": "evil.example"}


def location_of(answer: httpx.Response) -> str | None:
    """The answer's Location, checked to stay on this site: a path, never another host."""
    location: str | None = answer.headers.get("location")
    if location is not None:
        assert location.startswith("/"), location
        assert location[1:2] not in {"/", "\\"}, location
        assert "evil.example" not in location, location
    return location


def test_trailing_slash_redirects_never_point_at_the_host_sent(site: Site) -> None:
    owner = site.sign_up()
    moved = {
        "/campaigns/": "/campaigns",
        "/campaigns/?q=a%20b&page=2": "/campaigns?q=a%20b&page=2",
        "/contacts//": "/contacts",
        "/settings/api-keys/": "/settings/api-keys",
        "/api/v1/contacts/": "/api/v1/contacts",
        "/api/v1/contacts/?limit=5": "/api/v1/contacts?limit=5",
    }
    signed_out = site.visitor()
    for client in (owner.client, signed_out.client):
        for path, target in moved.items():
            answer = client.get(path, headers=EVIL)
            assert answer.status_code == 307, (path, answer.status_code)
            assert location_of(answer) == target
    # Followed, the redirect lands on the page itself.
    page = owner.get("/campaigns/", follow_redirects=True)
    assert page.status_code == 200 and str(page.url) == f"{site.url}/campaigns"


def test_paths_that_look_like_another_host_are_not_redirected_there(site: Site) -> None:
    owner = site.sign_up()
    for path in [
        "//evil.example/",
        "//evil.example",
        "///evil.example/",
        "/\\evil.example/",
        "/%2F%2Fevil.example/",
        "//campaigns/",
        "/api/v1//evil.example/",
    ]:
        # An absolute URL, so that the client sends the path as it is written here.
        answer = owner.client.get(site.url + path, headers=EVIL)
        assert answer.request.url.raw_path.startswith(path[:2].encode())
        assert location_of(answer) is None, (path, answer.headers.get("location"))
        assert answer.status_code == 404, (path, answer.status_code)


def _echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.url.path)


def test_a_route_that_takes_any_path_still_never_redirects_to_another_host() -> None:
    # No route of ours takes a path that begins with two slashes; one that did must still not
    # turn `//evil.example` into a Location of `//evil.example/` (a protocol-relative URL).
    app = Starlette(routes=[Route("/{rest:path}/", _echo)])
    redirect_slashes_here(app.router)
    with serving(app) as url, httpx.Client(base_url=url) as client:
        answer = client.get("/docs?x=1", headers=EVIL)
        assert answer.status_code == 307 and location_of(answer) == "/docs/?x=1"
        for path in ["//evil.example", "/\\evil.example", "//evil.example/x"]:
            answer = client.get(url + path, headers=EVIL)
            assert location_of(answer) is None, (path, answer.headers.get("location"))
            assert answer.status_code == 404
