"""`gateway worker`: an arq worker whose jobs are thin calls into invocations.py.

Every job is idempotent (arq delivers at least once): dispatch claims only a PENDING
invocation, expire touches only one still awaiting its callback past its deadline.
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


async def dispatch(ctx: dict[str, Any], invocation_id: str) -> None:
    await invocations.dispatch_one(_runtime(ctx), invocation_id)


async def expire(ctx: dict[str, Any], invocation_id: str) -> None:
    await invocations.expire_due(_runtime(ctx), invocation_id)


def _runtime(ctx: dict[str, Any]) -> Runtime:
    rt: Runtime = ctx["runtime"]
    return rt


def create_worker(settings: Settings) -> Worker:
    stack = AsyncExitStack()

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["runtime"] = await stack.enter_async_context(open_runtime(settings, "worker"))
        log.info("worker ready on queue %r", settings.queue_name)

    async def shutdown(ctx: dict[str, Any]) -> None:
        await stack.aclose()

    return Worker(
        functions=[
            # A delivery takes at most the response time limit; the margin covers the database.
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
