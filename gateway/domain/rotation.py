"""Secrets that rotate with a grace period (API client secrets, delivery signing secrets).

After a rotation the previous secret keeps working until it expires, so whoever holds it can
deploy the new one without a gap. Only one previous secret is kept: rotating again ends the
older one's grace at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple


class Rotated(NamedTuple):
    current: str
    previous: str | None
    previous_expires: datetime | None


def rotate(current: str | None, new: str, now: datetime, grace: timedelta) -> Rotated:
    return Rotated(new, current, now + grace if current else None)


def active(current: str | None, previous: str | None, expires: datetime | None, now: datetime) -> list[str]:
    """The secrets that work now: the current one, then the previous one while its grace lasts."""
    working = [current] if current else []
    if previous and expires is not None and expires > now:
        working.append(previous)
    return working
