"""How much waits: invocations PENDING delivery (and how long the oldest has waited) and
those awaiting a callback. Each a count over the partial index of its state.

The oldest's wait is from its creation, among those not yet tried: a PENDING row's queue time
is moved on each time the sweep queues it again (every GATEWAY_REQUEUE_AFTER), so it says
nothing of how long deliveries have been waiting while the workers cannot keep up."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import case, func
from sqlmodel import col, select

from gateway.adapters.database.states import in_state
from gateway.domain.clock import utcnow
from gateway.domain.model import Invocation, Status
from gateway.runtime import Runtime


class Backlog(NamedTuple):
    pending: int
    oldest_pending_seconds: float  # since the creation of the oldest not yet tried; 0: none
    awaiting_callback: int


async def measure(rt: Runtime) -> Backlog:
    untried = case((col(Invocation.attempts) == 0, col(Invocation.created)))
    pending = select(func.count(), func.min(untried)).where(in_state(Status.PENDING))
    awaiting = select(func.count()).select_from(Invocation).where(in_state(Status.AWAITING_CALLBACK))
    async with rt.sessions() as session:
        count, oldest = (await session.execute(pending)).one()
        waiting = (await session.execute(awaiting)).scalar_one()
    age = 0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())
    return Backlog(count, age, waiting)
