"""The Report tab with what came back: the reply rate among the headline numbers, the table per
step, each contact's replies (their text shown as text) and sequence status, the CSV export."""

from __future__ import annotations

import csv
import io
import re

from ..reports.replies_story import SCRIPT, tell_replies
from .conftest import Site
from .test_reports import _owner_with_story, _row_of, _stat


def _cells(row: str) -> list[str]:
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in cells]


def test_the_reply_rate_and_readers_are_headline_numbers(site: Site) -> None:
    owner, campaign = _owner_with_story(site)
    tell_replies(campaign)
    page = owner.get(f"/campaigns/{campaign.id}/report").text
    # ann, bob, dee and eve replied of 7 recipients; 4 opened as people, and bob replied
    assert _stat(page, "stat-replied") == "4 replied · 57.1% 5 read · 71.4% (opened or replied)"


def test_the_steps_table(site: Site) -> None:
    owner, campaign = _owner_with_story(site)
    tell_replies(campaign)
    page = owner.get(f"/campaigns/{campaign.id}/report").text
    table = re.search(r'<table class="report-steps">.*?</table>', page, re.S)
    assert table
    rows = re.findall(r"<tr>\s*<td>.*?</tr>", table.group(0), re.S)
    assert [_cells(row) for row in rows] == [
        ["1", "7", "4", "2", "3", "1", "1"],
        ["2", "2", "0", "0", "1", "1", "0"],
    ]


def test_a_contacts_replies_are_shown_as_text(site: Site) -> None:
    owner, campaign = _owner_with_story(site)
    tell_replies(campaign)
    for path in ("report", "report/live"):
        page = owner.get(f"/campaigns/{campaign.id}/{path}").text
        assert SCRIPT not in page  # the reply's script never reaches the page as markup
        ann = _row_of(page, "ann@example.com")
        assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in ann
        # her reply at 04:00 UTC is 06:00 in Paris, with its subject
        assert re.search(r"2026-03-29 06:00.*?<strong>Re: Spring</strong>", ann, re.S)
        assert "Sounds good, call me Tuesday." in ann
        assert "read by reply" not in ann  # she opened it as a person
        assert '<span class="badge sequence">replied</span>' in ann
    bob = _row_of(page, "bob@example.com")
    assert bob.count('<li class="reply">') == 2 and "read by reply" in bob
    cy = _row_of(page, "cy@example.com")
    assert "Out of office" not in cy  # an auto-reply is no reply
    assert '<span class="badge sequence">active</span>' in cy
    hal = _row_of(page, "hal@example.com")
    assert '<span class="badge sequence">bounced</span>' in hal


def test_the_csv_export_carries_replies_and_sequences(site: Site) -> None:
    owner, campaign = _owner_with_story(site)
    tell_replies(campaign)
    answer = owner.get(f"/campaigns/{campaign.id}/report.csv")
    assert answer.status_code == 200
    rows = {row["email"]: row for row in csv.DictReader(io.StringIO(answer.text))}
    bob = rows["bob@example.com"]
    assert (bob["reply_count"], bob["read_by_reply"], bob["sequence_status"]) == (
        "2",
        "yes",
        "replied",
    )
    assert rows["bob@example.com"]["replied_at"] == "2026-03-28T23:00:00.000Z"
