"""Whether a tracking domain's CNAME was found pointing here."""

from __future__ import annotations

from enum import StrEnum


class DomainStatus(StrEnum):
    PENDING = "pending"  # not checked successfully yet
    VERIFIED = "verified"
    FAILED = "failed"
