"""The sweep: the database, not a queue, decides what is due. Runs every few hundred ms:
deadlines pass, lost deliveries are queued again, waiting runs start."""

from __future__ import annotations

import asyncio
import logging

from gateway import invocations, runs
from gateway.runtime import Runtime

log = logging.getLogger("gateway.sweep")


# Schedules have a loop of their own, which wakes at the next tick (schedules.fire_forever).
STEPS = (invocations.expire_due, invocations.requeue_due, runs.promote_due)


async def sweep_once(rt: Runtime) -> None:
    # Each step on its own: one that fails (say, on a row it cannot handle) must not stop
    # the others, which are what keep deadlines and deliveries moving.
    for step in STEPS:
        try:
            await step(rt)
        except Exception:
            log.exception(
                "sweep: %s failed; it runs again in %.1f s", step.__name__, rt.settings.sweep_interval
            )


async def sweep_forever(rt: Runtime) -> None:
    while True:
        await sweep_once(rt)
        await asyncio.sleep(rt.settings.sweep_interval)
