"""GET /health answers 503, naming the database's error, while the database does not answer,
and 200 again once it does. On PostgreSQL, whose server can refuse a running gateway's
connections; an embedded SQLite file is opened in the process and cannot go away like that."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from tests.conftest import open_store, start_gateway
from tests.services import POSTGRES


async def allow_connections(database: str, allowed: bool) -> None:
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:  # and end the gateway's open ones
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database
            )
    finally:
        await admin.close()


async def test_health_is_503_while_the_database_refuses_and_200_once_it_answers_again(tmp_path: Path) -> None:
    async with open_store("distributed", tmp_path) as store, start_gateway(store, worker=False) as gateway:
        database = store.database_url.rsplit("/", 1)[1]
        assert (await gateway.http.get("/health")).json() == {"status": "ok"}
        await allow_connections(database, False)
        try:
            # The first finds its pooled connection cut, the second cannot open a new one.
            for _ in range(2):
                response = await gateway.http.get("/health")
                assert response.status_code == 503, response.text
                body = response.json()
                assert body["status"] == "unavailable"
                assert isinstance(body["database"], str) and body["database"]
        finally:
            await allow_connections(database, True)
        response = await gateway.http.get("/health")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
