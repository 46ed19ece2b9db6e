"""The distributed queue: arq on Redis, with a JSON serializer (never pickle).

Job ids are derived from the invocation id, so enqueueing the same delivery twice while it
waits or runs is harmless; results are not kept, so the sweep can queue it again later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool

DISPATCH = "dispatch"
EXPIRE = "expire"


def serialize(job: dict[str, Any]) -> bytes:
    return json.dumps(job, separators=(",", ":")).encode()


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


class ArqQueue:
    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis

    async def enqueue(self, invocation_ids: Iterable[str]) -> None:
        for invocation_id in invocation_ids:
            await self.redis.enqueue_job(DISPATCH, invocation_id, _job_id=f"{DISPATCH}:{invocation_id}")

    async def schedule_expiry(self, invocation_id: str, deadline: datetime) -> None:
        await self.redis.enqueue_job(
            EXPIRE, invocation_id, _job_id=f"{EXPIRE}:{invocation_id}", _defer_until=deadline
        )
