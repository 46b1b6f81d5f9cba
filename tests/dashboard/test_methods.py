"""The route table's methods and the pages' error flow: each route answers the methods it
names (a page GET, an action POST, a page with its form both) and any other with a 405 page
saying which (`Allow`); every POST meets the CSRF check before its page; a refused form comes
back with its error, while a page whose own object is missing is the 404 page."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import func, select
from starlette.routing import Route

from pixeltrail.store.schema import webhook_deliveries
from pixeltrail.web.dashboard.app import ROUTES

from .conftest import Site, User
from .test_campaigns import new_campaign

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
PAGE = frozenset({"GET", "HEAD"})
ACTION = frozenset({"POST"})
FORM = PAGE | ACTION
# The last word of an action's path: these change something, so a link never does it.
ACTIONS = {
    "signout",
    "launch",
    "pause",
    "resume",
    "steps",
    "draft",
    "all",
    "role",
    "remove",
    "revoke",
    "edit",
    "delete",
    "test",
    "retry",
    "fields",
    "verify",
}
NOT_FOUND = "There is nothing here, or it is not yours."


def routes() -> list[Route]:
    found = [route for route in ROUTES if isinstance(route, Route)]
    assert len(found) > 40
    return found


def filled(route: Route) -> str:
    """The route's path with made-up ids: a step number for a step, else an id of nobody's."""
    return _PARAM.sub(lambda m: "1" if m.group(1) == "position" else "x", route.path)


def allowed(answer: httpx.Response) -> frozenset[str]:
    return frozenset(method.strip() for method in answer.headers["allow"].split(","))


def test_every_route_names_its_methods_and_actions_take_post_only() -> None:
    for route in routes():
        assert route.methods is not None, route.path
        assert frozenset(route.methods) in {PAGE, ACTION, FORM}, route.path
        if route.path.rsplit("/", 1)[1] in ACTIONS:
            assert route.methods == ACTION, route.path


def _wrong_method(owner: User, route: Route, token: str, origin: str) -> httpx.Response:
    methods = frozenset(route.methods or ())
    if methods == PAGE:  # a real form post to a page: with the token, from our origin
        return owner.client.post(
            filled(route), data={"csrf_token": token}, headers={"Origin": origin}
        )
    return owner.client.request(
        "GET" if methods == ACTION else "PUT", filled(route), headers={"Origin": origin}
    )


def test_a_method_a_route_does_not_take_is_a_405_page_naming_those_it_does(site: Site) -> None:
    owner = site.sign_up()
    token = owner.csrf("/campaigns")
    for route in routes():
        answer = _wrong_method(owner, route, token, site.url)
        assert answer.status_code == 405, (route.path, answer.status_code, answer.text[:300])
        assert allowed(answer) == frozenset(route.methods or ()), route.path
        assert "Not possible" in answer.text, route.path
        assert answer.headers["content-security-policy"].startswith("default-src 'self'")
    # Before the session is looked at: not a redirect to sign in.
    visitor = site.visitor()
    for path in ("/signout", "/domains/x/remove", "/settings/api-keys/x/revoke"):
        answer = visitor.get(path)
        assert answer.status_code == 405, path
        assert allowed(answer) == ACTION


def test_a_link_to_an_action_does_nothing(site: Site) -> None:
    owner = site.sign_up()
    # Signing out is a form's: a GET used to send the user on, now it says it is not possible.
    out = owner.get("/signout")
    assert out.status_code == 405
    assert out.headers["allow"] == "POST"
    assert owner.get("/campaigns").status_code == 200
    # A webhook's test delivery: a GET used to say "queued" and queue nothing.
    created = owner.post(
        "/settings/webhooks",
        {"url": "https://hooks.example.com/pt", "event_types": ["message.opened"]},
    )
    assert created.status_code == 200
    endpoint = re.search(r'href="/settings/webhooks/([^"]+)"', created.text)
    assert endpoint is not None
    path = f"/settings/webhooks/{endpoint.group(1)}"
    assert owner.get(f"{path}/test").status_code == 405
    assert "A test delivery is queued" not in owner.get(path).text
    with site.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar() == 0
    assert owner.post(f"{path}/test", token_from=path).status_code == 303
    # A page posted to with its own form's token: 405, nothing else.
    campaign_id = new_campaign(owner)
    report = f"/campaigns/{campaign_id}/report"
    posted = owner.post(report, token_from=report)
    assert posted.status_code == 405
    assert allowed(posted) == PAGE


def test_every_post_meets_the_csrf_check_before_its_page(site: Site) -> None:
    owner = site.sign_up()
    for route in routes():
        if "POST" not in (route.methods or ()):
            continue
        # Without the form's token: refused before the page looks for its (made-up) ids.
        answer = owner.client.post(filled(route), data={}, headers={"Origin": site.url})
        assert answer.status_code == 403, (route.path, answer.status_code)
        assert "This form has expired" in answer.text, route.path


def test_a_form_naming_something_missing_comes_back_with_why(site: Site) -> None:
    owner = site.sign_up()
    # An address that is not on the suppression list: the list, with the reason, as a 404.
    unlisted = owner.post(
        "/contacts/suppressions/remove",
        {"email": "nobody@example.com"},
        token_from="/contacts/suppressions",
    )
    assert unlisted.status_code == 404
    assert "nobody@example.com is not on the suppression list" in unlisted.text
    assert "The list is empty" in unlisted.text
    # A campaign sending from a mailbox that is not there: the form again, as posted.
    campaign = owner.post("/campaigns", {"name": "Q1 outreach", "mailbox_id": "mbx_gone"})
    assert campaign.status_code == 404
    assert "no such mailbox" in campaign.text
    assert 'value="Q1 outreach"' in campaign.text
    # Contacts that are not there: the campaign's Contacts tab, saying so.
    campaign_id = new_campaign(owner)
    tab = f"/campaigns/{campaign_id}/contacts"
    enrolled = owner.post(tab, {"contact_id": "ctc_gone"}, token_from=tab)
    assert enrolled.status_code == 404
    assert "1 of these contacts does not exist; nothing was enrolled" in enrolled.text
    assert f'href="{tab}" aria-current="page"' in enrolled.text
    assert NOT_FOUND not in enrolled.text


def test_a_form_for_something_missing_is_the_404_page(site: Site) -> None:
    owner = site.sign_up()
    for path in (
        "/contacts/ctc_gone",
        "/contacts/ctc_gone/fields",
        "/contacts/ctc_gone/delete",
        "/settings/mailboxes/mbx_gone/edit",
        "/settings/mailboxes/mbx_gone/delete",
        "/domains/dom_gone/remove",
        "/settings/users/usr_gone/role",
        "/campaigns/cmp_gone/launch",
        "/campaigns/cmp_gone/schedule",
        "/campaigns/cmp_gone/contacts",
    ):
        answer = owner.post(
            path, {"daily_limit": "5", "role": "member", "contact_id": "x"}, token_from="/contacts"
        )
        assert answer.status_code == 404, (path, answer.status_code)
        assert NOT_FOUND in answer.text, path
