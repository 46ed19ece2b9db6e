"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlmodel import SQLModel

from gateway.adapters.database import engine as db


async def test_migrations_match_the_models(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        await db.migrate(engine)
        await db.check_schema(engine)  # at head: does not raise

        def differences(conn: Connection) -> list[object]:
            return list(compare_metadata(MigrationContext.configure(conn), SQLModel.metadata))

        async with engine.connect() as conn:
            assert await conn.run_sync(differences) == []
    finally:
        await engine.dispose()


async def test_an_unmigrated_server_database_is_refused(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        try:
            await db.check_schema(engine)
        except db.SchemaOutOfDate as exc:
            assert "gateway migrate" in str(exc)
        else:
            raise AssertionError("an empty database passed the schema check")
    finally:
        await engine.dispose()


def test_the_head_a_start_checks_for_is_the_newest_migration() -> None:
    assert ScriptDirectory(str(db.MIGRATIONS)).get_current_head() == db.SCHEMA_HEAD
