"""The composition root: build a process's Runtime, the same pieces for `serve` and `worker`,
wired per mode.

| | embedded (no GATEWAY_REDIS_URL) | distributed |
|---|---|---|
| queue | in-process deliveries in `serve` | arq on Redis, drained by `gateway worker` |
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

from gateway.adapters.database import engine as database
from gateway.adapters.database.invocation_store import InvocationStore
from gateway.adapters.limiter import Limiter
from gateway.adapters.limiter.memory import MemoryLimiter
from gateway.adapters.limiter.redis import RedisLimiter
from gateway.adapters.notifier import Notifier
from gateway.adapters.notifier.memory import LocalNotifier
from gateway.adapters.notifier.redis import RedisNotifier
from gateway.adapters.outbound.http import open_outbound
from gateway.adapters.outbound.target_policy import TargetPolicy, parse_networks
from gateway.adapters.queue import DispatchQueue
from gateway.adapters.queue import redis as arq_queue
from gateway.adapters.queue.memory import InProcessQueue
from gateway.domain.keys import Keys
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.usecases import api_clients, builtin, schedules, secret_keys, subscriptions, triggers
from gateway.usecases.catalog import Catalog
from gateway.usecases.deliver import deliver
from gateway.usecases.sweep import sweep_forever

log = logging.getLogger("gateway")

Role = Literal["api", "worker"]


@asynccontextmanager
async def open_runtime(settings: Settings, role: Role) -> AsyncIterator[Runtime]:
    async with AsyncExitStack() as stack:
        engine = database.create_engine(settings.database_url)
        stack.push_async_callback(engine.dispose)
        await database.prepare_schema(engine)
        sessions = database.sessionmaker(engine)
        keys = Keys(settings.signing_keys)
        await secret_keys.check_stored(settings, sessions, keys)  # before anything uses the keys
        policy = TargetPolicy(parse_networks(settings.allowed_target_networks), settings.require_https)
        http = open_outbound(settings.dispatch_concurrency, policy)
        stack.push_async_callback(http.aclose)
        queue: DispatchQueue
        notifier: Notifier
        limiter: Limiter
        redis = None
        if settings.redis_url:
            redis = await arq_queue.connect(settings.redis_url, settings.queue_name)
            stack.push_async_callback(redis.aclose)
            queue = arq_queue.ArqQueue(redis, settings.queue_name)
            work_channel = arq_queue.work_channel(settings.queue_name) if role == "worker" else None
            notifier = RedisNotifier(redis, f"{settings.queue_name}:terminal", work_channel)
            limiter = RedisLimiter(redis, prefix=f"{settings.queue_name}:limits:")
        else:
            queue = InProcessQueue(settings.dispatch_concurrency)
            notifier = LocalNotifier()
            limiter = MemoryLimiter()
        catalog = Catalog(sessions)
        notifier.on_catalog_change(catalog.forget)
        known = api_clients.KnownClients()
        store = InvocationStore(engine)
        rt = Runtime(settings, sessions, store, keys, queue, notifier, http, limiter, policy, known, catalog)
        rt.redis = redis
        if role == "api":
            await _prepare_catalog(rt)
        await notifier.start()
        stack.push_async_callback(notifier.stop)
        if isinstance(queue, InProcessQueue):
            await queue.start(lambda invocation_id: deliver(rt, invocation_id))
            stack.push_async_callback(queue.stop, settings.stop_grace)
        if role == "worker" or not settings.redis_url:
            for loop, name in ((sweep_forever, "sweep"), (schedules.fire_forever, "schedules")):
                task = asyncio.create_task(loop(rt), name=name)
                stack.push_async_callback(_cancel, task)
        yield rt


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _prepare_catalog(rt: Runtime) -> None:
    await api_clients.ensure_bootstrap_client(rt)
    await builtin.ensure(rt)
    sealed = await subscriptions.seal_url_queries(rt)
    if sealed:
        log.info("encrypted the query strings of %d subscription URL(s)", sealed)
    if len(rt.settings.signing_keys) > 1:  # a rotation: move what is stored to the first key
        resealed = await secret_keys.reseal(rt)
        if resealed:
            log.info("encrypted %d stored secret(s) again under the first GATEWAY_SECRET_KEY", resealed)
    if rt.settings.triggers_file:
        count = await triggers.load_catalog(rt, Path(rt.settings.triggers_file))
        log.info("loaded %d trigger(s) from %s", count, rt.settings.triggers_file)
