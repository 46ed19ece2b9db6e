"""Time as the gateway reads and writes it: aware UTC now, the API's timestamps, and the
ISO-8601 durations of response deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import isodate


def utcnow() -> datetime:
    return datetime.now(UTC)


def timestamp(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with milliseconds, as SailPoint writes them: 2026-12-01T12:00:00.000Z."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_duration(text: str, name: str = "responseDeadline") -> timedelta:
    """An ISO-8601 duration such as PT1H, not negative; ``name`` is what the error calls it."""
    try:
        value = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError, OverflowError):
        raise ValueError(f"{name} {text!r} is not an ISO-8601 duration such as PT1H") from None
    if not isinstance(value, timedelta):
        raise ValueError(f"{name} {text!r} uses years or months; use days, hours, minutes or seconds")
    if value < timedelta(0):
        raise ValueError(f"{name} must not be negative, not {text}")
    return value


def parse_deadline(text: str, maximum: str | None = None) -> timedelta:
    """An ISO-8601 duration such as PT1H, positive and at most ``maximum``."""
    value = parse_duration(text)
    limit = parse_duration(maximum) if maximum else timedelta.max
    if value <= timedelta(0) or value > limit:
        raise ValueError(f"responseDeadline must be positive and at most {maximum}, not {text}")
    return value
