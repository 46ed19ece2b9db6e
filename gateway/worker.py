"""`gateway worker`: an arq worker whose jobs are thin calls into invocations.py.

Every job is idempotent (arq delivers at least once): dispatch claims only a PENDING
invocation, expire touches only one still awaiting its callback past its deadline.

A dispatch job only starts its delivery: it ends as soon as a delivery slot is free and
the delivery has begun. arq keeps a running job in its queue, and every poll (every 5 ms)
checks each queued job with three Redis round trips, so 1,000 subscribers hanging for
the whole time limit kept the worker busy re-checking them while healthy deliveries
waited (benchmark: healthy p99 x34). A delivery cut off by a crash is found by the sweep
(DISPATCHING past the time limit) and delivered again, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, async_check_health, func
from redis.exceptions import RedisError

from gateway import arq_queue, invocations
from gateway.bootstrap import open_runtime
from gateway.runtime import Runtime
from gateway.settings import Settings

log = logging.getLogger("gateway.worker")


class Deliveries:
    """The deliveries running in this worker, at most ``limit`` at once."""

    def __init__(self, rt: Runtime, limit: int) -> None:
        self._rt = rt
        self._slots = asyncio.Semaphore(limit)
        self._running: set[asyncio.Task[None]] = set()

    async def start(self, invocation_id: str) -> None:
        """Wait for a free slot, then deliver in the background."""
        await self._slots.acquire()
        task = asyncio.create_task(self._deliver(invocation_id), name=f"deliver-{invocation_id}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _deliver(self, invocation_id: str) -> None:
        try:
            await invocations.dispatch_one(self._rt, invocation_id)
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


async def dispatch(ctx: dict[str, Any], invocation_id: str) -> None:
    deliveries: Deliveries = ctx["deliveries"]
    await deliveries.start(invocation_id)


async def expire(ctx: dict[str, Any], invocation_id: str) -> None:
    await invocations.expire_due(_runtime(ctx), invocation_id)


def _runtime(ctx: dict[str, Any]) -> Runtime:
    rt: Runtime = ctx["runtime"]
    return rt


def create_worker(settings: Settings) -> Worker:
    stack = AsyncExitStack()

    async def startup(ctx: dict[str, Any]) -> None:
        rt = await stack.enter_async_context(open_runtime(settings, "worker"))
        ctx["runtime"] = rt
        ctx["deliveries"] = deliveries = Deliveries(rt, settings.dispatch_concurrency)
        stack.push_async_callback(deliveries.stop, settings.stop_grace)  # before the runtime closes
        log.info("worker ready on queue %r", settings.queue_name)

    async def shutdown(ctx: dict[str, Any]) -> None:
        await stack.aclose()

    return Worker(
        functions=[
            # A job waits at most for a slot, which a delivery frees within its time limit.
            func(dispatch, name=arq_queue.DISPATCH, timeout=settings.response_timeout + 30),
            func(expire, name=arq_queue.EXPIRE, timeout=30),
        ],
        queue_name=settings.queue_name,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        on_startup=startup,
        on_shutdown=shutdown,
        max_jobs=settings.dispatch_concurrency,
        keep_result=0,  # a finished job leaves no trace, so the sweep may queue it again
        poll_delay=settings.worker_poll_delay,
        health_check_interval=5,
        job_serializer=arq_queue.serialize,
        job_deserializer=arq_queue.deserialize,
        max_tries=5,
        log_results=False,
    )


def run(settings: Settings) -> None:
    """Run a worker until it is told to stop. arq's poll loop ends on a Redis connection
    error; losing Redis must only pause delivery, so start a fresh worker after a back-off."""
    _use_uvloop()
    # arq logs two lines per job; the gateway logs each delivery's outcome itself.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("arq.worker").setLevel(logging.WARNING)
    backoff = 1.0
    while True:
        try:
            create_worker(settings).run()
            return  # stopped by SIGTERM or SIGINT
        except (RedisError, OSError) as exc:
            log.warning("lost Redis (%s); starting again in %.0f s", exc, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 30.0)


def _use_uvloop() -> None:
    """`gateway serve` gets uvloop from uvicorn; the worker's loop is arq's to create."""
    try:
        import uvloop
    except ImportError:  # not on Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def check(settings: Settings) -> int:
    """0 when a worker on this queue has reported healthy in the last few seconds."""
    return asyncio.run(
        async_check_health(RedisSettings.from_dsn(settings.redis_url), queue_name=settings.queue_name)
    )
