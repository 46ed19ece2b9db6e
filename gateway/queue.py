"""How a due invocation reaches dispatch(): one small interface, an in-process implementation.

The queue only makes delivery prompt; the database stays the source of truth, and the sweep
re-queues anything a queue lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import NamedTuple, Protocol

log = logging.getLogger("gateway.queue")

Handler = Callable[[str], Awaitable[None]]


class DispatchJob(NamedTuple):
    invocation_id: str
    # Delivery attempts already made: a delivery cut off by a crash is queued again as a new
    # job, while the same attempt queued twice is one job.
    attempts: int = 0


class DispatchQueue(Protocol):
    async def enqueue(self, jobs: Iterable[DispatchJob]) -> None: ...
    async def schedule_expiry(self, invocation_id: str, deadline: datetime) -> None: ...


class InProcessQueue:
    """A fixed pool of worker tasks: at most ``concurrency`` deliveries in flight, and an id
    already waiting is not queued twice."""

    def __init__(self, concurrency: int) -> None:
        self._concurrency = concurrency
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._waiting: set[str] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[None]] = set()  # workers in the middle of a delivery
        self._stopping = False

    async def enqueue(self, jobs: Iterable[DispatchJob]) -> None:
        for invocation_id, _ in jobs:
            if invocation_id not in self._waiting:
                self._waiting.add(invocation_id)
                self._queue.put_nowait(invocation_id)

    async def schedule_expiry(self, invocation_id: str, deadline: datetime) -> None:
        """Nothing to do: the sweep, every GATEWAY_SWEEP_INTERVAL, expires what is due."""

    async def start(self, handler: Handler) -> None:
        self._workers = [
            asyncio.create_task(self._work(handler), name=f"dispatch-{i}") for i in range(self._concurrency)
        ]

    async def stop(self, grace: float = 0.0) -> None:
        """Let the deliveries in flight finish and record their outcome, for at most
        ``grace`` seconds; what is queued but not started stays PENDING for the sweep."""
        self._stopping = True
        for task in self._workers:
            if task not in self._busy:
                task.cancel()
        if self._busy:
            await asyncio.wait(set(self._busy), timeout=grace)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def _work(self, handler: Handler) -> None:
        me = asyncio.current_task()
        assert me is not None
        while not self._stopping:
            invocation_id = await self._queue.get()
            self._waiting.discard(invocation_id)
            self._busy.add(me)
            try:
                await handler(invocation_id)
            except Exception:
                # The invocation stays in the database; the sweep will retry it.
                log.exception("dispatch of invocation %s failed", invocation_id)
            finally:
                self._busy.discard(me)
