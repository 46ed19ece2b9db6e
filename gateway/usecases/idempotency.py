"""Idempotent starts (the IETF httpapi Idempotency-Key draft): the same key from the same API
client within GATEWAY_IDEMPOTENCY_TTL is answered with what the first request created, and
creates nothing; the same key for another request is refused (422), and so is a repeat
while the first is still being handled (409)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from gateway.domain.clock import utcnow
from gateway.domain.documents import Raised
from gateway.domain.errors import Conflict, Unprocessable
from gateway.domain.model import IdempotencyKey, Invocation
from gateway.runtime import Runtime

# A key held this long without an answer was left by a process that stopped mid-request:
# the next request with it goes ahead. (A start answers within a second or so; a wait for
# the outcome, with Prefer, comes after the key has its answer.)
ABANDONED_AFTER = timedelta(seconds=60)
# Expired keys deleted per sweep.
PURGE_BATCH = 500


def fingerprint(endpoint: str, body: bytes) -> str:
    return hashlib.sha256(endpoint.encode() + b"\0" + body).hexdigest()


async def once(
    rt: Runtime, client_id: str, key: str, asked: str, create: Callable[[], Awaitable[Sequence[Raised]]]
) -> tuple[Sequence[Raised], bool]:
    """What ``create`` creates, holding ``key`` meanwhile; or, for a repeat, what the first
    request with it created (and True)."""
    earlier = await begin(rt, client_id, key, asked)
    if earlier is not None:
        return earlier, True
    try:
        created = await create()
    except BaseException:
        with contextlib.suppress(Exception):  # else the key frees itself when abandoned
            await release(rt, client_id, key)
        raise
    await finish(rt, client_id, key, [inv.id for inv in created])
    return created, False


async def begin(rt: Runtime, client_id: str, key: str, asked: str) -> list[Invocation] | None:
    """Hold ``key`` for this request (None: go ahead, then ``finish`` or ``release``), or
    the invocations the first request with it created."""
    now = utcnow()
    async with rt.sessions() as session:
        held = await session.get(IdempotencyKey, (client_id, key))
        if held is not None and held.expires <= now:
            await session.delete(held)
            await session.flush()
            held = None
        if held is None:
            session.add(_held(client_id, key, asked, now, rt.settings.idempotency_ttl))
            try:
                await session.commit()
            except IntegrityError:  # another request took it meanwhile
                raise _in_progress(key) from None
            return None
        if held.fingerprint != asked:
            raise Unprocessable(
                f"Idempotency-Key {key!r} was used for a different request; use a new key for a new request"
            )
        if held.invocation_ids is None:
            if held.created > now - ABANDONED_AFTER:
                raise _in_progress(key)
            held.created = now  # abandoned: this request takes it over
            await session.commit()
            return None
        ids = held.invocation_ids
    found = {inv.id: inv for inv in [await rt.invocations.read(i) for i in ids] if inv is not None}
    return [found[i] for i in ids if i in found]


async def finish(rt: Runtime, client_id: str, key: str, invocation_ids: list[str]) -> None:
    async with rt.sessions() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(col(IdempotencyKey.client_id) == client_id, col(IdempotencyKey.key) == key)
            .values(invocation_ids=invocation_ids)
        )
        await session.commit()


async def release(rt: Runtime, client_id: str, key: str) -> None:
    """The request failed: a repeat of it may go ahead."""
    async with rt.sessions() as session:
        await session.execute(
            delete(IdempotencyKey).where(
                col(IdempotencyKey.client_id) == client_id,
                col(IdempotencyKey.key) == key,
                col(IdempotencyKey.invocation_ids).is_(None),
            )
        )
        await session.commit()


async def purge_expired(rt: Runtime) -> int:
    """Delete a batch of expired keys (a sweep step); how many."""
    now = utcnow()
    batch = select(IdempotencyKey.client_id, IdempotencyKey.key).where(col(IdempotencyKey.expires) <= now)
    async with rt.sessions() as session:
        result = await session.execute(
            delete(IdempotencyKey).where(
                tuple_(IdempotencyKey.client_id, IdempotencyKey.key).in_(batch.limit(PURGE_BATCH))
            )
        )
        await session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def _held(client_id: str, key: str, asked: str, now: datetime, ttl: int) -> IdempotencyKey:
    return IdempotencyKey(
        client_id=client_id,
        key=key,
        fingerprint=asked,
        invocation_ids=None,
        created=now,
        expires=now + timedelta(seconds=ttl),
    )


def _in_progress(key: str) -> Conflict:
    return Conflict(
        f"a request with Idempotency-Key {key!r} is still being handled; repeat it once that one is answered"
    )
