"""The backlog the metrics report: how many invocations wait for delivery, how long the
oldest has waited, and how many await a callback, as the rows say."""

from __future__ import annotations

from datetime import timedelta

from gateway.domain.clock import utcnow
from gateway.domain.model import Invocation, Status
from gateway.usecases import backlog
from tests.servers import Subscriber, answer
from tests.usecases.driver import Driver


async def test_the_backlog_counts_pending_and_awaiting_rows(app: Driver, subscriber: Subscriber) -> None:
    await app.stop_loops()  # nothing delivers the rows made PENDING below
    assert await backlog.measure(app.rt) == (0, 0.0, 0)
    await app.create_trigger("t:ok")
    await app.subscribe("t:ok", subscriber.endpoint("ok", answer(200, {"ok": True})))
    done = [(await app.start("t:ok", {}))[0]["id"] for _ in range(4)]
    await app.settled()
    now = utcnow()
    # Not yet tried, created a minute ago, queued again by the sweep just now: it has waited a
    # minute. Tried once already: a retry, which waited in RETRYING, not counted.
    untried = {"attempts": 0, "created": now - timedelta(seconds=60), "queued_at": now}
    await app.alter(Invocation, done[0], status=Status.PENDING, **untried)
    retried = {"attempts": 1, "created": now - timedelta(seconds=600), "queued_at": now}
    await app.alter(Invocation, done[1], status=Status.PENDING, **retried)
    await app.alter(Invocation, done[2], status=Status.AWAITING_CALLBACK, completed=None)
    pending, oldest, awaiting = await backlog.measure(app.rt)
    assert (pending, awaiting) == (2, 1)
    assert 60 <= oldest < 70
