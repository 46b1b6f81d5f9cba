"""The campaign summary: people and machines apart, unique by contact, rates over recipients."""

from __future__ import annotations

from typing import Any

from ..api.conftest import Api, Tenant
from .conftest import EOP_IP, MPP, OUTLOOK, SAFARI, SENT, Campaign, H, M, make_campaign

Story = tuple[Api, Tenant, Campaign]

EOP = "Microsoft Exchange Online Protection address range (Safe Links / Safe Attachments scan)"
MPP_REASON = "Apple Mail Privacy Protection: user agent is exactly 'Mozilla/5.0'"
GMAIL_REASON = "Gmail image proxy (GoogleImageProxy): a real open, via Google's proxy"


def _summary(tenant: Tenant, campaign: Campaign) -> dict[str, Any]:
    r = tenant.get(f"/campaigns/{campaign.id}/report")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_the_story_in_numbers(story: Story) -> None:
    _, tenant, campaign = story
    s = _summary(tenant, campaign)
    assert (s["sent"], s["recipients"], s["failed"]) == (7, 7, 1)
    assert (s["bounced"], s["unsubscribed"]) == (1, 1)
    assert s["messages"] == {"failed": 1, "sent": 7}
    opens = s["opens"]
    # ann 2, cy 1 (after the scan), dee 2 (one a forward), eve 1 through Gmail's proxy.
    assert opens["human"] | {"proxy_open": None} == {"unique": 4, "total": 6, "proxy_open": None}
    assert opens["human"]["proxy_open"] == {
        "unique": 1,
        "total": 1,
        "by_reason": [{"classification": "proxy_open", "reason": GMAIL_REASON, "count": 1}],
    }
    assert opens["machine"] == {
        "unique": 2,
        "total": 2,
        "by_classification": {"apple_mpp": 1, "scanner": 1},
        "by_reason": [
            {"classification": "apple_mpp", "reason": MPP_REASON, "count": 1},
            {"classification": "scanner", "reason": EOP, "count": 1},
        ],
    }
    clicks = s["clicks"]
    # ann and eve clicked; hal's click turned out to be a scanner's (honeypot 3 s later).
    assert clicks["human"] == {"unique": 2, "total": 2}
    assert clicks["machine"] == {
        "unique": 2,
        "total": 5,
        "by_classification": {"scanner": 5},
        "by_reason": [
            {"classification": "scanner", "reason": EOP, "count": 3},
            {
                "classification": "scanner",
                "reason": "honeypot link clicked (invisible to people)",
                "count": 1,
            },
            {
                "classification": "scanner",
                "reason": "within N s of a honeypot click (N s before it)",
                "count": 1,
            },
        ],
    }
    assert s["rates"] == {
        "open": round(4 / 7, 4),
        "click": round(2 / 7, 4),
        "click_to_open": 0.5,
        "machine_open": round(2 / 7, 4),
        "machine_click": round(2 / 7, 4),
        "bounce": round(1 / 7, 4),
        "unsubscribe": round(1 / 7, 4),
        "reply": 0.0,
        "read": round(4 / 7, 4),  # nobody replied: the human openers
    }


def test_a_new_campaign_reports_zeros_and_no_rates(api: Api) -> None:
    tenant = api.account("new@acme.example")
    campaign = make_campaign(api.engine, tenant.account_id)
    s = _summary(tenant, campaign)
    assert (s["sent"], s["recipients"], s["bounced"], s["unsubscribed"]) == (0, 0, 0, 0)
    assert s["opens"]["human"]["total"] == s["clicks"]["machine"]["total"] == 0
    assert s["opens"]["machine"]["by_reason"] == []
    assert set(s["rates"].values()) == {None}


def test_unique_counts_contacts_not_messages(api: Api) -> None:
    """A two-step sequence: ann gets two messages and opens both; she is one unique opener."""
    tenant = api.account("seq@acme.example")
    campaign = make_campaign(api.engine, tenant.account_id, ["ann", "bob"])
    campaign.add_message("ann", label="ann#2")
    campaign.record(
        campaign.hit("ann", "open", SENT + H, "198.51.100.7", OUTLOOK),
        campaign.hit("ann#2", "open", SENT + 30 * H, "198.51.100.7", OUTLOOK),
        campaign.hit("ann#2", "click", SENT + 30 * H + M, "198.51.100.7", SAFARI, link=2),
        campaign.hit("bob", "open", SENT + 2 * M, "17.58.1.9", MPP),
        campaign.hit("ann#2", "open", SENT + 2 * M, "17.58.1.9", MPP),
    )
    s = _summary(tenant, campaign)
    assert (s["sent"], s["recipients"]) == (3, 2)
    assert s["opens"]["human"]["unique"] == 1 and s["opens"]["human"]["total"] == 2
    assert s["opens"]["machine"]["unique"] == 2 and s["opens"]["machine"]["total"] == 2
    assert s["clicks"]["human"] == {"unique": 1, "total": 1}
    assert s["rates"]["open"] == 0.5  # one of two recipients, not one of three messages


def test_suppressions_count_only_after_the_campaign_wrote_to_them(api: Api) -> None:
    """Suppressions are per account: one added before this campaign made a message for the
    address is not this campaign's doing; one added later (from anywhere) is."""
    tenant = api.account("sup@acme.example")
    campaign = make_campaign(api.engine, tenant.account_id, ["ann", "bob", "cy"])
    campaign.suppress("ann", "bounced", SENT - 2 * H)  # before the message was made
    campaign.suppress("bob", "bounced", SENT + 10 * 24 * H)
    campaign.suppress("cy", "manual", SENT + H)
    s = _summary(tenant, campaign)
    assert (s["bounced"], s["unsubscribed"]) == (1, 0)


def test_a_human_click_later_condemned_by_a_honeypot_moves_to_machine(api: Api) -> None:
    tenant = api.account("hp@acme.example")
    campaign = make_campaign(api.engine, tenant.account_id, ["ann"])
    ip = "198.51.100.9"
    campaign.record(campaign.hit("ann", "click", SENT + H, ip, SAFARI, link=1))
    before = _summary(tenant, campaign)["clicks"]
    assert before["human"] == {"unique": 1, "total": 1} and before["machine"]["total"] == 0
    campaign.record(campaign.hit("ann", "click", SENT + H + 4000, ip, SAFARI, 0, honeypot=True))
    after = _summary(tenant, campaign)["clicks"]
    assert after["human"] == {"unique": 0, "total": 0}
    assert after["machine"]["total"] == 2 and after["machine"]["by_classification"] == {
        "scanner": 2
    }


def test_scanner_clicks_never_count_as_people(api: Api) -> None:
    tenant = api.account("eop@acme.example")
    campaign = make_campaign(api.engine, tenant.account_id, ["cy"])
    campaign.record(
        *(campaign.hit("cy", "click", SENT + 20_000 + n, EOP_IP, SAFARI, link=n) for n in (1, 2, 3))
    )
    s = _summary(tenant, campaign)
    assert s["clicks"]["human"]["total"] == 0 and s["rates"]["click"] == 0.0
    assert s["clicks"]["machine"]["unique"] == 1 and s["rates"]["machine_click"] == 1.0
