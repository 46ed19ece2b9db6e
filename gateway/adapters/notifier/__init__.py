"""The notifier port: wake long-polling status requests when an invocation reaches a final
state, and tell every process that the catalog (triggers, subscriptions) changed, so that
they drop what they cached of it. memory.py tells this process; redis.py also publishes on
Redis, so a callback handled by one API process wakes a long-poll in another.

A lost wake-up only delays a waiter: it re-reads the database when its wait ends. A process
that may have lost a catalog message is told the catalog changed; a worker that may have lost
a "work queued" message looks for work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Protocol


class Notifier(Protocol):
    def watch(self, invocation_id: str) -> AbstractContextManager[asyncio.Event]:
        """An event set when ``invocation_id`` may have changed, while the context is open."""
        ...

    async def notify(self, invocation_ids: Iterable[str]) -> None: ...

    def on_catalog_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever any process announces a catalog change."""
        ...

    async def announce_catalog_change(self) -> None: ...

    def on_work_queued(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever any process says it queued deliveries (a worker then
        looks for them at once, instead of polling its queue every few milliseconds)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
