"""Every statement on the invocations table that the sweep, retries, concurrency limits and
debounced runs make finds its rows through an index: none walks the whole table (or a whole
index of every invocation), which would grow with the table's history and run every sweep.
The statements are captured as the use cases run them on SQLite, then explained there."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from gateway.domain.model import Invocation
from gateway.usecases import retention, sweep
from tests.servers import Subscriber, answer
from tests.usecases.conftest import OpenDriver
from tests.usecases.test_concurrency import Gate, capped

# The indexes of a few rows each (one state, or unfinished): walking one whole is bounded by
# what is in flight, not by the history.
PARTIAL = {
    str(index.name)
    for index in Invocation.__table__.indexes  # type: ignore[attr-defined]
    if index.dialect_options["sqlite"]["where"] is not None
}


@contextmanager
def captured() -> Iterator[dict[str, Any]]:
    """The statements on the invocations table run meanwhile, each with its parameters."""
    statements: dict[str, Any] = {}

    def grab(_conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        if "invocations" in statement and not many and not statement.startswith(("INSERT", "EXPLAIN")):
            statements.setdefault(statement, params)

    event.listen(Engine, "before_cursor_execute", grab)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", grab)


def walks(plan_line: str) -> bool:
    """Whether a plan step reads all of the invocations table, or all of a full index."""
    if not plan_line.startswith("SCAN invocations"):
        return False
    return not any(plan_line.endswith(f"INDEX {name}") for name in PARTIAL)


async def test_no_sweep_or_limit_statement_walks_the_invocations_table(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    with captured() as statements:
        async with open_driver(retry_schedule="0.1,0.1", retry_jitter=0.0) as app:
            gate = Gate()
            await capped(app, subscriber, gate, 1)  # admit, promote, QUEUED
            queued = [(await app.start("t:notify", {"n": n}))[0]["id"] for n in range(3)]
            await subscriber.wait_for(1)
            gate.open.set()
            await app.create_trigger("t:broken", name="Broken", type="FIRE_AND_FORGET")
            await app.subscribe("t:broken", subscriber.endpoint("down", answer(503)))
            failing = (await app.start("t:broken", {}))[0]["id"]  # RETRYING, then FAILED
            for invocation_id in [*queued, failing]:
                await app.final_status(invocation_id)
            await sweep.sweep_once(app.rt)
            await retention.purge_due(app.rt)
            async with app.rt.sessions() as session:
                connection = await session.connection()
                plans = {
                    statement: [
                        row[-1]
                        for row in await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
                    ]
                    for statement, params in list(statements.items())
                }
    assert any("'RETRYING'" in s for s in plans) and any("'QUEUED'" in s for s in plans)
    walking = {" ".join(s.split())[:200]: plan for s, plan in plans.items() if any(map(walks, plan))}
    assert walking == {}
    # Retention's purges each seek their own final states: a range on completion alone would
    # read every finished row of the other states in it, at every sweep.
    purges = [plan for statement, plan in plans.items() if "invocations.completed <" in statement]
    assert purges and all(any("(status=? AND completed<?)" in line for line in plan) for plan in purges)
