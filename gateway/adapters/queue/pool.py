"""The deliveries running in one process, at most ``limit`` at once: embedded mode's queue
and the distributed mode's worker both hand their invocations to one of these."""

from __future__ import annotations

import asyncio
import logging

from gateway.adapters.queue import Handler

log = logging.getLogger("gateway.queue")


class DeliveryPool:
    def __init__(self, handler: Handler, limit: int) -> None:
        self._handler = handler
        self._slots = asyncio.Semaphore(limit)
        self._running: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> bool:
        """Whether a delivery is in flight."""
        return bool(self._running)

    async def start(self, invocation_id: str) -> None:
        """Wait for a free slot, then deliver in the background."""
        await self._slots.acquire()
        task = asyncio.create_task(self._deliver(invocation_id), name=f"deliver-{invocation_id}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _deliver(self, invocation_id: str) -> None:
        try:
            await self._handler(invocation_id)
        except Exception:
            # The invocation stays in the database; the sweep will retry it.
            log.exception("dispatch of invocation %s failed", invocation_id)
        finally:
            self._slots.release()

    async def stop(self, grace: float) -> None:
        """Let the deliveries in flight finish and record their outcome, for at most
        ``grace`` seconds; cancel what is left (the sweep delivers those again)."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=grace)
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
