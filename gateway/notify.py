"""Wake long-polling status requests when an invocation reaches a terminal state.

In-process, a transition wakes this process's waiters. Distributed, transitions are also
published on Redis, so a callback handled by one API process wakes a long-poll in another.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("gateway.notify")


class Notifier:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @contextmanager
    def watch(self, invocation_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiters.setdefault(invocation_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(invocation_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[invocation_id]

    async def notify(self, invocation_ids: Iterable[str]) -> None:
        self.wake(invocation_ids)

    def wake(self, invocation_ids: Iterable[str]) -> None:
        for invocation_id in invocation_ids:
            for event in self._waiters.get(invocation_id, ()):
                event.set()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class RedisNotifier(Notifier):
    """Publishes every transition on a Redis channel and wakes local waiters for each
    message on it. A lost message only delays a waiter: it re-reads the database when its
    wait ends."""

    def __init__(self, redis: Redis, channel: str) -> None:
        super().__init__()
        self._redis = redis
        self._channel = channel
        self._listener: asyncio.Task[None] | None = None

    async def notify(self, invocation_ids: Iterable[str]) -> None:
        ids = list(invocation_ids)
        if ids:
            self.wake(ids)
            await self._redis.publish(self._channel, json.dumps(ids))

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="notify-listener")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with suppress(asyncio.CancelledError):
                await self._listener

    async def _listen(self) -> None:
        """Listen until cancelled, resubscribing after any interruption."""
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.wake(json.loads(message["data"]))
            except (RedisError, OSError, ValueError) as exc:
                log.warning("notification channel interrupted (%s); resubscribing in 1 s", exc)
                await asyncio.sleep(1)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
