"""Is this process able to serve? Liveness needs nothing; readiness needs the database (reachable,
its schema at head) and, distributed, Redis and a worker seen within WORKER_SEEN_WITHIN."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from sqlalchemy import text

from gateway.adapters.database.engine import SCHEMA_HEAD
from gateway.runtime import Runtime

# How long each dependency may take to answer before it counts as down.
CHECK_TIMEOUT = 2.0
# A distributed gateway is ready while some worker reported (arq's health key, refreshed every
# 5 s by each worker) within this many seconds.
WORKER_SEEN_WITHIN = 15.0
HEALTH_KEY_SUFFIX = ":health-check"  # arq's


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    latency_ms: float
    error: str | None = None


# When this process last saw a worker's health key, by queue (time.monotonic()).
_worker_seen: dict[str, float] = {}


async def readiness(rt: Runtime) -> list[Check]:
    checks = [await _timed("database", _database(rt))]
    if rt.redis is not None:
        checks.append(await _timed("redis", _redis(rt)))
        checks.append(await _timed("workers", _workers(rt)))
    return checks


async def _database(rt: Runtime) -> None:
    async with rt.sessions() as session:
        revision = (await session.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    if revision != SCHEMA_HEAD:
        raise _NotReady(
            f"the schema is at revision {revision}, this gateway needs {SCHEMA_HEAD}: run `gateway migrate`"
        )


async def _redis(rt: Runtime) -> None:
    assert rt.redis is not None
    await rt.redis.ping()


async def _workers(rt: Runtime) -> None:
    assert rt.redis is not None
    queue = rt.settings.queue_name
    if await rt.redis.exists(queue + HEALTH_KEY_SUFFIX):
        _worker_seen[queue] = time.monotonic()
    elif time.monotonic() - _worker_seen.get(queue, float("-inf")) > WORKER_SEEN_WITHIN:
        raise _NotReady(f"no worker seen on queue {rt.settings.queue_name!r} within {WORKER_SEEN_WITHIN:g} s")


async def _timed(name: str, check: Awaitable[None]) -> Check:
    began = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await check
    except _NotReady as exc:
        return Check(name, False, _since(began), str(exc))
    except Exception as exc:
        reason = (
            f"no answer within {CHECK_TIMEOUT:g} s" if isinstance(exc, TimeoutError) else type(exc).__name__
        )
        return Check(name, False, _since(began), reason)
    return Check(name, True, _since(began))


def _since(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 1)


class _NotReady(Exception):
    pass
