"""The dispatch queue port: how a due invocation reaches usecases/deliver.

memory.py is embedded mode's (an asyncio queue in the process), redis.py the distributed
mode's (arq on Redis, drained by `gateway worker`). Either only makes delivery prompt: the
database stays the source of truth, and the sweep queues again anything a queue lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import NamedTuple, Protocol

# What a queue's consumer runs for each invocation id: usecases.deliver.deliver, bound to a runtime.
Handler = Callable[[str], Awaitable[None]]


class DispatchJob(NamedTuple):
    invocation_id: str
    # Delivery attempts already made: a delivery cut off by a crash is queued again as a new
    # job, while the same attempt queued twice is one job.
    attempts: int = 0


class DispatchQueue(Protocol):
    async def enqueue(self, jobs: Iterable[DispatchJob]) -> None: ...
    async def schedule_expiry(self, invocation_id: str, deadline: datetime) -> None: ...
