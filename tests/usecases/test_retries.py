"""Deliveries that survive real subscribers: retries on a schedule (with Retry-After), the
attempt log, a 410 that disables the subscription, and replay; driven through the use
cases with real subscribers on loopback and real time (schedules of fractions of a second)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from gateway.domain.clock import utcnow
from gateway.domain.errors import Conflict, NotFound
from tests.servers import Behaviour, Received, Subscriber, answer, bound_socket, serve
from tests.usecases.conftest import OpenDriver
from tests.usecases.driver import Driver

FAST = {"retry_schedule": "0.3,0.6", "retry_jitter": 0.0}
# The sweep queues a due retry within its interval (0.2 s in tests), the delivery takes a
# few ms more: an attempt arrives at most this long after it was due.
LATE = 0.45


def in_turn(*behaviours: Behaviour) -> Behaviour:
    """Each delivery gets the next behaviour; the last one stays."""
    remaining = list(behaviours)

    async def respond(received: Received) -> object:
        behaviour = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return await behaviour(received)

    return respond  # type: ignore[return-value]


def parsed(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def fire_and_forget(app: Driver, url: str, **fields: object) -> str:
    await app.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
    await app.subscribe("t:notify", url, **fields)  # type: ignore[arg-type]
    [invocation] = await app.start("t:notify", {"n": 1})
    return str(invocation["id"])


async def test_a_subscriber_down_for_two_attempts_gets_the_third_on_schedule(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    down = answer(503, raw=b'{"error": "deploying"}')
    async with open_driver(**FAST) as app:
        url = subscriber.endpoint("flaky", in_turn(down, down, answer(204)))
        invocation_id = await fire_and_forget(app, url)
        await subscriber.wait_for(1)
        await app.reach(invocation_id, "RETRYING")
        retrying = await app.status(invocation_id)
        assert retrying["completed"] is None and retrying["completeInvocationInput"] is None
        next_attempt = parsed(retrying["nextAttempt"])
        first = subscriber.received[0].arrived
        assert 0.25 <= next_attempt.timestamp() - first <= 0.35 + 0.1

        done = await app.final_status(invocation_id)
        assert (done["status"], done["attempts"], done["nextAttempt"]) == ("COMPLETED", 3, None)
        arrived = [r.arrived for r in subscriber.received]
        gaps = [later - earlier for earlier, later in itertools.pairwise(arrived)]
        assert 0.3 <= gaps[0] <= 0.3 + LATE, gaps
        assert 0.6 <= gaps[1] <= 0.6 + LATE, gaps
        # The same invocation, so the same webhook-id, every time.
        assert {r.headers["webhook-id"] for r in subscriber.received} == {invocation_id}

        logged = await app.attempts(invocation_id)
        assert [(a["attempt"], a["statusCode"]) for a in logged] == [(1, 503), (2, 503), (3, 204)]
        assert logged[0]["error"] == "the subscriber answered HTTP 503"
        assert logged[0]["responseExcerpt"] == '{"error": "deploying"}'
        assert logged[2]["error"] is None and logged[2]["responseExcerpt"] is None
        assert all(a["durationMs"] >= 0 for a in logged)


async def test_when_the_schedule_is_exhausted_the_delivery_fails_with_every_attempt_logged(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(retry_schedule="0.1,0.1", retry_jitter=0.0) as app:
        url = subscriber.endpoint("broken", answer(500, raw=b"x" * 5000))
        invocation_id = await fire_and_forget(app, url)
        failed = await app.final_status(invocation_id)
        assert (failed["status"], failed["attempts"]) == ("FAILED", 3)
        assert (
            failed["completeInvocationInput"]["localizedError"]["message"]
            == "the subscriber answered HTTP 500"
        )
        logged = await app.attempts(invocation_id)
        assert [a["statusCode"] for a in logged] == [500, 500, 500]
        assert logged[0]["responseExcerpt"] == "x" * 1024  # the first KiB of the answer


@pytest.mark.parametrize(
    ("status", "retried"), [(400, False), (404, False), (408, True), (429, True), (502, True)]
)
async def test_which_answers_are_tried_again(
    open_driver: OpenDriver, subscriber: Subscriber, status: int, retried: bool
) -> None:
    async with open_driver(retry_schedule="0.1", retry_jitter=0.0) as app:
        invocation_id = await fire_and_forget(app, subscriber.endpoint("answer", answer(status, {})))
        final = await app.final_status(invocation_id)
        assert (final["status"], final["attempts"]) == ("FAILED", 2 if retried else 1)


async def test_retry_after_delays_the_next_attempt_up_to_its_cap(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    throttled = answer(429, {}, headers={"retry-after": "1"})
    async with open_driver(retry_schedule="0.1", retry_jitter=0.0) as app:
        invocation_id = await fire_and_forget(
            app, subscriber.endpoint("busy", in_turn(throttled, answer(200)))
        )
        assert (await app.final_status(invocation_id))["status"] == "COMPLETED"
        first, second = (r.arrived for r in subscriber.received)
        assert 1.0 <= second - first <= 1.0 + LATE

    subscriber.received.clear()
    unavailable = answer(503, {}, headers={"retry-after": "3600"})
    async with open_driver(retry_schedule="0.1", retry_jitter=0.0, retry_after_max=0.5) as app:
        url = subscriber.endpoint("capped", in_turn(unavailable, answer(200)))
        await app.create_trigger("t:capped", name="Capped", type="FIRE_AND_FORGET")
        await app.subscribe("t:capped", url)
        [invocation] = await app.start("t:capped", {})
        assert (await app.final_status(invocation["id"]))["status"] == "COMPLETED"
        first, second = (r.arrived for r in subscriber.received)
        assert 0.5 <= second - first <= 0.5 + LATE


async def test_a_request_response_delivery_is_tried_again_only_when_nothing_was_sent(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    # A socket bound but not listening: connections are refused until the subscriber starts.
    sock = bound_socket()
    port = sock.getsockname()[1]
    async with open_driver(retry_schedule="0.3,0.3,0.3", retry_jitter=0.0) as app:
        await app.create_trigger("t:late")
        await app.subscribe("t:late", f"http://127.0.0.1:{port}/late")
        await app.create_trigger("t:error")
        await app.subscribe("t:error", subscriber.endpoint("error", answer(500, {})))
        # A 500 may mean the subscriber acted: not sent again.
        [started] = await app.start("t:error", {})
        errored = await app.final_status(started["id"])
        assert (errored["status"], errored["attempts"]) == ("FAILED", 1)
        [refused] = await app.start("t:late", {})
        await app.reach(refused["id"], "RETRYING")
        assert "could not deliver" in (await app.attempts(refused["id"]))[0]["error"]

        late = Subscriber()
        async with serve(late.app(), sock=sock):
            late.behaviours["late"] = answer(200, {"approver": "ok"})
            done = await app.final_status(refused["id"])
        assert (done["status"], done["completeInvocationInput"]["output"]) == (
            "COMPLETED",
            {"approver": "ok"},
        )
        assert done["attempts"] >= 2


async def test_a_request_response_retry_never_goes_past_the_deadline(open_driver: OpenDriver) -> None:
    async with open_driver(retry_schedule="5", retry_jitter=0.0) as app:
        await app.create_trigger()
        await app.subscribe("test:approver", "http://127.0.0.1:9/nobody", responseDeadline="PT2S")
        [invocation] = await app.start("test:approver", {})
        final = await app.final_status(invocation["id"])
        assert (final["status"], final["attempts"]) == ("FAILED", 1)


async def test_410_gone_fails_at_once_and_disables_the_subscription(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(**FAST) as app:
        url = subscriber.endpoint("gone", answer(410, {}))
        await app.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
        sub = await app.subscribe("t:notify", url)
        [invocation] = await app.start("t:notify", {})
        final = await app.final_status(invocation["id"])
        assert (final["status"], final["attempts"]) == ("FAILED", 1)
        await app.settled()
        disabled = await app.subscription(sub["id"])
        assert disabled["enabled"] is False
        assert disabled["disabledReason"].startswith(
            f"the subscriber answered 410 Gone to invocation {invocation['id']} at "
        )
        assert await app.start("t:notify", {}) == []  # nothing delivered to it any more

        enabled = await app.patch_subscription(
            sub["id"], [{"op": "replace", "path": "/enabled", "value": True}]
        )
        assert (enabled["enabled"], enabled["disabledReason"]) == (True, None)


async def test_a_failed_invocation_replayed_is_delivered_again_as_a_new_attempt(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(retry_schedule="", retry_jitter=0.0) as app:
        url = subscriber.endpoint("flaky", in_turn(answer(500, {}), answer(200)))
        invocation_id = await fire_and_forget(app, url)
        assert (await app.final_status(invocation_id))["status"] == "FAILED"

        replayed = await app.replay(invocation_id)
        assert replayed["status"] in ("PENDING", "DISPATCHING", "COMPLETED")
        assert replayed["completeInvocationInput"] is None or replayed["status"] == "COMPLETED"
        done = await app.final_status(invocation_id)
        assert (done["status"], done["attempts"]) == ("COMPLETED", 2)
        assert [r.headers["webhook-id"] for r in subscriber.received] == [invocation_id] * 2
        assert [a["attempt"] for a in await app.attempts(invocation_id)] == [1, 2]

        # COMPLETED fire-and-forget: replayable too (say, a subscriber that lost its data).
        await app.replay(invocation_id)
        assert (await app.final_status(invocation_id))["attempts"] == 3
        await subscriber.wait_for(3)


async def test_a_replay_counts_the_retry_schedule_from_itself(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(retry_schedule="0.1", retry_jitter=0.0) as app:
        invocation_id = await fire_and_forget(app, subscriber.endpoint("down", answer(503, {})))
        assert (await app.final_status(invocation_id))["attempts"] == 2
        await app.replay(invocation_id)
        # Two more attempts (the schedule again), not one that finds it exhausted.
        assert (await app.final_status(invocation_id))["attempts"] == 4


async def test_what_cannot_be_replayed_is_refused(open_driver: OpenDriver, subscriber: Subscriber) -> None:
    async with open_driver() as app:
        await app.create_trigger()
        await app.subscribe("test:approver", subscriber.endpoint("ok", answer(200, {"approver": "x"})))
        [invocation] = await app.start("test:approver", {})
        assert (await app.final_status(invocation["id"]))["status"] == "COMPLETED"
        with pytest.raises(Conflict, match="only FAILED and EXPIRED invocations"):
            await app.replay(invocation["id"])  # a request-response output was accepted
        with pytest.raises(NotFound):
            await app.replay("no-such-invocation")
        with pytest.raises(NotFound):
            await app.attempts("no-such-invocation")


async def test_an_expired_request_response_replayed_gets_a_fresh_deadline(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver() as app:
        await app.create_trigger()
        await app.subscribe(
            "test:approver", subscriber.endpoint("slow", answer(200, {})), "ASYNC", responseDeadline="PT1S"
        )
        [invocation] = await app.start("test:approver", {})
        expired = await app.final_status(invocation["id"])
        assert expired["status"] == "EXPIRED"

        before = utcnow()
        replayed = await app.replay(invocation["id"])
        deadline = parsed(replayed["deadline"])
        assert before + timedelta(seconds=0.9) <= deadline <= utcnow() + timedelta(seconds=1.1)
        [_, again] = await subscriber.wait_for(2)
        await app.reach(invocation["id"], "AWAITING_CALLBACK")
        assert await app.complete(again.body["_metadata"], {"approver": "late but fine"}) == 204
        done = await app.status(invocation["id"])
        assert (done["status"], done["completeInvocationInput"]["output"]) == (
            "COMPLETED",
            {"approver": "late but fine"},
        )


async def test_a_subscriptions_failures_since_a_time_are_replayed_at_once(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    # Six failures in a row would open the circuit (then deliveries wait): this is about replay.
    async with open_driver(retry_schedule="", breaker_failures=0) as app:
        url = subscriber.endpoint("outage", answer(503, {}))
        await app.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
        sub = await app.subscribe("t:notify", url)
        [old] = await app.start("t:notify", {"n": 0})
        assert (await app.final_status(old["id"]))["status"] == "FAILED"
        since = utcnow()
        started = [(await app.start("t:notify", {"n": n}))[0]["id"] for n in range(1, 6)]
        for invocation_id in started:
            assert (await app.final_status(invocation_id))["status"] == "FAILED"

        subscriber.behaviours["outage"] = answer(200)  # it is back
        replayed = await app.replay_subscription(sub["id"], since=since.isoformat())
        assert replayed == 5
        for invocation_id in started:
            assert (await app.final_status(invocation_id))["status"] == "COMPLETED"
        assert (await app.status(old["id"]))["status"] == "FAILED"  # before `since`
        # Only what is still FAILED or EXPIRED: nothing now.
        assert await app.replay_subscription(sub["id"], since=since.isoformat()) == 0
        with pytest.raises(NotFound):
            await app.replay_subscription("no-such-subscription", since=since.isoformat())


async def test_a_replay_sends_back_what_a_subscriber_deployed_meanwhile_needs(
    open_driver: OpenDriver,
) -> None:
    """An outage end to end: the subscriber's port refuses connections, then it starts."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    async with open_driver(retry_schedule="0.2,0.2", retry_jitter=0.0) as app:
        invocation_id = await fire_and_forget(app, f"http://127.0.0.1:{port}/hook")
        failed = await app.final_status(invocation_id)
        assert (failed["status"], failed["attempts"]) == ("FAILED", 3)
        assert all("could not deliver" in a["error"] for a in await app.attempts(invocation_id))
        back = Subscriber()
        back.behaviours["hook"] = answer(200)
        async with serve(back.app(), sock=sock):
            await app.replay(invocation_id)
            assert (await app.final_status(invocation_id))["status"] == "COMPLETED"
        assert [r.body["n"] for r in back.received] == [1]
