"""aiosqlite's connection API, run inline on the event loop instead of in a thread.

aiosqlite hands every call (cursor, execute, fetch, close, commit) to a thread of its own
and waits for the answer: measured here, about 400 µs per statement, where SQLite itself
takes 5 µs for a lookup by primary key. SQLAlchemy's aiosqlite dialect only needs the
calls to be awaitable, so these coroutines simply make the call and return.

That blocks the loop for as long as SQLite works, which is microseconds for the gateway's
statements, but it must never block on SQLite's busy handler: another connection holding
the write lock could then never finish. So the engine keeps one connection (see
engine.create_engine) and sessions queue for it asynchronously.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Params = Sequence[Any] | dict[str, Any]


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Params = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Params]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The connection itself, for adapters/database/invocation_store.py."""
        return self._conn

    @property
    def _connection(self) -> sqlite3.Connection:
        # SQLAlchemy's dialect checks this before committing or rolling back.
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Params = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        self._conn.close()


def connector(path: str, busy_timeout: float) -> Callable[[], Any]:
    """The ``async_creator`` for SQLAlchemy's aiosqlite dialect."""

    async def connect() -> InlineConnection:
        # The loop's thread is the only one that uses it, but SQLAlchemy may close a pooled
        # connection from its garbage collector elsewhere.
        return InlineConnection(sqlite3.connect(path, timeout=busy_timeout, check_same_thread=False))

    return connect
