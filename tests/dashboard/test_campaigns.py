"""Campaign pages over HTTP: the list, a new campaign, steps with their preview, contacts,
schedule, tracking settings, launch/pause/resume, and what another account or a forged form
gets."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
from sqlalchemy import func, insert, select, update

from pixeltrail.platform.accounts.accounts import create_account
from pixeltrail.platform.accounts.users import set_password
from pixeltrail.platform.campaigns.templates import MAX_SOURCE
from pixeltrail.store.db import write_transaction
from pixeltrail.store.schema import (
    campaign_steps,
    campaigns,
    enrollments,
    messages,
    report_campaigns,
)
from pixeltrail.web.dashboard.campaigns.preview import MAX_DRAFTS, PreviewDrafts

from ..campaigns.conftest import add_contact, add_domain, add_message, set_domain_status
from .conftest import PASSWORD, Site, User

_MAILBOX = re.compile(r'<option value="([^"]+)"')
STEP = {
    "subject": "Hello {{ first_name }}",
    "delay_days": "0",
    "html": "<p>Hi {{ first_name }}</p>",
}


def new_campaign(user: User, name: str = "Q1 outreach") -> str:
    mailbox = _MAILBOX.search(user.get("/campaigns").text)
    assert mailbox, "the new campaign form offers no mailbox"
    answer = user.post("/campaigns", {"name": name, "mailbox_id": mailbox.group(1)})
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/campaigns/([A-Za-z0-9_-]+)", answer.headers["location"])
    assert found, answer.headers["location"]
    return found.group(1)


def add_step(user: User, campaign_id: str, **fields: str) -> httpx.Response:
    path = f"/campaigns/{campaign_id}"
    return user.post(f"{path}/steps", {**STEP, **fields}, token_from=path)


def account_of(site: Site, campaign_id: str) -> str:
    with site.engine.connect() as conn:
        return str(
            conn.execute(
                select(campaigns.c.account_id).where(campaigns.c.id == campaign_id)
            ).scalar_one()
        )


def campaign_record(site: Site, campaign_id: str) -> dict[str, Any]:
    with site.engine.connect() as conn:
        row = conn.execute(select(campaigns).where(campaigns.c.id == campaign_id)).one()
    return dict(row._mapping)


def enroll(site: Site, user: User, campaign_id: str, email: str, first_name: str = "Ada") -> str:
    contact = add_contact(site.engine, account_of(site, campaign_id), email, first_name)
    path = f"/campaigns/{campaign_id}/contacts"
    answer = user.post(path, {"contact_id": contact}, token_from=path)
    assert answer.status_code == 303, answer.text
    return contact


def section(page: str, element_id: str) -> str:
    """The HTML of one <section id=...> of a page."""
    start = page.index(f'id="{element_id}"')
    return page[start : page.index("</section>", start)]


def another_account(site: Site, email: str = "mallory@other.example") -> User:
    with write_transaction(site.engine) as conn:
        create_account(conn, "Other", email)
        set_password(conn, email, PASSWORD)
    return site.sign_in(email)


def test_create_a_campaign_add_two_steps_and_see_it_listed(site: Site) -> None:
    owner = site.sign_up()
    page = owner.get("/campaigns")
    assert "Built-in outbox" in page.text  # the mailbox of a new account, ready to choose
    campaign_id = new_campaign(owner, "Spring launch")
    assert add_step(owner, campaign_id).status_code == 303
    second = add_step(owner, campaign_id, subject="Following up", delay_days="3")
    assert second.status_code == 303
    assert second.headers["location"].endswith("#step-2")
    sequence = html.unescape(owner.get(f"/campaigns/{campaign_id}").text)
    assert "Step 1" in sequence and "Step 2" in sequence
    assert 'value="Following up"' in sequence
    with site.engine.connect() as conn:
        rows = conn.execute(
            select(campaign_steps.c.position, campaign_steps.c.subject, campaign_steps.c.delay_days)
            .where(campaign_steps.c.campaign_id == campaign_id)
            .order_by(campaign_steps.c.position)
        ).all()
    assert [tuple(r) for r in rows] == [(1, "Hello {{ first_name }}", 0), (2, "Following up", 3)]

    # The list: status, steps, contacts and the headline numbers people produced.
    record = campaign_record(site, campaign_id)
    first = enroll(site, owner, campaign_id, "ada@acme.example")
    second_contact = enroll(site, owner, campaign_id, "bob@acme.example", "Bob")
    for contact in (first, second_contact):
        add_message(site.engine, record, record["account_id"], contact, status="sent")
    add_message(site.engine, record, record["account_id"], first, position=2)
    with write_transaction(site.engine) as conn:
        conn.execute(
            insert(report_campaigns).values(
                campaign_id=campaign_id,
                opens=5,
                unique_opens=2,
                proxy_opens=0,
                unique_proxy_opens=0,
                machine_opens=7,
                unique_machine_opens=2,
                clicks=1,
                unique_clicks=1,
                machine_clicks=4,
                unique_machine_clicks=1,
            )
        )
    listing = owner.get("/campaigns").text
    row = listing[
        listing.index("Spring launch") : listing.index("</tr>", listing.index("Spring launch"))
    ]
    cells = re.findall(r'<td class="num">(\d+)</td>', row)
    assert cells == ["2", "2", "2", "2", "1"]  # steps, contacts, sent, opened, clicked
    assert ">draft<" in row


def test_a_new_campaign_needs_a_name_and_a_mailbox_of_this_account(site: Site) -> None:
    owner = site.sign_up()
    answer = owner.post("/campaigns", {"name": "", "mailbox_id": "mbx_nope"})
    assert answer.status_code == 422
    assert 'class="error"' in answer.text
    answer = owner.post("/campaigns", {"name": "Typed", "mailbox_id": "mbx_nope"})
    assert answer.status_code == 404
    assert "mailbox" in answer.text
    assert 'value="Typed"' in answer.text  # the form comes back as typed
    with site.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(campaigns)).scalar_one() == 0


def test_template_errors_are_shown_beside_their_step_with_the_line(site: Site) -> None:
    owner = site.sign_up()
    campaign_id = new_campaign(owner)
    assert add_step(owner, campaign_id).status_code == 303
    bad = add_step(owner, campaign_id, html="<p>Hi</p>\n<p>{{ frist_name }}</p>")
    assert bad.status_code == 422
    new_step = html.unescape(section(bad.text, "step-new"))
    assert "line 2: unknown variable 'frist_name'" in new_step
    assert "{{ frist_name }}" in new_step  # what was typed stays in the form
    assert "frist_name" not in html.unescape(section(bad.text, "step-1"))

    path = f"/campaigns/{campaign_id}"
    edit = owner.post(
        f"{path}/steps/1", {**STEP, "subject": "Hi {% for x in y %}"}, token_from=path
    )
    assert edit.status_code == 422
    assert "step 1 subject" in html.unescape(section(edit.text, "step-1"))
    edit = owner.post(
        f"{path}/steps/1", {**STEP, "subject": "Kept", "delay_days": "soon"}, token_from=path
    )
    assert edit.status_code == 422
    assert "a whole number of days" in section(edit.text, "step-1")
    assert 'value="Kept"' in section(edit.text, "step-1")
    with site.engine.connect() as conn:
        saved = (
            conn.execute(
                select(campaign_steps.c.subject).where(campaign_steps.c.campaign_id == campaign_id)
            )
            .scalars()
            .all()
        )
    assert saved == [STEP["subject"]]  # nothing half-written


def test_steps_are_edited_and_deleted(site: Site) -> None:
    owner = site.sign_up()
    campaign_id = new_campaign(owner)
    path = f"/campaigns/{campaign_id}"
    add_step(owner, campaign_id, subject="One")
    add_step(owner, campaign_id, subject="Two")
    answer = owner.post(f"{path}/steps/2", {**STEP, "subject": "Two, edited"}, token_from=path)
    assert answer.status_code == 303
    answer = owner.post(f"{path}/steps/1/delete", {}, token_from=path)
    assert answer.status_code == 303
    with site.engine.connect() as conn:
        subjects = (
            conn.execute(
                select(campaign_steps.c.subject).where(campaign_steps.c.campaign_id == campaign_id)
            )
            .scalars()
            .all()
        )
    assert subjects == ["Two, edited"]
    assert owner.post(f"{path}/steps/5", STEP, token_from=path).status_code == 404


def test_the_preview_renders_the_first_contact_escaped_in_a_strict_sandbox(site: Site) -> None:
    owner = site.sign_up()
    campaign_id = new_campaign(owner)
    add_step(owner, campaign_id, html='<p style="color:red">Hi {{ first_name }}</p>')
    page = owner.get(f"/campaigns/{campaign_id}").text
    frames = re.findall(r"<iframe[^>]*>", page)
    assert frames and all(" sandbox " in f and "allow-scripts" not in f for f in frames)
    assert f'src="/campaigns/{campaign_id}/steps/1/preview"' in page

    preview = owner.get(f"/campaigns/{campaign_id}/steps/1/preview")
    assert preview.status_code == 200
    csp = preview.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert preview.headers["x-frame-options"] == "SAMEORIGIN"
    # Nobody enrolled yet: a sample contact.
    assert "Hi Ada</p>" in preview.text and "Analytical Engines" in preview.text

    enroll(site, owner, campaign_id, "eve@acme.example", '<img src=x onerror="alert(1)">')
    preview = owner.get(f"/campaigns/{campaign_id}/steps/1/preview")
    assert (
        '<p style="color:red">Hi &lt;img src=x onerror=&#34;alert(1)&#34;&gt;</p>' in preview.text
    )
    assert "<img src=x" not in preview.text
    assert "eve@acme.example" in preview.text

    # What is being typed is rendered without saving it.
    path = f"/campaigns/{campaign_id}"
    draft = owner.post(
        f"{path}/steps/1/preview",
        {**STEP, "subject": "Draft for {{ email }}", "html": "<h1>New {{ first_name }}</h1>"},
        token_from=path,
    )
    assert draft.status_code == 200
    assert "Draft for eve@acme.example" in draft.text and "<h1>New &lt;img" in draft.text
    assert draft.headers["content-security-policy"] == csp
    # The live preview: a draft kept for this user's step, shown by the next GET that asks.
    kept = owner.post(
        f"{path}/steps/1/draft", {**STEP, "html": "<h2>Draft body</h2>"}, token_from=path
    )
    assert kept.status_code == 204
    assert "Draft body" in owner.get(f"{path}/steps/1/preview?draft=1").text
    assert "Draft body" not in owner.get(f"{path}/steps/1/preview").text
    broken = owner.post(f"{path}/steps/new/preview", {**STEP, "html": "{{ x }}"}, token_from=path)
    assert broken.status_code == 422 and "unknown variable" in html.unescape(broken.text)
    with site.engine.connect() as conn:
        assert conn.execute(select(campaign_steps.c.html)).scalar_one() == (
            '<p style="color:red">Hi {{ first_name }}</p>'
        )


def test_a_filter_call_that_cannot_render_is_refused_and_its_preview_says_why(
    site: Site,
) -> None:
    owner = site.sign_up()
    campaign_id = new_campaign(owner)
    path = f"/campaigns/{campaign_id}"
    assert add_step(owner, campaign_id).status_code == 303
    bad = add_step(owner, campaign_id, html="<p>Hi</p>\n<p>{{ first_name|upper(1) }}</p>")
    assert bad.status_code == 422
    new_step = html.unescape(section(bad.text, "step-new"))
    assert "line 2: filter 'upper' takes no arguments" in new_step
    # The live preview of what is typed says why instead of failing.
    typed = owner.post(
        f"{path}/steps/new/preview",
        {**STEP, "html": "<p>{{ first_name|truncate(foo=1) }}</p>"},
        token_from=path,
    )
    assert typed.status_code == 422
    assert typed.headers["content-security-policy"].startswith("default-src 'none'")
    shown = html.unescape(typed.text)
    assert "Cannot preview: html, line 1: filter 'truncate' has no argument 'foo'" in shown
    # So does a step stored before such calls were checked.
    with write_transaction(site.engine) as conn:
        conn.execute(
            update(campaign_steps)
            .where(campaign_steps.c.campaign_id == campaign_id)
            .values(html="<p>{{ first_name|default(boolean=true) }}</p>")
        )
    saved = owner.get(f"{path}/steps/1/preview")
    assert saved.status_code == 422
    assert "filter 'default' has no argument 'boolean'" in html.unescape(saved.text)
    assert owner.get(path).status_code == 200


def test_contacts_are_searched_added_all_and_removed(site: Site) -> None:
    owner = site.sign_up()
    campaign_id = new_campaign(owner)
    account = account_of(site, campaign_id)
    ada = add_contact(site.engine, account, "ada@acme.example", "Ada")
    add_contact(site.engine, account, "grace@navy.example", "Grace")
    path = f"/campaigns/{campaign_id}/contacts"
    found = owner.get(path, params={"q": "navy"}).text
    assert "grace@navy.example" in found and "ada@acme.example" not in found
    answer = owner.post(path, {"contact_id": ada}, token_from=path)
    assert answer.status_code == 303
    page = owner.get(path)
    assert "Added 1 contact." in html.unescape(page.text)
    answer = owner.post(f"{path}/all", {}, token_from=path)
    assert "1 already in the campaign" in html.unescape(owner.get(answer.headers["location"]).text)
    with site.engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).where(enrollments.c.campaign_id == campaign_id)
            ).scalar_one()
            == 2
        )
    answer = owner.post(f"{path}/remove", {"contact_id": ada}, token_from=path)
    assert answer.status_code == 303
    listing = owner.get(path).text
    assert "grace@navy.example" in listing and "ada@acme.example" not in listing
    nothing = owner.post(path, {}, token_from=path)
    assert nothing.status_code == 422 and "choose at least one contact" in nothing.text


def test_a_contact_with_messages_is_stopped_not_forgotten(site: Site) -> None:
    owner = site.sign_up()
    campaign_id = new_campaign(owner)
    add_step(owner, campaign_id)
    add_step(owner, campaign_id, subject="Second")
    ada = enroll(site, owner, campaign_id, "ada@acme.example")
    record = campaign_record(site, campaign_id)
    sent = add_message(site.engine, record, record["account_id"], ada, status="sent")
    waiting = add_message(site.engine, record, record["account_id"], ada, position=2)
    path = f"/campaigns/{campaign_id}/contacts"
    answer = owner.post(f"{path}/remove", {"contact_id": ada}, token_from=path)
    assert answer.status_code == 303
    page = html.unescape(owner.get(answer.headers["location"]).text)
    assert "nothing more is sent to this contact" in page
    assert "ada@acme.example" in page and ">stopped<" in page
    with site.engine.connect() as conn:
        states = dict(conn.execute(select(messages.c.id, messages.c.status)).all())
        enrolled = conn.execute(select(enrollments.c.status)).scalar_one()
    assert states == {sent: "sent", waiting: "cancelled"}
    assert enrolled == "stopped"
    # Someone else's contact id is refused without adding anything.
    stranger = owner.post(path, {"contact_id": "ct_not_mine"}, token_from=path)
    assert stranger.status_code == 404 and "nothing was enrolled" in stranger.text


def test_schedule_is_saved_and_a_bad_window_is_explained(site: Site) -> None:
    owner = site.sign_up()
    campaign_id = new_campaign(owner)
    path = f"/campaigns/{campaign_id}/schedule"
    form = {
        "timezone": "Europe/Paris",
        "days": ["mon", "wed", "fri"],
        "start_hour": "9",
        "end_hour": "17",
        "daily_cap": "40",
    }
    assert owner.post(path, form).status_code == 303
    assert campaign_record(site, campaign_id)["schedule"] == {
        "timezone": "Europe/Paris",
        "days": ["mon", "wed", "fri"],
        "start_hour": 9,
        "end_hour": 17,
        "daily_cap": 40,
    }
    page = owner.get(path).text
    assert '<option value="Europe/Paris" selected>' in page
    bad = owner.post(path, {**form, "start_hour": "18"})
    assert bad.status_code == 422
    assert "ends after it starts" in bad.text
    bad_zone = owner.post(path, {**form, "timezone": "Mars/Olympus"})
    assert bad_zone.status_code == 422 and "unknown time zone" in html.unescape(bad_zone.text)
    assert campaign_record(site, campaign_id)["schedule"]["end_hour"] == 17


def test_click_tracking_is_disabled_until_a_domain_is_verified(site: Site) -> None:
    owner = site.sign_up()
    campaign_id = new_campaign(owner)
    path = f"/campaigns/{campaign_id}/settings"
    page = owner.get(path).text
    switch = re.search(r'<input type="checkbox" name="track_clicks"[^>]*>', page)
    assert switch and "disabled" in switch.group(0)
    assert "until you have a verified tracking domain" in page
    assert 'href="/domains"' in section_of_label(page, "click-switch")
    # Forcing it anyway is refused with the reason, and nothing changes.
    forced = owner.post(path, {"track_opens": "on", "track_clicks": "on"})
    assert forced.status_code == 409
    assert "Click tracking needs a verified tracking domain" in forced.text
    assert campaign_record(site, campaign_id)["track_clicks"] is False

    domain = add_domain(site.engine, account_of(site, campaign_id), "t.acme.example")
    set_domain_status(site.engine, domain, "verified")
    page = owner.get(path).text
    switch = re.search(r'<input type="checkbox" name="track_clicks"[^>]*>', page)
    assert switch and "disabled" not in switch.group(0)
    assert "t.acme.example" in page
    answer = owner.post(path, {"track_opens": "on", "track_clicks": "on"})
    assert answer.status_code == 303
    record = campaign_record(site, campaign_id)
    assert (record["track_clicks"], record["tracking_domain_id"]) == (True, domain)
    assert (record["track_opens"], record["track_text_links"]) == (True, False)

    second = add_domain(site.engine, account_of(site, campaign_id), "t2.acme.example")
    set_domain_status(site.engine, second, "verified")
    # A form naming no domain: the only verified one is picked, and there are two now.
    fresh = f"/campaigns/{new_campaign(owner, 'Second')}/settings"
    unclear = owner.post(fresh, {"track_clicks": "on"})
    assert unclear.status_code == 409 and "choose one below" in unclear.text
    chosen = owner.post(path, {"track_clicks": "on", "tracking_domain_id": second})
    assert chosen.status_code == 303
    assert campaign_record(site, campaign_id)["tracking_domain_id"] == second


def test_click_tracking_through_this_servers_own_address_is_refused(site: Site) -> None:
    owner = site.sign_up()
    campaign_id = new_campaign(owner)
    path = f"/campaigns/{campaign_id}/settings"
    domain = add_domain(site.engine, account_of(site, campaign_id), "t.acme.example")
    set_domain_status(site.engine, domain, "verified")
    form = {"track_opens": "on", "track_clicks": "on", "tracking_domain_id": domain}
    assert owner.post(path, form).status_code == 303
    # "This server's own address" with clicks on: refused, the form as posted, nothing saved.
    own = {"track_opens": "on", "track_clicks": "on", "tracking_domain_id": ""}
    refused = owner.post(path, own)
    assert refused.status_code == 409
    page = html.unescape(refused.text)
    assert "Settings saved" not in page
    assert "not this server's own address" in page
    assert "choose a tracking domain below, or switch click tracking off" in page
    switch = re.search(r'<input type="checkbox" name="track_clicks"[^>]*>', refused.text)
    assert switch and "checked" in switch.group(0)
    assert f'<option value="{domain}" selected>' not in refused.text
    record = campaign_record(site, campaign_id)
    assert (record["track_clicks"], record["tracking_domain_id"]) == (True, domain)
    # A campaign not tracking clicks yet is refused the same way, not given the domain.
    other = new_campaign(owner, "Second")
    refused = owner.post(f"/campaigns/{other}/settings", own)
    assert refused.status_code == 409
    record = campaign_record(site, other)
    assert (record["track_clicks"], record["tracking_domain_id"]) == (False, None)
    # Without click tracking, this server's own address is saved as chosen.
    saved = owner.post(path, {"track_opens": "on", "tracking_domain_id": ""})
    assert saved.status_code == 303
    record = campaign_record(site, campaign_id)
    assert (record["track_clicks"], record["tracking_domain_id"]) == (False, None)


def section_of_label(page: str, element_id: str) -> str:
    start = page.index(f'id="{element_id}"')
    return page[start : page.index("</label>", start)]


def test_lifecycle_and_settings_on_a_running_campaign(site: Site) -> None:
    owner = site.sign_up()
    campaign_id = new_campaign(owner)
    path = f"/campaigns/{campaign_id}"
    refused = owner.post(f"{path}/launch", {}, token_from=path)
    assert refused.status_code == 409
    assert "Add at least one step below before launching" in refused.text
    add_step(owner, campaign_id)
    refused = owner.post(f"{path}/launch", {}, token_from=path)
    assert refused.status_code == 409 and "Add contacts on the Contacts tab" in refused.text
    ada = enroll(site, owner, campaign_id, "ada@acme.example")
    bob = enroll(site, owner, campaign_id, "bob@acme.example", "Bob")
    bad = owner.post(f"{path}/launch", {"start_at": "next tuesday"}, token_from=path)
    assert bad.status_code == 422 and "start_at is an ISO 8601 time" in bad.text
    assert campaign_record(site, campaign_id)["status"] == "draft"
    launched = owner.post(f"{path}/launch", {"start_at": ""}, token_from=path)
    assert launched.status_code == 303
    assert campaign_record(site, campaign_id)["status"] == "active"
    running = owner.get(path).text
    assert "Pause" in running and "pause it to edit, add or delete steps" in running
    assert '<button type="submit" class="primary" disabled>Save step 1</button>' in running

    # Steps of an active campaign wait for a pause, and say so beside the step.
    edit = owner.post(f"{path}/steps/1", STEP, token_from=path)
    assert edit.status_code == 409 and "pause the campaign" in section(edit.text, "step-1")

    record = campaign_record(site, campaign_id)
    for contact in (ada, bob):
        add_message(site.engine, record, record["account_id"], contact)
    saved = owner.post(f"{path}/settings", {"track_text_links": "on"})
    assert saved.status_code == 303
    page = html.unescape(owner.get(saved.headers["location"]).text)
    assert "2 messages already scheduled keep their old settings" in page
    assert campaign_record(site, campaign_id)["track_opens"] is False
    with site.engine.connect() as conn:
        kept = conn.execute(select(messages.c.track_opens)).scalars().all()
    assert kept == [True, True]

    assert owner.post(f"{path}/pause", {}, token_from=path).status_code == 303
    assert campaign_record(site, campaign_id)["status"] == "paused"
    assert owner.post(f"{path}/resume", {}, token_from=path).status_code == 303
    assert campaign_record(site, campaign_id)["status"] == "active"


def test_another_accounts_campaign_is_not_found_anywhere(site: Site) -> None:
    owner = site.sign_up()
    campaign_id = new_campaign(owner)
    add_step(owner, campaign_id)
    contact = enroll(site, owner, campaign_id, "ada@acme.example")
    mallory = another_account(site)
    token_page = "/campaigns"
    base = f"/campaigns/{campaign_id}"
    for tail in ("", "/contacts", "/schedule", "/settings", "/steps/1/preview"):
        assert mallory.get(base + tail).status_code == 404, tail
    posts: dict[str, dict[str, Any]] = {
        "/steps": STEP,
        "/steps/1": STEP,
        "/steps/1/delete": {},
        "/steps/1/preview": STEP,
        "/steps/1/draft": STEP,
        "/contacts": {"contact_id": contact},
        "/contacts/all": {},
        "/contacts/remove": {"contact_id": contact},
        "/schedule": {"timezone": "UTC", "days": ["mon"], "start_hour": "0", "end_hour": "24"},
        "/settings": {"track_opens": "on"},
        "/launch": {},
        "/pause": {},
        "/resume": {},
    }
    for tail, data in posts.items():
        answer = mallory.post(base + tail, data, token_from=token_page)
        assert answer.status_code == 404, tail
    with site.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(campaign_steps)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(enrollments)).scalar_one() == 1
    assert campaign_record(site, campaign_id)["status"] == "draft"
    assert "Q1 outreach" not in mallory.get("/campaigns").text


def test_hostile_names_and_subjects_are_shown_as_text(site: Site) -> None:
    owner = site.sign_up()
    payload = '<script>alert("x")</script>'
    campaign_id = new_campaign(owner, f"Spring {payload}")
    add_step(owner, campaign_id, subject=f"Hi {payload}")
    for page in (owner.get("/campaigns").text, owner.get(f"/campaigns/{campaign_id}").text):
        assert payload not in page
        assert "&lt;script&gt;alert(" in page
    preview = owner.get(f"/campaigns/{campaign_id}/steps/1/preview").text
    assert payload not in preview and "Hi &lt;script&gt;" in preview


def test_forms_without_the_csrf_token_are_refused(site: Site) -> None:
    owner = site.sign_up()
    campaign_id = new_campaign(owner)
    origin = {"Origin": owner.url}
    for path, data in (
        ("/campaigns", {"name": "Forged", "mailbox_id": "x"}),
        (f"/campaigns/{campaign_id}/steps", STEP),
        (f"/campaigns/{campaign_id}/settings", {"track_opens": "on"}),
        (f"/campaigns/{campaign_id}/launch", {}),
    ):
        answer = owner.client.post(path, data=data, headers=origin)
        assert answer.status_code == 403, path
    with site.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(campaigns)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(campaign_steps)).scalar_one() == 0


def test_preview_drafts_stay_bounded() -> None:
    store = PreviewDrafts()
    typed = {"subject": "Hi", "delay_days": "0", "html": "<p>x</p>", "text": ""}
    for n in range(MAX_DRAFTS + 1):
        assert store.put(("user", "campaign", str(n)), typed)
    assert store.get(("user", "campaign", "0")) is None  # the oldest made room
    assert store.get(("user", "campaign", str(MAX_DRAFTS))) == typed
    too_long = {**typed, "html": "x" * (MAX_SOURCE["html"] + 1)}
    assert not store.put(("user", "campaign", "1"), too_long)
    assert store.get(("user", "campaign", "1")) == typed


def test_stopping_on_replies_is_a_setting_on_by_default(site: Site) -> None:
    owner = site.sign_up()
    campaign_id = new_campaign(owner)
    path = f"/campaigns/{campaign_id}/settings"
    box = re.compile(r'<input type="checkbox" name="stop_on_reply"[^>]*>')
    switch = box.search(owner.get(path).text)
    assert switch and "checked" in switch.group(0)
    assert "Stop the sequence when a contact replies" in owner.get(path).text
    # Unticked: the form leaves the field out, the setting goes off.
    assert owner.post(path, {"track_opens": "on"}).status_code == 303
    assert campaign_record(site, campaign_id)["stop_on_reply"] is False
    switch = box.search(owner.get(path).text)
    assert switch and "checked" not in switch.group(0)
    assert owner.post(path, {"track_opens": "on", "stop_on_reply": "on"}).status_code == 303
    assert campaign_record(site, campaign_id)["stop_on_reply"] is True


def test_sequences_ended_by_a_reply_a_bounce_or_an_unsubscribe_say_so(site: Site) -> None:
    owner = site.sign_up()
    campaign_id = new_campaign(owner)
    ended = {
        "replied": enroll(site, owner, campaign_id, "ada@example.org"),
        "bounced": enroll(site, owner, campaign_id, "bob@example.org", "Bob"),
        "unsubscribed": enroll(site, owner, campaign_id, "cy@example.org", "Cy"),
    }
    with write_transaction(site.engine) as conn:
        for status, contact in ended.items():
            conn.execute(
                update(enrollments).where(enrollments.c.contact_id == contact).values(status=status)
            )
    page = owner.get(f"/campaigns/{campaign_id}/contacts").text
    assert '<span class="badge good">replied</span>' in page
    assert '<span class="badge bad">bounced</span>' in page
    assert '<span class="badge bad">unsubscribed</span>' in page
    assert "replied: they answered, so no later step goes out" in page
