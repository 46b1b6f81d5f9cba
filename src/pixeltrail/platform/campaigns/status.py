"""Where a campaign is in its life, and where each of its contacts is in its sequence."""

from __future__ import annotations

from enum import StrEnum


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    FINISHED = "finished"


class EnrollmentStatus(StrEnum):
    """A contact in a campaign: still in the sequence (active), through every step (finished),
    or ended early: by a reply (replied, when the campaign stops on replies), a bounce (bounced)
    or an unsubscribe (unsubscribed). `stopped` is how sequences ended that way before the
    reason was kept."""

    ACTIVE = "active"
    STOPPED = "stopped"
    FINISHED = "finished"
    REPLIED = "replied"
    BOUNCED = "bounced"
    UNSUBSCRIBED = "unsubscribed"
