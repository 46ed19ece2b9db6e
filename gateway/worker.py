"""`gateway worker`: an arq worker whose jobs are thin calls into the use cases
(usecases/deliver.py, usecases/sweep.py); it also runs the sweep and the schedules.

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
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from arq.connections import RedisSettings
from arq.worker import Worker, func
from prometheus_client import start_http_server
from redis.exceptions import RedisError

from gateway.adapters.queue import redis as arq_queue
from gateway.adapters.queue.pool import DeliveryPool
from gateway.bootstrap import open_runtime
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.telemetry import metrics
from gateway.usecases.deliver import deliver
from gateway.usecases.sweep import expire_due

log = logging.getLogger("gateway.worker")


# How often a worker looks at its queue when nobody says there is work: for deferred jobs
# (expiries) and a lost message.
IDLE_POLL = 0.1  # seconds


class _Worker(Worker):
    """arq's worker, looking at its queue when there is reason to: an API process (or the
    sweep) said it queued deliveries, a job ended (a slot is free for what waits), or IDLE_POLL
    passed. It polled every GATEWAY_WORKER_POLL_DELAY (5 ms) before: 200 Redis round trips a
    second, 65 ms of CPU per second when idle. The poll delay stays the shortest spacing of
    polls under load."""

    def __init__(self, look: asyncio.Event, **options: Any) -> None:
        super().__init__(**options)
        self._look = look

    async def _poll_iteration(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._look.wait(), IDLE_POLL)
        self._look.clear()
        await super()._poll_iteration()

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        self._look.set()  # a job slot is free: look for what waits


async def start_delivery(ctx: dict[str, Any], invocation_id: str) -> None:
    deliveries: DeliveryPool = ctx["deliveries"]
    await deliveries.start(invocation_id)


async def expire(ctx: dict[str, Any], invocation_id: str) -> None:
    await expire_due(_runtime(ctx), invocation_id)


def _runtime(ctx: dict[str, Any]) -> Runtime:
    rt: Runtime = ctx["runtime"]
    return rt


def create_worker(settings: Settings, on_ready: Callable[[], None] = lambda: None) -> Worker:
    stack = AsyncExitStack()
    look = asyncio.Event()

    async def startup(ctx: dict[str, Any]) -> None:
        rt = await stack.enter_async_context(open_runtime(settings, "worker"))
        rt.notifier.on_work_queued(look.set)
        ctx["runtime"] = rt
        ctx["deliveries"] = deliveries = DeliveryPool(
            lambda invocation_id: deliver(rt, invocation_id), settings.dispatch_concurrency
        )
        stack.push_async_callback(deliveries.stop, settings.stop_grace)  # before the runtime closes
        log.info("worker ready on queue %r", settings.queue_name)
        on_ready()

    async def shutdown(ctx: dict[str, Any]) -> None:
        await stack.aclose()

    return _Worker(
        look,
        functions=[
            # A job waits at most for a slot, which a delivery frees within its time limit.
            # The job names are what API processes enqueue: kept across versions for rolling upgrades.
            func(start_delivery, name=arq_queue.DISPATCH, timeout=settings.response_timeout + 30),
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
    _serve_metrics(settings)
    # arq warns at each attempt to reach Redis (every second while it is away); the worker
    # says it once itself.
    logging.getLogger("arq.connections").setLevel(logging.ERROR)
    outage = _Outage()
    while True:
        try:
            create_worker(settings, on_ready=outage.ended).run()
            return  # stopped by SIGTERM or SIGINT
        except (RedisError, OSError) as exc:
            time.sleep(outage.failed(exc))


class _Outage:
    """Redis lost under a running worker: logged when it starts and when it ends, not at each
    attempt to start again; the pause between attempts grows to LONGEST_PAUSE."""

    LONGEST_PAUSE = 30.0  # seconds

    def __init__(self) -> None:
        self.attempts = 0
        self.pause = 1.0

    def failed(self, exc: BaseException) -> float:
        """Seconds to wait before the next attempt."""
        if not self.attempts:
            log.warning("lost Redis (%s); starting again once it answers, not logged again until then", exc)
        self.attempts += 1
        pause, self.pause = self.pause, min(self.pause * 2, self.LONGEST_PAUSE)
        return pause

    def ended(self) -> None:
        if self.attempts:
            log.warning("Redis answers again: worker ready, after %d attempt(s)", self.attempts)
        self.attempts, self.pause = 0, 1.0


def _serve_metrics(settings: Settings) -> None:
    """This worker's metrics at /metrics on GATEWAY_HOST:GATEWAY_WORKER_METRICS_PORT, from
    a thread of prometheus_client's own: they answer while the loop is busy."""
    port = settings.worker_metrics_port
    if not port:
        return
    try:
        start_http_server(port, addr=settings.host, registry=metrics.REGISTRY)
    except OSError as exc:
        print(
            f"gateway: cannot serve the worker's metrics on {settings.host}:{port} ({exc.strerror}); "
            "choose another --metrics-port (GATEWAY_WORKER_METRICS_PORT)",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    log.info("worker metrics on http://%s:%d/metrics", settings.host, port)


def _use_uvloop() -> None:
    """`gateway serve` gets uvloop from uvicorn; the worker's loop is arq's to create."""
    try:
        import uvloop
    except ImportError:  # not on Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
