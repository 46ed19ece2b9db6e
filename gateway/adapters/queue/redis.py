"""Distributed mode's queue: arq on Redis, with a JSON serializer (never pickle).

Job ids are derived from the invocation id and its attempt count, so enqueueing the same
delivery twice while it waits or runs is harmless, and a delivery that a killed worker cut
off is queued again at once as a new job (the dead worker's job id stays locked until arq's
own timeout). Results are not kept, so the sweep can queue a lost job again later.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool

from gateway.adapters.queue import DispatchJob

DISPATCH = "dispatch"
EXPIRE = "expire"


def serialize(job: dict[str, Any]) -> bytes:
    # default=str: arq also stores its own error objects for jobs that failed.
    return json.dumps(job, separators=(",", ":"), default=str).encode()


def deserialize(data: bytes) -> dict[str, Any]:
    job: dict[str, Any] = json.loads(data)
    return job


async def connect(redis_url: str, queue_name: str) -> ArqRedis:
    return await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=queue_name,
    )


def work_channel(queue_name: str) -> str:
    """Where a queue says it queued deliveries, so that workers look for them at once."""
    return f"{queue_name}:queued"


class ArqQueue:
    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self.redis = redis
        self._work_channel = work_channel(queue_name)

    async def enqueue(self, jobs: Iterable[DispatchJob]) -> None:
        # Concurrently: a fan-out of 50 would otherwise wait for 50 Redis round trips in turn.
        queued = await asyncio.gather(
            *(
                self.redis.enqueue_job(
                    DISPATCH, invocation_id, _job_id=f"{DISPATCH}:{invocation_id}:{attempts}"
                )
                for invocation_id, attempts in jobs
            )
        )
        if queued:
            await self.redis.publish(self._work_channel, "1")

    async def schedule_expiry(self, invocation_id: str, deadline: datetime) -> None:
        await self.redis.enqueue_job(
            EXPIRE, invocation_id, _job_id=f"{EXPIRE}:{invocation_id}", _defer_until=deadline
        )
