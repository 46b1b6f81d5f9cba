"""Email addresses: validated and normalised the same way everywhere."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from pixeltrail.platform.errors import Invalid


def normalize_email(value: str, field: str = "email") -> str:
    """The address as stored: syntax checked (no DNS), domain lowercased and IDNA-normalised.

    The local part keeps its case (RFC 5321 lets servers treat it as case-sensitive), but the
    whole address is compared case-insensitively by lowercasing it: no mail system in use
    today routes differently by case, and duplicates by case are the common import mistake.
    """
    if not isinstance(value, str) or not value.strip():
        raise Invalid("an email address is required", field)
    try:
        info = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise Invalid(
            f"{value.strip()[:100]!r} is not a valid email address: {exc}", field
        ) from None
    return info.normalized.lower()
