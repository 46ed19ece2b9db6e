"""Cron strings in a time zone, checked and stepped with cronsim (DST-aware, well kept)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from gateway.domain.errors import Invalid


def check(cron: str, timezone: str, where: str) -> None:
    """Raise Invalid, saying why, unless ``cron`` is a cron string and ``timezone`` an IANA zone."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"{where}.timezone {timezone!r} is not an IANA time zone such as Europe/Berlin"
        ) from None
    try:
        CronSim(cron, datetime.now(zone))
    except CronSimError as exc:
        raise Invalid(
            f"{where}.cron {cron!r} is not a cron string: {exc}. Use five fields (minute hour "
            "day-of-month month day-of-week, e.g. '*/5 * * * *'), or six with seconds first"
        ) from None


def next_tick(cron: str, timezone: str, after: datetime) -> datetime:
    """The first tick of ``cron`` in ``timezone`` strictly after ``after``, in UTC."""
    tick: datetime = next(CronSim(cron, after.astimezone(ZoneInfo(timezone))))
    return tick.astimezone(UTC)
