"""The statements on every invocation's path: insert (a start), claim, run context and
record (a delivery), read (a status). They run without the ORM: each is a Core statement
built once, compiled once for the engine's dialect, and run on the driver's own connection
with the column types' own bind and result processors, so what they store and read is
exactly what the ORM stores and reads. Profiled, the ORM's ``session.get`` of an invocation
cost about 380 µs of CPU and this read about 35. Every other statement keeps SQLModel.

SQLite: the engine has one connection (engine.py). When no session holds it, a statement
runs on it directly: the sqlite3 calls never yield to the event loop, so nothing else can
use the connection meanwhile. When a session holds it, the statement checks it out and
waits its turn as a session does. Writes are group-committed: each waits for the loop's
next turn, when one task runs every write queued by then in one transaction. PostgreSQL:
each statement runs on a pooled connection's asyncpg driver, a multi-row insert in one
transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

import asyncpg
from sqlalchemy import bindparam, event, insert, or_, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import configure_mappers
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.selectable import Select

from gateway.adapters.database.sqlite_inline import InlineConnection
from gateway.domain.model import (
    RUN_PHASES,
    DeliveryAttempt,
    Invocation,
    InvocationType,
    NewInvocation,
    Status,
)

_TABLE: Any = Invocation.__table__  # type: ignore[attr-defined]
_C = _TABLE.c
# The columns a start writes (NewInvocation's keys, the optional ones as NULL when absent).
_NEW_COLUMNS = tuple(NewInvocation.__annotations__)
_ATTEMPTS: Any = DeliveryAttempt.__table__  # type: ignore[attr-defined]
_ATTEMPT_COLUMNS = (
    "invocation_id",
    "attempt",
    "started",
    "duration_ms",
    "status_code",
    "error",
    "response_excerpt",
)


class AttemptLog(TypedDict):
    """What the attempt log keeps of one attempt, besides whose and which it was."""

    started: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_excerpt: str | None


@dataclass(frozen=True)
class _Prepared:
    """A statement compiled for one dialect, with what its parameters and results need."""

    sql: str
    names: tuple[str, ...]  # the parameters, in the order the SQL takes them
    literals: Mapping[str, Any]  # values the statement itself holds (its constants)
    binds: Mapping[str, Callable[[Any], Any]]
    columns: tuple[str, ...]  # what it returns
    results: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def of(cls, statement: Insert | Update | Select[Any], dialect: Dialect) -> _Prepared:
        compiled: Any = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup)
        literals = {name: compiled.binds[name].value for name in names}
        # Columns the statement leaves to their Python-side default (a scalar, here): the
        # ORM's execution fills those in, the driver would store NULL.
        for column in getattr(compiled, "insert_prefetch", ()):
            if column.default is not None and column.default.is_scalar:
                literals[column.key] = column.default.arg
        returned = [_C[name] for name in _returned_names(statement)]
        return cls(
            compiled.string,
            names,
            literals,
            dict(compiled._bind_processors),
            tuple(column.name for column in returned),
            tuple(column.type._cached_result_processor(dialect, None) for column in returned),
        )

    def parameters(self, values: Mapping[str, Any]) -> list[Any]:
        row = []
        for name in self.names:
            value = values[name] if name in values else self.literals.get(name)
            process = self.binds.get(name)
            # None is NULL (JSON's processor would store the text 'null': both read as None).
            row.append(value if process is None or value is None else process(value))
        return row

    def values(self, row: Sequence[Any]) -> dict[str, Any]:
        return {
            name: value if process is None else process(value)
            for name, process, value in zip(self.columns, self.results, row, strict=True)
        }

    def invocation(self, row: Sequence[Any]) -> Invocation:
        """An Invocation built as the ORM's loader builds one: no validation, no events."""
        inv: Invocation = _MANAGER.new_instance()
        inv.__dict__.update(self.values(row))
        return inv


@asynccontextmanager
async def _invalidated_if_broken(connection: AsyncConnection, raw: Any) -> AsyncIterator[None]:
    """The raw asyncpg calls bypass SQLAlchemy's error handling: a connection that broke (a
    PostgreSQL restart) or was left mid-statement (a cancelled task) must not go back to the
    pool for the next caller."""
    try:
        yield
    except BaseException as exc:
        if raw.is_closed() or not isinstance(exc, asyncpg.PostgresError):
            await connection.invalidate()
        raise


def _returned_names(statement: Any) -> list[str]:
    """The columns the statement returns, in its order."""
    dml = isinstance(statement, Insert | Update)
    columns: Any = statement._returning if dml else statement.selected_columns
    return [column.name for column in columns]


