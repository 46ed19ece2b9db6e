"""The triggers and subscriptions that every start and every delivery reads, kept in memory.

They change rarely, and reading them was two statements and a dozen ORM objects per round
trip (profiled). Every use case that changes them calls ``changed`` after its commit: this
process forgets what it cached at once, and the notifier tells the other processes (over
Redis in distributed mode; a process that may have missed a message forgets everything).
Entries also live at most MAX_AGE seconds, the bound on staleness should a message be lost
all the same. A read that raced a change is not kept, nor is a trigger that does not exist
(another process may have just created it), and a caller that misses a subscription in a
cached entry reads once more past the cache.

The cached rows are detached: the use cases read them and never change them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlmodel import col, select

from gateway.adapters.database.engine import Sessions
from gateway.domain.documents import TRIGGER_ID
from gateway.domain.model import Subscription, Trigger
from gateway.runtime import Runtime, best_effort

MAX_AGE = 10.0  # seconds
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Entry:
    trigger: Trigger
    # Every subscription of the trigger, enabled or not, oldest first.
    subscriptions: tuple[Subscription, ...]

    def subscription(self, subscription_id: str) -> Subscription | None:
        return next((sub for sub in self.subscriptions if sub.id == subscription_id), None)


class Catalog:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions
        self._entries: dict[str, tuple[Entry, float]] = {}
        self._generation = 0

    async def trigger(self, trigger_id: str, *, fresh: bool = False) -> Entry | None:
        """The trigger with its subscriptions, or None if there is no such trigger. A trigger
        that does not exist is not remembered, nor is a read that raced a change; ``fresh``
        reads past the cache, for a caller whose cached entry lacked what it looked for."""
        if not TRIGGER_ID.fullmatch(trigger_id):  # PostgreSQL refuses some (a NUL): never ask
            return None
        now = time.monotonic()
        cached = self._entries.get(trigger_id)
        if cached is not None and now - cached[1] < MAX_AGE and not fresh:
            return cached[0]
        generation = self._generation
        entry = await self._read(trigger_id)
        if entry is not None and generation == self._generation:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[trigger_id] = (entry, now)
        return entry

    def forget(self) -> None:
        self._generation += 1
        self._entries.clear()

    async def _read(self, trigger_id: str) -> Entry | None:
        async with self._sessions() as session:
            trigger = await session.get(Trigger, trigger_id)
            if trigger is None:
                return None
            query = (
                select(Subscription)
                .where(col(Subscription.trigger_id) == trigger_id)
                .order_by(col(Subscription.created), col(Subscription.id))
            )
            return Entry(trigger, tuple((await session.execute(query)).scalars()))


async def changed(rt: Runtime) -> None:
    """After a commit that changed a trigger or a subscription: every process forgets its cache."""
    await best_effort("announcing a catalog change", rt.notifier.announce_catalog_change())
