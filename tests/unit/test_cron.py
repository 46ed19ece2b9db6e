"""cron.next_tick: the first tick strictly after a moment, in the schedule's time zone, as UTC.
Across daylight-saving changes it keeps Debian cron's rules, which cronsim follows: a daily
tick inside the hour that clocks skip fires once, as the gap ends; a daily tick inside the hour
that clocks repeat fires once, the first time; hourly and finer ticks follow the wall clock, so
they keep firing every real hour (or quarter) through both changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.cron import next_tick

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def ticks(cron: str, timezone: str, after: datetime, until: datetime) -> list[datetime]:
    """Every tick after ``after`` up to ``until``, stepping as the scheduler does (from each
    tick to the next, which must be later: a step back would fire a tick again)."""
    found: list[datetime] = []
    tick = next_tick(cron, timezone, after)
    while tick <= until:
        assert not found or tick > found[-1], f"{tick} follows {found[-1]}"
        found.append(tick)
        tick = next_tick(cron, timezone, tick)
    return found


def local(moments: list[datetime], timezone: str) -> list[str]:
    return [m.astimezone(ZoneInfo(timezone)).isoformat() for m in moments]


@pytest.mark.parametrize(
    ("cron", "timezone", "after", "expected"),
    [
        ("*/5 * * * *", "UTC", utc(2024, 5, 1, 12, 3), utc(2024, 5, 1, 12, 5)),
        # Strictly after: a moment on a tick gives the next one.
        ("*/5 * * * *", "UTC", utc(2024, 5, 1, 12, 5), utc(2024, 5, 1, 12, 10)),
        ("* * * * * *", "UTC", utc(2024, 5, 1, 12, 0, 0), utc(2024, 5, 1, 12, 0, 1)),  # seconds first
        # Fridays at 16:00 in Berlin: 15:00 UTC in winter, 14:00 UTC in summer.
        ("0 16 * * 5", BERLIN, utc(2024, 1, 1), utc(2024, 1, 5, 15)),
        ("0 16 * * 5", BERLIN, utc(2024, 7, 1), utc(2024, 7, 5, 14)),
        ("0 9 * * *", NEW_YORK, utc(2024, 1, 10, 15), utc(2024, 1, 11, 14)),
        # The 31st: months without one are passed over.
        ("0 0 31 * *", "UTC", utc(2024, 4, 1), utc(2024, 5, 31)),
        ("0 0 29 2 *", "UTC", utc(2024, 3, 1), utc(2028, 2, 29)),
        ("59 23 31 12 *", "UTC", utc(2024, 12, 31, 23, 59), utc(2025, 12, 31, 23, 59)),
    ],
)
def test_ordinary_ticks(cron: str, timezone: str, after: datetime, expected: datetime) -> None:
    tick = next_tick(cron, timezone, after)
    assert tick == expected
    assert tick.tzinfo is UTC


def test_the_moment_given_may_be_in_any_zone() -> None:
    moment = utc(2024, 5, 1, 12, 3)
    assert next_tick("0 * * * *", BERLIN, moment.astimezone(ZoneInfo(NEW_YORK))) == utc(2024, 5, 1, 13)


@pytest.mark.parametrize(
    ("timezone", "day", "expected"),
    [
        # Berlin, 31 March 2024: 02:00 CET becomes 03:00 CEST; 02:30 never happens.
        (
            BERLIN,
            utc(2024, 3, 30),
            ["2024-03-30T02:30:00+01:00", "2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"],
        ),
        # New York, 10 March 2024: 02:00 EST becomes 03:00 EDT.
        (
            NEW_YORK,
            utc(2024, 3, 9, 5),
            ["2024-03-09T02:30:00-05:00", "2024-03-10T03:00:00-04:00", "2024-03-11T02:30:00-04:00"],
        ),
    ],
)
def test_a_daily_tick_in_the_skipped_hour_fires_once_as_the_gap_ends(
    timezone: str, day: datetime, expected: list[str]
) -> None:
    found = ticks("30 2 * * *", timezone, day, day + timedelta(days=3) - timedelta(seconds=1))
    assert local(found, timezone) == expected


@pytest.mark.parametrize(
    ("timezone", "cron", "day", "expected"),
    [
        # Berlin, 27 October 2024: 03:00 CEST becomes 02:00 CET; 02:00-03:00 happens twice.
        (
            BERLIN,
            "30 2 * * *",
            utc(2024, 10, 26),
            ["2024-10-26T02:30:00+02:00", "2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"],
        ),
        # New York, 3 November 2024: 02:00 EDT becomes 01:00 EST; 01:00-02:00 happens twice.
        (
            NEW_YORK,
            "30 1 * * *",
            utc(2024, 11, 2, 4),
            ["2024-11-02T01:30:00-04:00", "2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"],
        ),
    ],
)
def test_a_daily_tick_in_the_repeated_hour_fires_once(
    timezone: str, cron: str, day: datetime, expected: list[str]
) -> None:
    found = ticks(cron, timezone, day, day + timedelta(days=3) - timedelta(seconds=1))
    assert local(found, timezone) == expected


@pytest.mark.parametrize(
    ("timezone", "change"),
    [
        (BERLIN, utc(2024, 3, 31, 1)),
        (BERLIN, utc(2024, 10, 27, 1)),
        (NEW_YORK, utc(2024, 3, 10, 7)),
        (NEW_YORK, utc(2024, 11, 3, 6)),
    ],
)
def test_hourly_and_finer_ticks_keep_firing_every_real_interval_through_a_change(
    timezone: str, change: datetime
) -> None:
    start, end = change - timedelta(hours=3), change + timedelta(hours=3)
    hourly = ticks("0 * * * *", timezone, start, end)
    assert hourly == [start + timedelta(hours=n) for n in range(1, 7)]
    quarterly = ticks("*/15 * * * *", timezone, start, end)
    assert quarterly == [start + timedelta(minutes=15 * n) for n in range(1, 25)]
