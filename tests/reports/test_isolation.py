"""Reports show one campaign of one account: other accounts' campaigns do not exist."""

from __future__ import annotations

import pytest

from pixeltrail.platform.errors import NotFound
from pixeltrail.platform.reports.summary import campaign_summary

from ..api.conftest import Api, Tenant
from .conftest import OUTLOOK, SAFARI, SENT, Campaign, H, make_campaign

Story = tuple[Api, Tenant, Campaign]
ROUTES = (
    "/report",
    "/report/contacts",
    "/report/contacts.csv",
    "/report/links",
    "/report/timeline",
)


@pytest.mark.parametrize("route", ROUTES)
def test_another_accounts_campaign_answers_like_a_missing_one(story: Story, route: str) -> None:
    api, _, campaign = story
    mallory = api.account("mallory@other.example")
    theirs = mallory.get(f"/campaigns/{campaign.id}{route}")
    missing = mallory.get(f"/campaigns/cmp_doesnotexist0000{route}")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    assert theirs.json()["error"]["code"] == "not_found"


def test_reports_need_a_key(story: Story) -> None:
    api, _, campaign = story
    r = api.client.get(f"/api/v1/campaigns/{campaign.id}/report")
    assert r.status_code == 401


def test_campaign_summary_for_the_campaign_route_checks_the_account(story: Story) -> None:
    api, tenant, campaign = story
    mallory = api.account("mallory@other.example")
    with api.engine.connect() as conn:
        assert campaign_summary(conn, tenant.account_id, campaign.id)["sent"] == 7
        with pytest.raises(NotFound):
            campaign_summary(conn, mallory.account_id, campaign.id)


def test_a_contact_in_two_campaigns_is_counted_in_each_for_its_own(api: Api) -> None:
    tenant = api.account("two@acme.example")
    spring = make_campaign(api.engine, tenant.account_id, ["ann", "bob"])
    autumn = make_campaign(api.engine, tenant.account_id)
    autumn.contact["ann"] = spring.contact["ann"]
    autumn.add_message("ann")
    spring.record(spring.hit("ann", "open", SENT + H, "198.51.100.7", OUTLOOK))
    autumn.record(
        autumn.hit("ann", "open", SENT + 2 * H, "198.51.100.7", OUTLOOK),
        autumn.hit("ann", "click", SENT + 2 * H + 5000, "198.51.100.7", SAFARI, link=3),
    )
    one = tenant.get(f"/campaigns/{spring.id}/report").json()
    two = tenant.get(f"/campaigns/{autumn.id}/report").json()
    assert (one["recipients"], one["opens"]["human"]["total"], one["clicks"]["human"]["total"]) == (
        2,
        1,
        0,
    )
    assert (two["recipients"], two["opens"]["human"]["total"], two["clicks"]["human"]["total"]) == (
        1,
        1,
        1,
    )
    assert tenant.get(f"/campaigns/{spring.id}/report/links").json()["items"] == []
    rows = tenant.get(f"/campaigns/{autumn.id}/report/contacts").json()["items"]
    assert [(r["email"], r["open_count"], r["click_count"]) for r in rows] == [
        ("ann@example.com", 1, 1)
    ]
