"""Engine, sessions and schema migrations. SQLite runs in WAL mode so readers never wait
for the writer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, inspect, make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool

from gateway.adapters.database import sqlite_inline
from gateway.domain import model  # noqa: F401  (registers the tables on SQLModel.metadata)

Sessions = async_sessionmaker[AsyncSession]


# How long a statement waits for another process's write lock on the SQLite file. It waits
# on the event loop (sqlite_inline.py), so it is short; only `gateway migrate` run beside a
# serving gateway, or a tool writing to the file, ever holds the lock.
SQLITE_BUSY_TIMEOUT = 5.0


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = make_url(url).database or ":memory:"
        # One connection, driven inline on the event loop: sessions queue for it
        # asynchronously, so two of this process's writers never wait on each other's lock.
        engine = create_async_engine(
            url,
            async_creator=sqlite_inline.connector(path, SQLITE_BUSY_TIMEOUT),
            poolclass=AsyncAdaptedQueuePool,
            pool_size=1,
            max_overflow=0,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it was a round trip on every checkout (SYNC round trip 18.1 -> 10.6 ms
    # without it). After a PostgreSQL restart the first statement to meet a dead connection
    # fails, and SQLAlchemy then replaces every pooled connection older than it; what that
    # statement was doing is retried by its caller or, for deliveries, by the sweep.
    return create_async_engine(url, pool_size=20, max_overflow=20)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable across application crashes in WAL mode; only an OS crash can lose
    # the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def sessionmaker(engine: AsyncEngine) -> Sessions:
    return async_sessionmaker(engine, expire_on_commit=False)


MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision (tests/unit/test_migrations.py checks that it is Alembic's
# head): a start checks the schema with one query, and imports Alembic only to migrate, which
# saves every process (serve, worker, worker --check) 0.3 s of CPU at start.
SCHEMA_HEAD = "0015"


class SchemaOutOfDate(RuntimeError):
    pass


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (Alembic), on SQLite and PostgreSQL alike."""
    from alembic import command
    from alembic.config import Config

    def upgrade(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as conn:
        await conn.run_sync(upgrade)


async def schema_revision(engine: AsyncEngine) -> str | None:
    """The revision the database's schema is at; None for a database never migrated."""
    async with engine.connect() as conn:
        if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
            return None
        revision: str | None = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        return revision


async def check_schema(engine: AsyncEngine) -> None:
    """Refuse to run on a schema older (or newer) than this code's."""
    current = await schema_revision(engine)
    if current != SCHEMA_HEAD:
        raise SchemaOutOfDate(
            f"the database schema is at revision {current or 'none'}, this gateway needs {SCHEMA_HEAD}: "
            "run `gateway migrate` first"
        )


async def prepare_schema(engine: AsyncEngine) -> None:
    """The embedded default creates and upgrades its schema itself; a shared server
    database is migrated on purpose, by `gateway migrate`, never by a racing start-up."""
    if not migrates_itself(engine):
        await check_schema(engine)
    elif await schema_revision(engine) != SCHEMA_HEAD:
        await migrate(engine)


def migrates_itself(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
