"""Where a campaign is in its life, and where each of its contacts is in its sequence."""

from __future__ import annotations

from enum import StrEnum


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    FINISHED = "finished"


class EnrollmentStatus(StrEnum):
    """A contact in a campaign: still in the sequence (active), taken out or stopped by a
    bounce or an unsubscribe (stopped), or through every step (finished)."""

    ACTIVE = "active"
    STOPPED = "stopped"
    FINISHED = "finished"
