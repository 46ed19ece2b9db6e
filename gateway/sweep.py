"""The sweep: the database, not a queue, decides what is due. Runs every few hundred ms:
schedules fire, deadlines pass, lost deliveries are queued again, waiting runs start."""

from __future__ import annotations

import asyncio
import logging

from gateway import invocations, runs, schedules
from gateway.runtime import Runtime

log = logging.getLogger("gateway.sweep")


async def sweep_once(rt: Runtime) -> None:
    await schedules.fire_due(rt)
    await invocations.expire_due(rt)
    await invocations.requeue_due(rt)
    await runs.promote_due(rt)


async def sweep_forever(rt: Runtime) -> None:
    while True:
        try:
            await sweep_once(rt)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A database hiccup must not end the sweep: try again next round.
            log.exception("sweep failed; retrying in %.1f s", rt.settings.sweep_interval)
        await asyncio.sleep(rt.settings.sweep_interval)
