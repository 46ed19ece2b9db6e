"""What the sweep recovers (usecases/sweep.py, runs.promote_due) and what a stop leaves for it.

Rows are left as a crash leaves them or back-dated by an hour, and the sweep's steps are
called directly with the runtime's own loops stopped: only these calls act, and nothing
depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.domain.clock import utcnow
from gateway.domain.model import Invocation, Status
from gateway.usecases import runs, subscriptions, sweep
from gateway.usecases.sweep import MAX_ATTEMPTS
from tests.servers import Received, Subscriber, answer
from tests.usecases.conftest import OpenDriver
from tests.usecases.driver import held


def an_hour_ago() -> datetime:
    return utcnow() - timedelta(hours=1)


def invocation_ids(received: list[Received]) -> list[str]:
    return [r.body["_metadata"]["invocationId"] for r in received]


async def test_a_delivery_cut_off_max_attempts_times_fails_and_its_tenants_next_run_starts(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    release = asyncio.Event()
    # No retry schedule: MAX_ATTEMPTS is then the most attempts a delivery gets.
    async with open_driver(response_timeout=30.0, stop_grace=0.0, retry_schedule="") as app:
        await app.stop_loops()
        await app.create_trigger("t:flaky")
        url = subscriber.endpoint("flaky", held(release))  # each attempt stays in flight
        await app.subscribe("t:flaky", url, "SYNC", debounce=True)
        [run] = await app.start("t:flaky", {"n": 1}, tenantId="acme")
        [waiting] = await app.start("t:flaky", {"n": 2}, tenantId="acme")
        try:
            for attempt in range(1, MAX_ATTEMPTS + 1):
                await subscriber.wait_for(attempt)
                status = await app.status(run["id"])
                assert (status["status"], status["attempts"]) == ("DISPATCHING", attempt)
                assert (await app.status(waiting["id"]))["status"] == "WAITING"
                # This attempt was cut off by a crash an hour ago: delivered again, or given up.
                await app.alter(Invocation, run["id"], dispatched_at=an_hour_ago())
                if attempt == MAX_ATTEMPTS:
                    subscriber.behaviours["flaky"] = answer(200, {"cursor": 2})
                await sweep.requeue_due(app.rt)

            gave_up = await app.status(run["id"])
            assert (gave_up["status"], gave_up["attempts"]) == ("FAILED", MAX_ATTEMPTS)
            assert gave_up["completeInvocationInput"]["localizedError"]["message"] == (
                "the attempt was cut off: the process delivering it stopped, and no attempts are left"
            )
            # Each cut-off attempt is in the attempt log, as the sweep found it.
            logged = await app.attempts(run["id"])
            assert [(a["attempt"], a["error"]) for a in logged] == [
                (n, "the attempt was cut off: the process delivering it stopped")
                for n in range(1, MAX_ATTEMPTS + 1)
            ]
            assert all(a["durationMs"] is None and a["statusCode"] is None for a in logged)
            # Giving up ends the run: the tenant's next run starts at once (this sweep never
            # runs promote_due), and it is told that the run before it failed.
            received = await subscriber.wait_for(MAX_ATTEMPTS + 1)
            next_run = received[-1].body["_metadata"]
            assert next_run["invocationId"] == waiting["id"]
            assert next_run["lastRun"]["phase"] == "failed"
            assert (await app.final_status(waiting["id"]))["status"] == "COMPLETED"
            assert invocation_ids(received) == [run["id"]] * MAX_ATTEMPTS + [waiting["id"]]
        finally:
            release.set()


async def test_a_waiting_run_that_a_crash_left_without_a_run_in_flight_starts_at_the_sweep(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver() as app:
        await app.stop_loops()
        await app.create_trigger("t:lanes")
        await app.subscribe("t:lanes", subscriber.endpoint("ack", answer(200, {})), "ASYNC", debounce=True)
        [acme_run] = await app.start("t:lanes", {"n": 1}, tenantId="acme")
        [globex_run] = await app.start("t:lanes", {"n": 1}, tenantId="globex")
        received = await subscriber.wait_for(2)
        for invocation in (acme_run, globex_run):
            await app.reach(invocation["id"], "AWAITING_CALLBACK")
        [acme_next] = await app.start("t:lanes", {"n": 2}, tenantId="acme")
        [globex_next] = await app.start("t:lanes", {"n": 2}, tenantId="globex")
        # acme's run completed, and the process died before it started acme's next run.
        await app.alter(
            Invocation, acme_run["id"], status=Status.COMPLETED, completed=utcnow(), output={"cursor": 1}
        )
        assert (await app.status(acme_next["id"]))["status"] == "WAITING"

        await runs.promote_due(app.rt)
        received = await subscriber.wait_for(3)
        started = received[2].body["_metadata"]
        assert started["invocationId"] == acme_next["id"]
        assert started["lastRun"]["output"] == {"cursor": 1}
        # globex's run is still in flight: its next run still waits for it.
        assert (await app.status(globex_next["id"]))["status"] == "WAITING"
        globex_delivery = received[invocation_ids(received).index(globex_run["id"])]
        await app.callback(globex_delivery.body["_metadata"], {"cursor": 1})
        received = await subscriber.wait_for(4)
        assert invocation_ids(received)[3] == globex_next["id"]


async def test_a_bundle_stops_at_max_bundle_bytes_but_a_first_trigger_goes_whatever_its_size(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(max_bundle_bytes=1024) as app:
        await app.create_trigger("t:bytes")
        await app.subscribe("t:bytes", subscriber.endpoint("ack", answer(200, {})), "ASYNC", debounce=True)
        await app.start("t:bytes", {"n": 0}, tenantId="acme")
        await subscriber.wait_for(1)
        # About 2000 bytes, then three of about 420: two of those fit in 1024, three do not.
        big = (await app.start("t:bytes", {"pad": "x" * 2000}, tenantId="acme"))[0]["id"]
        small = [
            (await app.start("t:bytes", {"pad": "y" * 400, "n": n}, tenantId="acme"))[0]["id"]
            for n in (1, 2, 3)
        ]
        carried = []
        for count in (2, 3, 4):
            received = await subscriber.wait_for(count - 1)
            await app.callback(received[-1].body["_metadata"], {"run": count - 1})
            received = await subscriber.wait_for(count)
            carried.append([t["invocationId"] for t in received[-1].body["_metadata"]["runTriggers"]])
        assert carried == [[big], small[:2], small[2:]]


async def test_a_failing_sweep_step_does_not_stop_the_others(
    open_driver: OpenDriver, subscriber: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    release = asyncio.Event()
    async with open_driver(response_timeout=30.0, stop_grace=0.0) as app:
        await app.stop_loops()
        # Due for each step: an expiry, a delivery cut off by a crash, a run left waiting.
        await app.create_trigger("t:ack")
        await app.subscribe("t:ack", subscriber.endpoint("ack", answer(200, {})), "ASYNC")
        [overdue] = await app.start("t:ack", {})
        await app.create_trigger("t:held")
        await app.subscribe("t:held", subscriber.endpoint("held", held(release)), "SYNC")
        [stranded] = await app.start("t:held", {})
        await app.create_trigger("t:lane")
        await app.subscribe("t:lane", subscriber.endpoint("lane", answer(200, {})), "ASYNC", debounce=True)
        [lane_run] = await app.start("t:lane", {}, tenantId="acme")
        [lane_next] = await app.start("t:lane", {}, tenantId="acme")
        await subscriber.wait_for(3)
        await app.reach(overdue["id"], "AWAITING_CALLBACK")
        await app.reach(lane_run["id"], "AWAITING_CALLBACK")
        await app.alter(Invocation, overdue["id"], deadline=an_hour_ago())
        await app.alter(Invocation, stranded["id"], dispatched_at=an_hour_ago())
        await app.alter(Invocation, lane_run["id"], status=Status.COMPLETED, completed=utcnow())
        # The first step, expiry, meets a row the database refuses to change.
        async with app.rt.sessions() as session:
            await session.execute(
                text(
                    "CREATE TRIGGER refuse_expiry BEFORE UPDATE OF status ON invocations "
                    "WHEN NEW.status = 'EXPIRED' BEGIN SELECT RAISE(ABORT, 'cannot expire this row'); END"
                )
            )
            await session.commit()

        with caplog.at_level(logging.ERROR, logger="gateway.sweep"):
            await sweep.sweep_once(app.rt)
        assert "sweep: expire_due failed" in caplog.text
        received = await subscriber.wait_for(5)
        assert sorted(invocation_ids(received[3:])) == sorted([stranded["id"], lane_next["id"]])
        assert (await app.status(stranded["id"]))["attempts"] == 2
        assert (await app.status(overdue["id"]))["status"] == "AWAITING_CALLBACK"

        # The failed step runs again at the next round.
        async with app.rt.sessions() as session:
            await session.execute(text("DROP TRIGGER refuse_expiry"))
            await session.commit()
        await sweep.sweep_once(app.rt)
        assert (await app.status(overdue["id"]))["status"] == "EXPIRED"
        release.set()


def stored_status(database: Path, invocation_id: str) -> tuple[str, int]:
    """An invocation's status and attempts as the database holds them, no gateway running."""
    db = sqlite3.connect(database)
    try:
        status, attempts = db.execute(
            "SELECT status, attempts FROM invocations WHERE id = ?", (invocation_id,)
        ).fetchone()
    finally:
        db.close()
    return status, attempts


