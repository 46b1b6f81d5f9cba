"""The shapes campaigns are written in: the API's request bodies and the CLI's JSON files.

Unknown fields and wrong types are refused (`extra="forbid"`, strict types); ranges are
checked here, rules that need the database (mailbox, time zone, templates) in `campaigns`.
Field paths count list items from 0, as in the request body: `steps.1.html` is the second step.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pixeltrail.platform.campaigns.templates import MAX_SOURCE
from pixeltrail.platform.errors import Invalid

MAX_STEPS = 20
MAX_DELAY_DAYS = 365
MAX_DAILY_CAP = 100_000
MAX_ENROLL = 10_000

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class StepIn(_Strict):
    subject: str = Field(min_length=1, max_length=MAX_SOURCE["subject"])
    html: str = Field(min_length=1, max_length=MAX_SOURCE["html"])
    text: str | None = Field(default=None, max_length=MAX_SOURCE["text"])
    delay_days: int = Field(ge=0, le=MAX_DELAY_DAYS)


class ScheduleIn(_Strict):
    """Each field left out (or null) keeps its default: the account's time zone, every day,
    0 to 24 h, no cap of its own (the mailbox's daily limit still applies)."""

    timezone: str | None = Field(default=None, max_length=64)
    days: list[Day] | None = Field(default=None, min_length=1, max_length=7)
    start_hour: int | None = Field(default=None, ge=0, le=23)
    end_hour: int | None = Field(default=None, ge=1, le=24)
    daily_cap: int | None = Field(default=None, ge=1, le=MAX_DAILY_CAP)


class CampaignIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    mailbox_id: str = Field(max_length=64)
    steps: list[StepIn] = Field(default_factory=list, max_length=MAX_STEPS)
    schedule: ScheduleIn = Field(default_factory=ScheduleIn)
    # A reply ends the contact's sequence (PATCH /campaigns/{id}/settings changes it later).
    stop_on_reply: bool = True


class CampaignPatch(_Strict):
    """Fields left out stay as they are; `steps` replaces the whole sequence."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    mailbox_id: str | None = Field(default=None, max_length=64)
    steps: list[StepIn] | None = Field(default=None, max_length=MAX_STEPS)
    schedule: ScheduleIn | None = None


class SettingsPatch(_Strict):
    track_opens: bool | None = None
    track_clicks: bool | None = None
    track_text_links: bool | None = None
    tracking_domain_id: str | None = Field(default=None, max_length=64)
    stop_on_reply: bool | None = None


class ContactIds(_Strict):
    contact_ids: list[str] = Field(min_length=1, max_length=MAX_ENROLL)


class LaunchIn(_Strict):
    start_at: str | None = Field(default=None, max_length=64)


M = TypeVar("M", bound=BaseModel)


def parse_input(model: type[M], data: Any) -> M:
    """`data` (parsed JSON) as `model`; Invalid naming the first wrong field, as the API does."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        if first["type"] == "extra_forbidden":
            raise Invalid(f"unknown field {field!r}", field) from None
        message = f"{field}: {first['msg']}" if field else str(first["msg"])
        raise Invalid(message, field) from None
