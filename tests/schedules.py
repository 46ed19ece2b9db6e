"""The trigger with schedules that the schedule tests of both tiers use."""

from __future__ import annotations

from typing import Any, Protocol

EVERY_SECOND = "* * * * * *"  # six fields: seconds first
SCHEDULES = [
    {"name": "every 5 minutes", "cron": "*/5 * * * *"},
    {"name": "Fridays at 16:00", "cron": "0 16 * * 5", "timezone": "Europe/Berlin"},
    {"name": "every second", "cron": EVERY_SECOND},
]


class CreatesTriggers(Protocol):
    async def create_trigger(self, trigger_id: str = ..., **fields: Any) -> dict[str, Any]: ...


async def create_scheduled_trigger(client: CreatesTriggers, **fields: Any) -> None:
    await client.create_trigger("t:sched", type="FIRE_AND_FORGET", schedules=SCHEDULES, **fields)
