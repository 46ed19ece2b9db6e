"""The sweep's patience is two settings, GATEWAY_STRANDED_GRACE and GATEWAY_REQUEUE_AFTER: a
delivery in flight past the time limit plus the grace is delivered again, a queued one left
unclaimed for requeue_after is queued again, and neither sooner. Rows are back-dated and the
sweep's step is called directly (the runtime's own sweep waits an hour between rounds)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from gateway.domain.clock import utcnow
from gateway.domain.model import Invocation
from gateway.settings import Settings, SettingsError
from gateway.usecases import sweep
from tests.servers import Subscriber
from tests.usecases.conftest import OpenDriver
from tests.usecases.driver import held

QUIET_SWEEP = {"sweep_interval": 3600.0}


async def test_a_delivery_in_flight_past_the_limit_plus_the_stranded_grace_is_delivered_again(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    release = asyncio.Event()
    async with open_driver(**QUIET_SWEEP, response_timeout=30.0, stranded_grace=1.0, stop_grace=0.0) as app:
        await app.create_trigger("t:grace")
        await app.subscribe("t:grace", subscriber.endpoint("held", held(release)))
        [invocation] = await app.start("t:grace", {})
        try:
            await subscriber.wait_for(1)
            # Within the 30 s limit plus the 1 s grace: still the first attempt's to finish.
            await app.alter(Invocation, invocation["id"], dispatched_at=utcnow() - timedelta(seconds=30.5))
            assert await sweep.requeue_due(app.rt) == []
            # Past them, though well within the default grace of 5 s: cut off by a crash.
            await app.alter(Invocation, invocation["id"], dispatched_at=utcnow() - timedelta(seconds=31.5))
            assert [job.invocation_id for job in await sweep.requeue_due(app.rt)] == [invocation["id"]]
            await subscriber.wait_for(2)
            status = await app.status(invocation["id"])
            assert (status["status"], status["attempts"]) == ("DISPATCHING", 2)
        finally:
            release.set()


async def test_a_queued_delivery_unclaimed_for_requeue_after_is_queued_again(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    release = asyncio.Event()
    # One delivery at a time: while the first is held, the second stays queued, PENDING.
    async with open_driver(**QUIET_SWEEP, dispatch_concurrency=1, requeue_after=1.0) as app:
        await app.create_trigger("t:queued", type="FIRE_AND_FORGET")
        await app.subscribe("t:queued", subscriber.endpoint("held", held(release)))
        [first] = await app.start("t:queued", {"n": 1})
        await subscriber.wait_for(1)
        [second] = await app.start("t:queued", {"n": 2})
        try:
            assert (await app.status(second["id"]))["status"] == "PENDING"
            # Queued half a second ago: waiting its turn.
            await app.alter(Invocation, second["id"], queued_at=utcnow() - timedelta(seconds=0.5))
            assert await sweep.requeue_due(app.rt) == []
            # Queued a second and a half ago, though well within the default of 5 s: its
            # message may be lost, so it is queued again.
            await app.alter(Invocation, second["id"], queued_at=utcnow() - timedelta(seconds=1.5))
            assert [job.invocation_id for job in await sweep.requeue_due(app.rt)] == [second["id"]]
        finally:
            release.set()
        # Queued twice, delivered once: the second job finds it claimed.
        assert (await app.final_status(first["id"]))["status"] == "COMPLETED"
        assert (await app.final_status(second["id"]))["attempts"] == 1


@pytest.mark.parametrize("name", ["GATEWAY_STRANDED_GRACE", "GATEWAY_REQUEUE_AFTER"])
def test_the_patience_settings_are_read_and_checked(name: str) -> None:
    assert Settings().stranded_grace == Settings().requeue_after == 5.0  # the defaults
    field = name.removeprefix("GATEWAY_").lower()
    assert getattr(Settings.from_env({name: "0.25"}), field) == 0.25
    for unusable in ("0", "-1", "nan", "inf"):
        with pytest.raises(SettingsError, match=f"^{name} must be a positive number of seconds$"):
            Settings.from_env({name: unusable})
