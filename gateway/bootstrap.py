"""Build a process's Runtime: the same pieces for `serve` and `worker`, wired per mode.

| | embedded (no GATEWAY_REDIS_URL) | distributed |
|---|---|---|
| queue | in-process workers in `serve` | arq on Redis, drained by `gateway worker` |
| sweep and schedules | in `serve` | in every `gateway worker` |
| long-poll wake-ups | in-process | published on Redis |
| rate limits and lockouts | in-process | on Redis, shared by every API process |
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import arq_queue, db, invocations, schedules, targets, triggers
from gateway.clients import ensure_bootstrap_client
from gateway.dispatch import create_client
from gateway.limits import Limiter, MemoryLimiter, RedisLimiter
from gateway.notify import Notifier, RedisNotifier
from gateway.queue import DispatchQueue, InProcessQueue
from gateway.runtime import Runtime
from gateway.security import Keys
from gateway.settings import Settings
from gateway.sweep import sweep_forever

log = logging.getLogger("gateway")

Role = Literal["api", "worker"]


@asynccontextmanager
async def open_runtime(settings: Settings, role: Role) -> AsyncIterator[Runtime]:
    async with AsyncExitStack() as stack:
        engine = db.create_engine(settings.database_url)
        stack.push_async_callback(engine.dispose)
        sessions = await _prepare_database(engine, settings, role)
        policy = targets.TargetPolicy(
            targets.parse_networks(settings.allowed_target_networks), settings.require_https
        )
        http = create_client(settings.dispatch_concurrency, policy)
        stack.push_async_callback(http.aclose)
        queue: DispatchQueue
        notifier: Notifier
        limiter: Limiter
        if settings.redis_url:
            redis = await arq_queue.connect(settings.redis_url, settings.queue_name)
            stack.push_async_callback(redis.aclose)
            queue = arq_queue.ArqQueue(redis)
            notifier = RedisNotifier(redis, channel=f"{settings.queue_name}:terminal")
            limiter = RedisLimiter(redis, prefix=f"{settings.queue_name}:limits:")
        else:
            queue = InProcessQueue(settings.dispatch_concurrency)
            notifier = Notifier()
            limiter = MemoryLimiter()
        rt = Runtime(
            settings, sessions, Keys(settings.signing_keys), queue, notifier, http, limiter, targets=policy
        )
        await notifier.start()
        stack.push_async_callback(notifier.stop)
        if isinstance(queue, InProcessQueue):
            await queue.start(lambda invocation_id: invocations.dispatch_one(rt, invocation_id))
            stack.push_async_callback(queue.stop, settings.stop_grace)
        if role == "worker" or not settings.redis_url:
            for loop, name in ((sweep_forever, "sweep"), (schedules.fire_forever, "schedules")):
                task = asyncio.create_task(loop(rt), name=name)
                stack.push_async_callback(_cancel, task)
        yield rt


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _prepare_database(engine: AsyncEngine, settings: Settings, role: Role) -> db.Sessions:
    await db.prepare_schema(engine)
    sessions = db.sessionmaker(engine)
    if role == "api":
        await ensure_bootstrap_client(sessions, settings)
        if settings.triggers_file:
            count = await triggers.load_catalog(sessions, Path(settings.triggers_file))
            log.info("loaded %d trigger(s) from %s", count, settings.triggers_file)
    return sessions
