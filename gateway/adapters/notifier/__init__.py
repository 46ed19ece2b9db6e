"""The notifier port: wake long-polling status requests when an invocation reaches a final
state. memory.py wakes this process's waiters; redis.py also publishes every wake-up on
Redis, so a callback handled by one API process wakes a long-poll in another.

A lost wake-up only delays a waiter: it re-reads the database when its wait ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Protocol


class Notifier(Protocol):
    def watch(self, invocation_id: str) -> AbstractContextManager[asyncio.Event]:
        """An event set when ``invocation_id`` may have changed, while the context is open."""
        ...

    async def notify(self, invocation_ids: Iterable[str]) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
