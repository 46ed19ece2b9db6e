"""adapters/database/invocation_store.py against the ORM, on SQLite and on PostgreSQL: what
the store writes, the ORM reads unchanged, and the other way round; its transitions are
conditional; on SQLite it never runs inside a session's transaction."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from gateway.adapters.database import engine as database
from gateway.adapters.database.invocation_store import AttemptLog, InvocationStore
from gateway.domain.clock import utcnow
from gateway.domain.model import DeliveryAttempt, Invocation, InvocationType, NewInvocation, Source, Status
from tests.services import distributed_store, drop_store


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        engine = await sqlite_at(tmp_path)
        yield engine
        await engine.dispose()
        return
    store = await distributed_store(tmp_path)
    engine = database.create_engine(store.database_url)
    yield engine
    await engine.dispose()
    await drop_store(store)


async def sqlite_at(path: Path) -> AsyncEngine:
    engine = database.create_engine(f"sqlite+aiosqlite:///{path / 'store.db'}")
    await database.prepare_schema(engine)
    return engine


@pytest_asyncio.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = await sqlite_at(tmp_path)
    yield engine
    await engine.dispose()


def attempt_log(started: Any, status_code: int | None = 200, error: str | None = None) -> AttemptLog:
    return AttemptLog(
        started=started, duration_ms=12, status_code=status_code, error=error, response_excerpt="{}"
    )


def new_row(**fields: Any) -> NewInvocation:
    now = utcnow()
    row: NewInvocation = {
        "id": str(uuid.uuid4()),
        "trigger_id": "t:store",
        "trigger_type": "REQUEST_RESPONSE",
        "subscription_id": "s1",
        "subscription_name": "sub ✓",
        "dispatch_mode": "SYNC",
        "type": InvocationType.REAL_TIME,
        "status": Status.PENDING,
        "input": {"nested": {"list": [1, 2.5, None, "é"]}, "flag": True},
        "content_json": {},
        "attempts": 0,
        "created": now,
        "deadline": now + timedelta(seconds=90),
        "queued_at": now,
        "source": Source.API,
        "tenant_id": None,
        "option": "fast",
        "headers": {"x-a": "b"},
        "chain": None,
        "tracking_id": None,
        "traceparent": None,
    }
    row.update(fields)  # type: ignore[typeddict-item]
    return row


def fields(inv: Invocation) -> dict[str, Any]:
    return {column.name: getattr(inv, column.name) for column in Invocation.__table__.columns}  # type: ignore[attr-defined]


async def orm_read(engine: AsyncEngine, invocation_id: str) -> Invocation:
    async with database.sessionmaker(engine)() as session:
        inv = await session.get(Invocation, invocation_id)
    assert inv is not None
    return inv


async def test_what_the_store_writes_the_orm_reads_and_the_other_way_round(engine: AsyncEngine) -> None:
    store = InvocationStore(engine)
    rows = [new_row(), new_row(tenant_id="acme", chain=["a", "b"], headers=None, content_json={"k": [1]})]
    await store.insert(rows)
    for row in rows:
        through_orm, through_store = await orm_read(engine, row["id"]), await store.read(row["id"])
        assert through_store is not None
        assert fields(through_store) == fields(through_orm)
        assert {key: value for key, value in fields(through_orm).items() if key in row} == dict(row)
        assert through_orm.output is None and through_orm.completed is None

    stored: dict[str, Any] = {**new_row(), "status": Status.COMPLETED, "output": [1, {"a": None}]}
    written = Invocation(**stored)
    written.completed, written.error = utcnow(), "none ✓"
    async with database.sessionmaker(engine)() as session:
        session.add(written)
        await session.commit()
    read = await store.read(written.id)
    assert read is not None
    assert fields(read) == fields(await orm_read(engine, written.id))
    assert await store.read("no-such-invocation") is None


async def test_claims_and_records_are_conditional(engine: AsyncEngine) -> None:
    store = InvocationStore(engine)
    row = new_row()
    await store.insert([row])
    now = utcnow()
    claimed = await store.claim(row["id"], now)
    assert claimed is not None
    assert (claimed.status, claimed.attempts, claimed.dispatched_at) == (Status.DISPATCHING, 1, now)
    assert fields(claimed) == fields(await orm_read(engine, row["id"]))
    assert await store.claim(row["id"], now) is None  # no longer PENDING

    stale = Invocation(**{**fields(claimed), "attempts": 0})
    assert not await store.record(
        stale, Status.COMPLETED, {"x": 1}, None, now, attempt_log(now)
    )  # another attempt's
    assert await store.record(claimed, Status.COMPLETED, {"x": [1, "é"]}, None, now, attempt_log(now))
    done = await orm_read(engine, row["id"])
    assert (done.status, done.output, done.error) == (Status.COMPLETED, {"x": [1, "é"]}, None)
    assert done.completed == now
    assert not await store.record(
        claimed, Status.FAILED, None, "late", now, attempt_log(now)
    )  # already final

    awaiting = new_row()
    await store.insert([awaiting])
    claimed = await store.claim(awaiting["id"], now)
    assert claimed is not None
    assert await store.record(claimed, Status.AWAITING_CALLBACK, None, None, now, attempt_log(now))
    assert (await orm_read(engine, awaiting["id"])).completed is None


async def test_on_sqlite_a_statement_waits_for_a_sessions_transaction_and_stays_out_of_it(
    sqlite_engine: AsyncEngine,
) -> None:
    engine, store = sqlite_engine, InvocationStore(sqlite_engine)
    row = new_row()
    await store.insert([row])
    async with database.sessionmaker(engine)() as session:
        touch = update(Invocation).where(col(Invocation.id) == row["id"]).values(option="rolled back")
        await session.execute(touch)  # the session now holds the connection, in a transaction
        claim = asyncio.create_task(store.claim(row["id"], utcnow()))
        await asyncio.sleep(0.05)
        assert not claim.done()
        await session.rollback()
        await session.close()  # gives the connection back
        claimed = await asyncio.wait_for(claim, 5)
    assert claimed is not None and claimed.option == "fast"
    assert (await orm_read(engine, row["id"])).status == Status.DISPATCHING


async def test_a_lanes_last_run_and_a_runs_members(engine: AsyncEngine) -> None:
    store = InvocationStore(engine)
    start = utcnow()
    at = [start + timedelta(seconds=n) for n in range(6)]
    finished = {"status": Status.COMPLETED, "completed": at[2]}
    earlier = new_row(tenant_id="acme", **{**finished, "completed": at[1]})
    last = new_row(tenant_id="acme", run_id=None, **finished)
    other_tenant = new_row(tenant_id="globex", **{**finished, "completed": at[4]})
    no_tenant = new_row(**{**finished, "status": Status.FAILED, "completed": at[3]})
    test_run = new_row(tenant_id="acme", type=InvocationType.TEST, **{**finished, "completed": at[5]})
    bundled = new_row(tenant_id="acme", status=Status.BUNDLED, completed=at[5])
    current = new_row(tenant_id="acme", status=Status.DISPATCHING)
    rows = [earlier, last, other_tenant, no_tenant, test_run, bundled, current]
    await store.insert(rows)
    async with database.sessionmaker(engine)() as session:
        await session.execute(
            update(Invocation).where(col(Invocation.id) == last["id"]).values(output={"n": 1})
        )
        run = [current["id"], bundled["id"]]
        await session.execute(
            update(Invocation).where(col(Invocation.id).in_(run)).values(run_id=current["id"])
        )
        await session.commit()

    invocation = await store.read(current["id"])
    assert invocation is not None
    assert await store.last_run(invocation) == {
        "status": Status.COMPLETED,
        "dispatched_at": None,
        "completed": at[2],
        "output": {"n": 1},
    }
    without = await store.read(no_tenant["id"])
    assert without is not None and await store.last_run(without) is None  # only itself in its lane
    members = await store.run_members(current["id"])
    assert [m.id for m in members] == sorted(
        run, key=lambda i: (next(r for r in rows if r["id"] == i)["created"], i)
    )


async def test_on_sqlite_concurrent_writes_share_commits_and_one_writes_error_is_its_own(
    sqlite_engine: AsyncEngine,
) -> None:
    engine, store = sqlite_engine, InvocationStore(sqlite_engine)
    rows = [new_row() for _ in range(40)]
    await store.insert(rows)
    commits: list[str] = []
    connection = store._sqlite
    assert connection is not None  # taken at the first statement
    connection.set_trace_callback(lambda sql: commits.append(sql) if sql.upper() == "COMMIT" else None)
    claims = await asyncio.gather(*(store.claim(row["id"], utcnow()) for row in rows))
    claimed = [inv for inv in claims if inv is not None]
    assert [inv.status for inv in claimed] == [Status.DISPATCHING] * 40
    assert 1 <= len(commits) < 5, f"{len(commits)} commits for 40 claims"
    for inv in claimed:
        assert (await orm_read(engine, inv.id)).status == Status.DISPATCHING  # committed

    duplicate, fresh = new_row(id=rows[0]["id"]), new_row()
    outcomes = await asyncio.gather(
        store.insert([duplicate]),
        store.insert([fresh]),
        store.record(claimed[1], Status.COMPLETED, 1, None, utcnow(), attempt_log(utcnow())),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], sqlite3.IntegrityError), outcomes[0]
    assert outcomes[1] is None and outcomes[2] is True
    assert (await orm_read(engine, fresh["id"])).status == Status.PENDING
    assert (await orm_read(engine, rows[1]["id"])).status == Status.COMPLETED


async def test_on_sqlite_a_write_that_cannot_run_fails_its_caller_and_the_next_recovers(
    sqlite_engine: AsyncEngine,
) -> None:
    store = InvocationStore(sqlite_engine)
    row = new_row()
    await store.insert([row])
    await asyncio.sleep(0.05)  # the insert's connection is back in the pool
    assert store._sqlite is not None
    store._sqlite.close()  # behind the pool's back
    with pytest.raises(sqlite3.ProgrammingError):
        await asyncio.wait_for(store.claim(row["id"], utcnow()), 5)
    # The pool replaced the closed connection: the next write goes through.
    claimed = await asyncio.wait_for(store.claim(row["id"], utcnow()), 5)
    assert claimed is not None and claimed.status == Status.DISPATCHING


async def test_a_record_writes_its_attempt_in_the_same_transaction(engine: AsyncEngine) -> None:
    store = InvocationStore(engine)
    row = new_row(trigger_type="FIRE_AND_FORGET")
    await store.insert([row])
    now = utcnow()
    first = await store.claim(row["id"], now)
    assert first is not None
    retry_at = now + timedelta(seconds=5)
    log = attempt_log(now, 503, "the subscriber answered HTTP 503")
    assert await store.record(first, Status.RETRYING, None, log["error"], now, log, retry_at)
    retrying = await orm_read(engine, row["id"])
    assert (retrying.status, retrying.next_attempt, retrying.completed) == (Status.RETRYING, retry_at, None)

    await set_pending(engine, row["id"])
    second = await store.claim(row["id"], now)
    assert second is not None and second.attempts == 2
    stale = Invocation(**{**fields(second), "attempts": 1})
    assert not await store.record(stale, Status.COMPLETED, None, None, now, attempt_log(now))
    assert await store.record(second, Status.COMPLETED, None, None, now, attempt_log(now, 204))

    async with database.sessionmaker(engine)() as session:
        found = await session.scalars(
            select(DeliveryAttempt).where(col(DeliveryAttempt.invocation_id) == row["id"])
        )
        logged = sorted(found.all(), key=lambda a: a.id or 0)
    # The stale attempt's record changed nothing, but it was made: it is logged.
    assert [(a.attempt, a.status_code, a.error) for a in logged] == [
        (1, 503, "the subscriber answered HTTP 503"),
        (1, 200, None),
        (2, 204, None),
    ]
    assert logged[0].started == now and logged[0].duration_ms == 12 and logged[0].response_excerpt == "{}"


async def set_pending(engine: AsyncEngine, invocation_id: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(Invocation).where(col(Invocation.id) == invocation_id).values(status=Status.PENDING)
        )
