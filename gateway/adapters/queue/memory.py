"""Embedded mode's queue: invocation ids in an asyncio queue, delivered by a DeliveryPool."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime

from gateway.adapters.queue import DispatchJob, Handler
from gateway.adapters.queue.pool import DeliveryPool


class InProcessQueue:
    """At most ``concurrency`` deliveries in flight; an id already waiting is not queued twice."""

    def __init__(self, concurrency: int) -> None:
        self._concurrency = concurrency
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._waiting: set[str] = set()
        self._pool: DeliveryPool | None = None
        self._feeder: asyncio.Task[None] | None = None

    async def enqueue(self, jobs: Iterable[DispatchJob]) -> None:
        for invocation_id, _ in jobs:
            if invocation_id not in self._waiting:
                self._waiting.add(invocation_id)
                self._queue.put_nowait(invocation_id)

    def idle(self) -> bool:
        """Whether every delivery queued so far has ended (none waits, none is in flight)."""
        return not self._waiting and (self._pool is None or not self._pool.busy)

    async def schedule_expiry(self, invocation_id: str, deadline: datetime) -> None:
        """Nothing to do: the sweep, every GATEWAY_SWEEP_INTERVAL, expires what is due."""

    async def start(self, handler: Handler) -> None:
        self._pool = pool = DeliveryPool(handler, self._concurrency)
        self._feeder = asyncio.create_task(self._feed(pool), name="dispatch-queue")

    async def _feed(self, pool: DeliveryPool) -> None:
        while True:
            invocation_id = await self._queue.get()
            await pool.start(invocation_id)  # waits for a free slot
            self._waiting.discard(invocation_id)

    async def stop(self, grace: float = 0.0) -> None:
        """Let the deliveries in flight finish and record their outcome, for at most
        ``grace`` seconds; what is queued but not started stays PENDING for the sweep."""
        if self._feeder is not None:
            self._feeder.cancel()
            await asyncio.gather(self._feeder, return_exceptions=True)
        if self._pool is not None:
            await self._pool.stop(grace)