async def test_a_delivery_queued_but_not_started_at_a_stop_stays_pending_for_the_next_start(
    open_driver: OpenDriver, subscriber: Subscriber, tmp_path: Path
) -> None:
    release = asyncio.Event()
    # One delivery at a time, and a stop that waits for none.
    async with open_driver(dispatch_concurrency=1, stop_grace=0.0) as app:
        await app.stop_loops()
        await app.create_trigger("t:one")
        await app.subscribe("t:one", subscriber.endpoint("one", held(release)), "SYNC")
        [first] = await app.start("t:one", {"n": 1})
        await subscriber.wait_for(1)
        [second] = await app.start("t:one", {"n": 2})  # queued behind the first
        assert (await app.status(second["id"]))["status"] == "PENDING"
    release.set()
    # Stopped: the first was cut off in flight, the second never claimed.
    assert stored_status(tmp_path / "gateway.db", first["id"]) == ("DISPATCHING", 1)
    assert stored_status(tmp_path / "gateway.db", second["id"]) == ("PENDING", 0)
    assert invocation_ids(subscriber.received) == [first["id"]]

    subscriber.behaviours["one"] = answer(200, {"n": "done"})
    async with open_driver() as app:
        await app.stop_loops()
        await app.alter(Invocation, first["id"], dispatched_at=an_hour_ago())
        await app.alter(Invocation, second["id"], queued_at=an_hour_ago())
        await sweep.requeue_due(app.rt)
        for invocation, attempts in ((first, 2), (second, 1)):
            status = await app.final_status(invocation["id"])
            assert (status["status"], status["attempts"]) == ("COMPLETED", attempts)


async def test_an_invocation_whose_subscription_was_deleted_before_its_delivery_fails_saying_so(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    release = asyncio.Event()
    async with open_driver(dispatch_concurrency=1) as app:
        await app.create_trigger("t:held")
        await app.subscribe("t:held", subscriber.endpoint("held", held(release)), "SYNC")
        await app.create_trigger("t:gone")
        gone = await app.subscribe("t:gone", subscriber.endpoint("gone", answer(200, {})), "SYNC")
        [first] = await app.start("t:held", {})
        await subscriber.wait_for(1)  # the only delivery slot is taken
        [doomed] = await app.start("t:gone", {})
        await subscriptions.delete(app.rt, gone["id"])
        release.set()
        status = await app.final_status(doomed["id"])
        assert (status["status"], status["attempts"]) == ("FAILED", 1)
        assert status["completeInvocationInput"]["localizedError"]["message"] == (
            "the subscription was deleted before delivery"
        )
        assert (await app.final_status(first["id"]))["status"] == "COMPLETED"
        assert [r.path for r in subscriber.received] == ["/held"]
