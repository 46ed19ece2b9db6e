"""usecases/idempotency.py: a repeat with the same Idempotency-Key creates nothing and gets the
first answer; another request with it is refused, so is a repeat while the first runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from gateway.domain.clock import utcnow
from gateway.domain.documents import Raised
from gateway.domain.errors import Conflict, Invalid, Unprocessable
from gateway.domain.model import IdempotencyKey
from gateway.usecases import idempotency, raise_trigger
from tests.servers import Subscriber, answer
from tests.usecases.conftest import OpenDriver
from tests.usecases.driver import Driver

CLIENT = "producer"


async def notify_trigger(app: Driver, subscriber: Subscriber) -> None:
    await app.create_trigger("t:notify", name="Notify", type="FIRE_AND_FORGET")
    await app.subscribe("t:notify", subscriber.endpoint("a", answer(200)))
    await app.subscribe("t:notify", subscriber.endpoint("b", answer(200)))


async def back_date(app: Driver, key: str, **values: object) -> None:
    async with app.rt.sessions() as session:
        held = col(IdempotencyKey.client_id) == CLIENT, col(IdempotencyKey.key) == key
        await session.execute(update(IdempotencyKey).where(*held).values(**values))
        await session.commit()


def starting(app: Driver, n: int = 1) -> Callable[[], Awaitable[Sequence[Raised]]]:
    async def create() -> Sequence[Raised]:
        return await raise_trigger.start(app.rt, "t:notify", {"n": n}, {})

    return create


async def test_a_repeat_gets_the_first_answer_and_creates_nothing(
    app: Driver, subscriber: Subscriber
) -> None:
    await notify_trigger(app, subscriber)
    asked = idempotency.fingerprint("start", b'{"n": 1}')
    first, replayed = await idempotency.once(app.rt, CLIENT, "k-1", asked, starting(app))
    assert not replayed and len(first) == 2
    again, replayed = await idempotency.once(app.rt, CLIENT, "k-1", asked, starting(app))
    assert replayed
    assert [inv.id for inv in again] == [inv.id for inv in first]
    await app.settled()
    assert len(await app.statuses()) == 2  # nothing more was created
    # Another client's key of the same name is its own.
    _, replayed = await idempotency.once(app.rt, "someone-else", "k-1", asked, starting(app))
    assert not replayed


async def test_the_same_key_for_another_request_is_refused(app: Driver, subscriber: Subscriber) -> None:
    await notify_trigger(app, subscriber)
    await idempotency.once(app.rt, CLIENT, "k", idempotency.fingerprint("start", b"1"), starting(app))
    with pytest.raises(Unprocessable, match="used for a different request"):
        await idempotency.once(app.rt, CLIENT, "k", idempotency.fingerprint("start", b"2"), starting(app, 2))
    with pytest.raises(Unprocessable):  # the same body at the other endpoint
        await idempotency.once(app.rt, CLIENT, "k", idempotency.fingerprint("test", b"1"), starting(app))


async def test_a_repeat_while_the_first_is_handled_is_refused(app: Driver, subscriber: Subscriber) -> None:
    await notify_trigger(app, subscriber)
    release, entered = asyncio.Event(), asyncio.Event()

    async def slow() -> Sequence[Raised]:
        entered.set()
        await release.wait()
        return await starting(app)()

    asked = idempotency.fingerprint("start", b"{}")
    first = asyncio.create_task(idempotency.once(app.rt, CLIENT, "k", asked, slow))
    await entered.wait()
    with pytest.raises(Conflict, match="still being handled"):
        await idempotency.once(app.rt, CLIENT, "k", asked, starting(app))
    release.set()
    created, _ = await first
    again, replayed = await idempotency.once(app.rt, CLIENT, "k", asked, starting(app))
    assert replayed and [i.id for i in again] == [i.id for i in created]


async def test_a_failed_request_frees_its_key(app: Driver) -> None:
    asked = idempotency.fingerprint("start", b"{}")

    async def refused() -> Sequence[Raised]:
        raise Invalid("no such trigger")

    with pytest.raises(Invalid):
        await idempotency.once(app.rt, CLIENT, "k", asked, refused)
    with pytest.raises(Invalid):  # tried again, not answered 409
        await idempotency.once(app.rt, CLIENT, "k", asked, refused)


async def test_an_expired_or_abandoned_key_is_taken_anew_and_expired_ones_are_purged(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(idempotency_ttl=1) as app:
        await app.stop_loops()
        await notify_trigger(app, subscriber)
        asked = idempotency.fingerprint("start", b"{}")
        first, _ = await idempotency.once(app.rt, CLIENT, "k", asked, starting(app))
        await back_date(app, "k", expires=utcnow() - timedelta(seconds=1))
        second, replayed = await idempotency.once(app.rt, CLIENT, "k", asked, starting(app))
        assert not replayed and {i.id for i in second}.isdisjoint({i.id for i in first})

        # Held but never answered for over a minute: its process stopped; taken over.
        assert await idempotency.begin(app.rt, CLIENT, "stuck", asked) is None
        await back_date(app, "stuck", created=utcnow() - timedelta(minutes=2))
        _, replayed = await idempotency.once(app.rt, CLIENT, "stuck", asked, starting(app))
        assert not replayed

        await back_date(app, "k", expires=utcnow() - timedelta(seconds=1))
        assert await idempotency.purge_expired(app.rt) == 1
        async with app.rt.sessions() as session:
            left = (await session.execute(select(IdempotencyKey.key))).scalars().all()
        assert sorted(left) == ["stuck"]
