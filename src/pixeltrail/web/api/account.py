"""GET|PATCH /account: the caller's account and its settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from pixeltrail.platform.accounts.accounts import get_account, update_account
from pixeltrail.web.api.deps import AccountId, Conn

router = APIRouter(tags=["account"])


class AccountOut(BaseModel):
    id: str
    name: str
    timezone: str
    default_track_opens: bool
    anonymize_ips: bool
    retention_days: int | None


class AccountPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = None
    default_track_opens: bool | None = None
    anonymize_ips: bool | None = None
    retention_days: int | None = Field(
        default=None,
        ge=1,
        le=36500,
        description="Days the raw events of the account's messages are kept (null: forever); "
        "older ones are deleted every hour, and reports keep what they counted.",
    )


@router.get("/account", response_model=AccountOut)
def read_account(conn: Conn, account: AccountId) -> dict[str, Any]:
    return get_account(conn, account).as_record()


@router.patch("/account", response_model=AccountOut)
def patch_account(body: AccountPatch, conn: Conn, account: AccountId) -> dict[str, Any]:
    return update_account(conn, account, body.model_dump(exclude_unset=True)).as_record()
