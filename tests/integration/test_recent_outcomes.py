"""The console chart's counts, grouped by the database itself on both: per minute of creation
and per status (SQLite by its stored text, PostgreSQL by date_trunc)."""

from __future__ import annotations

from datetime import timedelta

from gateway.bootstrap import open_runtime
from gateway.domain.clock import utcnow
from gateway.usecases import statuses
from tests.conftest import make_settings, worker_process
from tests.servers import Subscriber, answer
from tests.services import Store
from tests.usecases.driver import Driver


async def test_recent_outcomes_are_counted_per_minute_and_status(
    store: Store, subscriber: Subscriber
) -> None:
    settings = make_settings(store, "http://gateway.test")
    async with worker_process(settings), open_runtime(settings, "api") as rt:  # distributed: it delivers
        app = Driver(rt)
        await app.create_trigger("t:ok", type="FIRE_AND_FORGET")
        await app.subscribe("t:ok", subscriber.endpoint("ok", answer(200, {})))
        await app.create_trigger("t:bad", type="FIRE_AND_FORGET")
        await app.subscribe("t:bad", subscriber.endpoint("bad", answer(400, {})))
        started = [(await app.start(trigger, {}))[0]["id"] for trigger in ("t:ok", "t:ok", "t:bad")]
        for invocation_id in started:
            await app.final_status(invocation_id)
        before = utcnow()
        rows = await statuses.recent_outcomes(rt, before - timedelta(hours=1))
    counted: dict[str, int] = {}
    for minute, status, count in rows:
        assert minute.tzinfo is not None and minute.second == 0 and minute <= before
        assert before - minute < timedelta(minutes=2)
        counted[status] = counted.get(status, 0) + count
    assert counted == {"COMPLETED": 2, "FAILED": 1}
