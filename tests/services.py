"""PostgreSQL and Redis for the distributed-mode tests: real servers, never mocks.

Without them the tests skip, saying how to start them; with GATEWAY_REQUIRE_SERVICES=1
(as CI sets) a missing service fails the run instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from redis.asyncio import Redis

from gateway.adapters.database import engine as db
from tests.servers import bound_socket

POSTGRES = os.environ.get("GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("GATEWAY_TEST_REDIS", "redis://127.0.0.1:6379/0")
HOW_TO_START = (
    "start them with `docker compose -f docker-compose.yml -f docker-compose.tests.yml up -d "
    "postgres redis` and set "
    "GATEWAY_TEST_POSTGRES=postgresql://gateway:gateway@127.0.0.1:5432/gateway "
    "(or point GATEWAY_TEST_POSTGRES / GATEWAY_TEST_REDIS at yours)"
)


async def services_missing() -> str | None:
    """Why the distributed tests cannot run here, or None when they can."""
    try:
        conn = await asyncio.wait_for(asyncpg.connect(POSTGRES), 5)
        await conn.close()
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL is not reachable at {POSTGRES} ({exc}); {HOW_TO_START}"
    redis = Redis.from_url(REDIS)
    try:
        await asyncio.wait_for(redis.ping(), 5)
    except (OSError, TimeoutError, Exception) as exc:
        return f"Redis is not reachable at {REDIS} ({exc}); {HOW_TO_START}"
    finally:
        await redis.aclose()
    return None


async def require_services() -> None:
    reason = await services_missing()
    if reason is None:
        return
    if os.environ.get("GATEWAY_REQUIRE_SERVICES") == "1":
        pytest.fail(f"GATEWAY_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@dataclass
class Store:
    """Where one test's gateways keep their state; restarts reuse it."""

    mode: str  # "embedded" or "distributed"
    path: Path
    database_url: str = ""
    redis_url: str = ""
    queue_name: str = field(default_factory=lambda: f"gw-test-{uuid.uuid4().hex[:12]}")

    def __post_init__(self) -> None:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.path / 'gateway.db'}"


async def distributed_store(path: Path) -> Store:
    """A fresh, migrated PostgreSQL database and a private arq queue name."""
    await require_services()
    name = f"gw_test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    store = Store("distributed", path, database_url=f"{base}/{name}", redis_url=REDIS)
    engine = db.create_engine(store.database_url)
    try:
        await db.migrate(engine)
    finally:
        await engine.dispose()
    return store


async def drop_store(store: Store) -> None:
    if store.mode != "distributed":
        return
    name = store.database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    redis = Redis.from_url(store.redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{store.queue_name}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


async def stored_bytes(database_url: str) -> bytes:
    """Everything the database keeps for a gateway, to search for secrets in plain text:
    SQLite's files (main, WAL, shared memory), or every row of every PostgreSQL table."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.split(":///", 1)[1])
        return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        rows = []
        for table in tables:
            name = table["tablename"]
            query = f'SELECT row_to_json(t)::text AS row FROM "{name}" t'  # noqa: S608 (names from pg_tables)
            rows += await conn.fetch(query)
        return "\n".join(r["row"] for r in rows).encode()
    finally:
        await conn.close()


class RedisProxy:
    """A TCP proxy in front of the Redis server, so a test can take Redis away from one
    gateway's processes (every connection dropped, new ones refused) and bring it back, as a
    Redis restart does, without touching the server that other tests share. Its URL is known
    before it is first up: a gateway started first finds Redis unreachable."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        with bound_socket() as sock:
            self._port = int(sock.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self._port}{parts.path}"
        self._server: asyncio.Server | None = None
        self._streams: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self._port)

    def down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for stream in list(self._streams):
            stream.transport.abort()
        self._streams.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        streams = {writer, upstream_writer}
        self._streams |= streams
        try:
            await asyncio.gather(_pump(reader, upstream_writer), _pump(upstream_reader, writer))
        finally:
            self._streams -= streams


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
