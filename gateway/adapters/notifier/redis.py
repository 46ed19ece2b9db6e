"""Wake-ups and catalog changes across processes: each is published on a Redis channel, and
each process acts on every message on it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from contextlib import suppress

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.adapters.notifier.memory import LocalNotifier

log = logging.getLogger("gateway.notify")


class RedisNotifier(LocalNotifier):
    """Publishes every transition on a Redis channel and wakes local waiters for each
    message on it. A lost message only delays a waiter: it re-reads the database when its
    wait ends."""

    def __init__(self, redis: Redis, channel: str, work_channel: str | None = None) -> None:
        super().__init__()
        self._redis = redis
        self._channel = channel
        self._catalog_channel = channel + ":catalog"
        # Where the queue (adapters/queue/redis.py) says it queued deliveries: a worker's
        # notifier listens to it, an API process's has no use for it.
        self._work_channel = work_channel
        self._listener: asyncio.Task[None] | None = None

    async def notify(self, invocation_ids: Iterable[str]) -> None:
        ids = list(invocation_ids)
        if ids:
            self.wake(ids)
            await self._redis.publish(self._channel, json.dumps(ids))

    async def announce_catalog_change(self) -> None:
        self.catalog_changed()
        await self._redis.publish(self._catalog_channel, "changed")

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="notify-listener")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with suppress(asyncio.CancelledError):
                await self._listener

    async def _listen(self) -> None:
        """Listen until cancelled, resubscribing after any interruption. An outage is logged
        when it starts and when it ends, not at every attempt to resubscribe."""
        failures = 0
        while True:
            pubsub = self._redis.pubsub()
            try:
                channels = [self._channel, self._catalog_channel, self._work_channel]
                await pubsub.subscribe(*filter(None, channels))
                if failures:
                    log.warning("notification channel subscribed again, after %d failure(s)", failures)
                    failures = 0
                # What was announced while this process was not listening is lost.
                self.catalog_changed()
                if self._work_channel is not None:
                    self.work_queued()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    channel = message["channel"]
                    channel = channel.decode() if isinstance(channel, bytes) else channel
                    if channel == self._catalog_channel:
                        self.catalog_changed()
                    elif channel == self._work_channel:
                        self.work_queued()
                    else:
                        self.wake(json.loads(message["data"]))
            except (RedisError, OSError, ValueError) as exc:
                if not failures:
                    log.warning(
                        "notification channel interrupted (%s); resubscribing every 1 s, "
                        "not logged again until it works",
                        exc,
                    )
                failures += 1
                await asyncio.sleep(1)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