def _last_run_query(with_tenant: bool) -> Select[Any]:
    tenant = _C.tenant_id == bindparam("tenant_id") if with_tenant else _C.tenant_id.is_(None)
    return (
        select(_C.status, _C.dispatched_at, _C.completed, _C.output)
        .where(_C.subscription_id == bindparam("subscription_id"), tenant)
        .where(_C.id != bindparam("invocation_id"))
        # NOT NULL first: PostgreSQL sorts NULLs first in DESC, and the lane's unfinished rows
        # would be read before its history. Test invocations are not runs.
        .where(_C.completed.is_not(None), _C.type == InvocationType.REAL_TIME.value)
        .where(or_(*(_C.status == status.value for status in RUN_PHASES)))
        .order_by(_C.completed.desc())
        .limit(1)
    )


configure_mappers()  # new_instance needs the mapper configured, as a first query would
_MANAGER: Any = Invocation._sa_class_manager  # type: ignore[attr-defined]


# One execution of a statement: its parameters, already processed.
Parameters = list[Any]
Rows = list[Sequence[Any]]


# A statement and the parameters of each of its runs.
_Step = tuple[_Prepared, list[Parameters]]


@dataclass
class _Write:
    """Statements to run in one transaction, each once per parameter list; ``done`` gets the
    rows the first statement's last run returned."""

    steps: list[_Step]
    done: asyncio.Future[Rows]


def _run_batch(connection: sqlite3.Connection, writes: Sequence[_Write]) -> None:
    """Run the writes in one transaction and commit once; every write's ``done`` is resolved,
    whatever happens. Never yields to the loop.

    If a statement is refused (a duplicate id, say), the writes run again one by one, so
    that the error is that write's own. Any other error (I/O, a locked or closed database)
    fails the whole batch: running each again would only meet it again."""
    try:
        results = [_run(connection, write) for write in writes]
        connection.commit()
    except sqlite3.IntegrityError as exc:
        if not _rolled_back(connection, writes, exc):
            return
        if len(writes) == 1:
            _fail(writes, exc)
            return
        for write in writes:
            _run_batch(connection, [write])
        return
    except Exception as exc:
        if _rolled_back(connection, writes, exc):
            _fail(writes, exc)
        return
    for write, rows in zip(writes, results, strict=True):
        if not write.done.done():
            write.done.set_result(rows)


def _rolled_back(connection: sqlite3.Connection, writes: Sequence[_Write], error: Exception) -> bool:
    try:
        connection.rollback()
    except Exception:
        _fail(writes, error)
        return False
    return True


def _closed(connection: sqlite3.Connection) -> bool:
    try:
        connection.total_changes  # noqa: B018 (any attribute read raises once it is closed)
    except sqlite3.ProgrammingError:
        return True
    return False


def _fail(writes: Sequence[_Write], error: BaseException) -> None:
    for write in writes:
        if not write.done.done():
            write.done.set_exception(error)


async def _run_on_asyncpg(raw: Any, steps: Sequence[_Step]) -> Rows:
    """The steps in one transaction (a single statement is one already)."""
    if len(steps) == 1 and len(steps[0][1]) == 1:
        statement, [parameters] = steps[0]
        return list(await raw.fetch(statement.sql, *parameters))
    returned: list[Rows] = []
    async with raw.transaction():
        for statement, runs in steps:
            if len(runs) > 1:
                await raw.executemany(statement.sql, runs)
                returned.append([])
            else:
                returned.append(list(await raw.fetch(statement.sql, *runs[0])))
    return returned[0]


def _run(connection: sqlite3.Connection, write: _Write) -> Rows:
    returned: list[Rows] = []
    for statement, runs in write.steps:
        if len(runs) > 1:
            connection.executemany(statement.sql, runs)
            returned.append([])
        else:
            returned.append(connection.execute(statement.sql, runs[0]).fetchall())
    return returned[0]


class InvocationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        dialect = engine.dialect
        new_row: dict[str, Any] = {name: bindparam(name) for name in _NEW_COLUMNS}
        self._insert = _Prepared.of(insert(_TABLE).values(new_row), dialect)
        self._claim = _Prepared.of(
            update(_TABLE)
            .where(_C.id == bindparam("invocation_id"), _C.status == Status.PENDING.value)
            .values(status=Status.DISPATCHING.value, dispatched_at=bindparam("now"), attempts=_C.attempts + 1)
            .returning(*_TABLE.columns),
            dialect,
        )
        # Only the attempt that claimed it records its outcome (or gives the claim back): not
        # one a sweep started again, nor after a callback completed it meanwhile.
        this_attempt = update(_TABLE).where(
            _C.id == bindparam("invocation_id"),
            _C.status == Status.DISPATCHING.value,
            _C.attempts == bindparam("attempt"),
        )
        outcome: dict[str, Any] = {
            name: bindparam(name)
            for name in ("status", "output", "error", "completed", "next_attempt", "fallback")
        }
        recorded = this_attempt.values(outcome).returning(_C.id)
        # The attempt's log entry, written with its outcome: on SQLite a second statement in
        # the same transaction, on PostgreSQL the same statement (a data-modifying WITH: one
        # round trip, not four for BEGIN, UPDATE, INSERT, COMMIT).
        entry: dict[str, Any] = {
            name: bindparam(name if name in ("invocation_id", "attempt") else f"log_{name}")
            for name in _ATTEMPT_COLUMNS
        }
        log_attempt = insert(_ATTEMPTS).values(entry)
        self._record_steps: tuple[_Prepared, ...]
        if dialect.name == "postgresql":
            logged = select(recorded.cte("recorded").c.id).add_cte(log_attempt.cte("logged"))
            self._record_steps = (_Prepared.of(logged, dialect),)
        else:
            self._record_steps = (_Prepared.of(recorded, dialect), _Prepared.of(log_attempt, dialect))
        given_back: dict[str, Any] = {
            "status": bindparam("status"),
            "next_attempt": bindparam("next_attempt"),
            "dispatched_at": None,
            "attempts": _C.attempts - 1,
        }
        self._release = _Prepared.of(this_attempt.values(given_back).returning(_C.id), dialect)
        self._read_one = _Prepared.of(select(_TABLE).where(_C.id == bindparam("invocation_id")), dialect)
        self._run_members = _Prepared.of(
            select(_TABLE).where(_C.run_id == bindparam("run_id")).order_by(_C.created, _C.id), dialect
        )
        # One per kind of lane: SQL has no equality that is true of two NULLs on both databases.
        self._last_run = {
            with_tenant: _Prepared.of(_last_run_query(with_tenant), dialect) for with_tenant in (False, True)
        }
        # SQLite: the engine's one connection, while it lives, and the writes waiting for the
        # next commit.
        self._sqlite: sqlite3.Connection | None = None
        self._pending: list[_Write] = []
        self._flusher: asyncio.Task[None] | None = None
        if dialect.name == "sqlite":
            event.listen(engine.sync_engine.pool, "connect", self._connected)
            for closing in ("close", "invalidate", "detach"):
                event.listen(engine.sync_engine.pool, closing, self._forget_connection)

    async def insert(self, rows: Sequence[NewInvocation]) -> None:
        """Insert a start's invocations in one transaction."""
        await self._write(self._insert, [{name: row.get(name) for name in _NEW_COLUMNS} for row in rows])

    async def claim(self, invocation_id: str, now: datetime) -> Invocation | None:
        """PENDING -> DISPATCHING, counting an attempt; the row, or None if it was not PENDING."""
        rows = await self._write(self._claim, [{"invocation_id": invocation_id, "now": now}])
        return self._claim.invocation(rows[0]) if rows else None

    async def record(
        self,
        inv: Invocation,
        status: Status,
        output: Any,
        error: str | None,
        now: datetime,
        attempt: AttemptLog,
        next_attempt: datetime | None = None,
        fallback: bool = False,
    ) -> bool:
        """DISPATCHING -> ``status``, if ``inv``'s attempt is still the one in flight; the
        attempt's log entry is written in the same transaction either way (it was made)."""
        completed = None if status in (Status.AWAITING_CALLBACK, Status.RETRYING) else now
        values = {
            "invocation_id": inv.id,
            "attempt": inv.attempts,
            "status": status.value,
            "output": output,
            "error": error,
            "completed": completed,
            "next_attempt": next_attempt,
            "fallback": fallback,
        }
        values.update({f"log_{name}": value for name, value in attempt.items()})
        first, *then = self._record_steps
        return bool(await self._write(first, [values], *((step, [values]) for step in then)))

    async def release(self, inv: Invocation, until: datetime | None = None) -> bool:
        """Undo ``inv``'s claim (the attempt not counted), if nothing was sent and it is still
        this attempt's: DISPATCHING -> PENDING, or with ``until`` RETRYING until then."""
        status = Status.PENDING if until is None else Status.RETRYING
        values = {
            "invocation_id": inv.id,
            "attempt": inv.attempts,
            "status": status.value,
            "next_attempt": until,
        }
        return bool(await self._write(self._release, [values]))

    async def read(self, invocation_id: str) -> Invocation | None:
        if "\x00" in invocation_id:  # PostgreSQL's text cannot hold it: no row has it
            return None
        rows = await self._read(self._read_one, {"invocation_id": invocation_id})
        return self._read_one.invocation(rows[0]) if rows else None

    async def run_members(self, run_id: str) -> list[Invocation]:
        """The invocations a run carries, oldest first."""
        rows = await self._read(self._run_members, {"run_id": run_id})
        return [self._run_members.invocation(row) for row in rows]

    async def last_run(self, inv: Invocation) -> dict[str, Any] | None:
        """The status, dispatched_at, completed and output of the last finished run of
        ``inv``'s lane (its subscription and tenant) before it, or None."""
        query = self._last_run[inv.tenant_id is not None]
        values = {"subscription_id": inv.subscription_id, "tenant_id": inv.tenant_id, "invocation_id": inv.id}
        rows = await self._read(query, values)
        return query.values(rows[0]) if rows else None

    async def _read(self, statement: _Prepared, values: Mapping[str, Any]) -> Rows:
        parameters = statement.parameters(values)
        idle = self._idle_sqlite()
        if idle is not None:  # a SELECT begins no transaction: nothing to commit
            return idle.execute(statement.sql, parameters).fetchall()
        async with self._engine.connect() as connection:
            raw = await self._driver_connection(connection)
            if isinstance(raw, sqlite3.Connection):
                return raw.execute(statement.sql, parameters).fetchall()
            async with _invalidated_if_broken(connection, raw):
                return list(await raw.fetch(statement.sql, *parameters))

    async def _write(
        self,
        statement: _Prepared,
        runs: Sequence[Mapping[str, Any]],
        *then: tuple[_Prepared, Sequence[Mapping[str, Any]]],
    ) -> Rows:
        """Run ``statement`` once per values in ``runs``, then each of ``then`` likewise, in one
        transaction; the rows ``statement`` returned. SQLite: with the other writes queued by
        the loop's next turn, committed together (group commit: no added wait under light
        load, one commit for many writes under heavy load)."""
        steps = [
            (prepared, [prepared.parameters(values) for values in step_runs])
            for prepared, step_runs in ((statement, runs), *then)
        ]
        if self._engine.dialect.name != "sqlite":
            async with self._engine.connect() as connection:
                raw = await self._driver_connection(connection)
                async with _invalidated_if_broken(connection, raw):
                    return await _run_on_asyncpg(raw, steps)
        write = _Write(steps, asyncio.get_running_loop().create_future())
        self._pending.append(write)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="invocation-store-commit")
        return await write.done

    async def _flush(self) -> None:
        """Commit what is queued, batch after batch, until nothing is. Every write taken
        into a batch is resolved, with its rows or an error."""
        try:
            while self._pending:
                batch: list[_Write] = []
                try:
                    idle = self._idle_sqlite()
                    if idle is not None:
                        batch, self._pending = self._pending, []
                        _run_batch(idle, batch)
                        continue
                    async with self._engine.connect() as connection:
                        raw = await self._driver_connection(connection)
                        batch, self._pending = self._pending, []
                        if _closed(raw):  # behind the pool's back: let it make another
                            self._sqlite = None
                            await connection.invalidate()
                            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
                        _run_batch(raw, batch)
                except BaseException as exc:  # no connection, or cancelled at shutdown
                    if not batch:  # it failed before taking a batch: fail what waits
                        batch, self._pending = self._pending, []
                    stopped = ConnectionError("the invocation store stopped before this write")
                    _fail(batch, exc if isinstance(exc, Exception) else stopped)
                    if not isinstance(exc, Exception):
                        raise
        finally:
            self._flusher = None

    def _idle_sqlite(self) -> sqlite3.Connection | None:
        """SQLite's one connection, if no session holds it (then nothing else can use it
        until this task yields)."""
        idle = self._sqlite
        pool: Any = self._engine.sync_engine.pool
        if idle is None or pool.checkedout() != 0 or _closed(idle) or idle.in_transaction:
            return None
        return idle

    async def _driver_connection(self, connection: AsyncConnection) -> Any:
        """The checked-out connection's driver: sqlite3's, or asyncpg's."""
        raw = (await connection.get_raw_connection()).driver_connection
        if isinstance(raw, InlineConnection):
            self._sqlite = raw.sqlite  # the pool's one connection, made before this store
            return raw.sqlite
        return raw

    def _connected(self, dbapi_connection: Any, _record: Any) -> None:
        self._sqlite = dbapi_connection.driver_connection.sqlite

    def _forget_connection(self, _dbapi_connection: Any, _record: Any, *_: Any) -> None:
        self._sqlite = None
