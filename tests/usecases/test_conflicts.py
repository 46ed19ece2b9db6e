"""409s that need a precise moment: a callback for an invocation queued but never delivered
(and one re-queued after its delivery, which is accepted), and a patch whose new URL changed
under it while the URL was being checked. Callbacks to SYNC and fire-and-forget invocations
are tested in tests/usecases/test_callbacks.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from gateway.adapters.outbound.target_policy import RESOLVE_TIME_LIMIT, TargetPolicy
from gateway.domain.clock import utcnow
from gateway.domain.errors import Conflict
from gateway.domain.model import Invocation
from gateway.usecases import callbacks, sweep
from tests.servers import Subscriber, answer
from tests.usecases.conftest import OpenDriver
from tests.usecases.driver import Driver, held


async def test_a_callback_before_any_delivery_is_409_but_one_after_a_delivery_is_taken_even_if_requeued(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    release = asyncio.Event()
    # One delivery at a time, the sweep only when called, and a stop that waits for nothing.
    async with open_driver(dispatch_concurrency=1, response_timeout=30.0, stop_grace=0.0) as app:
        await app.stop_loops()
        await app.create_trigger()
        await app.subscribe("test:approver", subscriber.endpoint("ack", held(release)), "ASYNC")
        [first] = await app.start("test:approver", {})
        [delivered] = await subscriber.wait_for(1)  # holds the only delivery slot
        [queued] = await app.start("test:approver", {})
        assert (await app.status(queued["id"]))["status"] == "PENDING"
        with pytest.raises(Conflict) as refused:
            await callbacks.complete(app.rt, queued["id"], queued["secret"], {"approver": "x"}, None)
        assert refused.value.message == "the invocation has not been delivered yet"
        assert (await app.status(queued["id"]))["status"] == "PENDING"

        # The first one's delivery counts as cut off by a crash: re-queued, PENDING again
        # (behind its own attempt, which still holds the slot), and its subscriber, who has it,
        # may call back.
        await app.alter(Invocation, first["id"], dispatched_at=utcnow() - timedelta(hours=1))
        await sweep.requeue_due(app.rt)
        requeued = await app.status(first["id"])
        assert (requeued["status"], requeued["attempts"]) == ("PENDING", 1)
        assert await app.complete(delivered.body["_metadata"], {"approver": "x"}) == 204
        assert (await app.status(first["id"]))["status"] == "COMPLETED"

        release.set()
        await app.reach(queued["id"], "AWAITING_CALLBACK")
        [_, second] = await subscriber.wait_for(2)
        assert second.body["_metadata"]["invocationId"] == queued["id"]
        assert await app.complete(second.body["_metadata"], {"approver": "y"}) == 204


@dataclass(frozen=True)
class PausedCheck(TargetPolicy):
    """The real SSRF check of a new URL, then a pause until the test resumes: the window in
    which another change may land between the check (done without the lock) and the save."""

    checked: asyncio.Event = field(default_factory=asyncio.Event)
    resume: asyncio.Event = field(default_factory=asyncio.Event)

    async def check_url(self, url: str, *, time_limit: float = RESOLVE_TIME_LIMIT) -> None:
        await super().check_url(url, time_limit=time_limit)
        self.checked.set()
        await self.resume.wait()


async def test_a_patch_whose_new_url_changed_while_it_was_checked_is_409_and_changes_nothing(
    app: Driver, subscriber: Subscriber
) -> None:
    first, meanwhile, unchecked = (subscriber.endpoint(name, answer(200, {})) for name in ("a", "b", "c"))
    await app.create_trigger()
    sub = await app.subscribe("test:approver", first, description=meanwhile)
    paused = PausedCheck(app.rt.targets.allowed, app.rt.targets.require_https)
    app.rt.targets = paused
    # The URL this patch sets depends on another field, which changes while the URL is checked.
    copy = [{"op": "copy", "from": "/description", "path": "/httpConfig/url"}]
    patching = asyncio.create_task(app.patch_subscription(sub["id"], copy))
    await paused.checked.wait()
    await app.patch_subscription(sub["id"], [{"op": "replace", "path": "/description", "value": unchecked}])
    paused.resume.set()
    with pytest.raises(Conflict) as refused:
        await patching
    assert (
        refused.value.message
        == "the subscription changed while its new URL was checked; send the patch again"
    )
    stored = await app.subscription(sub["id"])
    assert (stored["httpConfig"]["url"], stored["description"]) == (first, unchecked)

    # Sent again, the patch checks the URL it now sets, and lands.
    assert (await app.patch_subscription(sub["id"], copy))["httpConfig"]["url"] == unchecked
