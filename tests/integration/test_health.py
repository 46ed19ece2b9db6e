"""GET /health/ready (and its alias /health) answers 503, naming the dependency that is down,
while the database does not answer or no worker runs, and 200 again once they do; GET
/health/live answers whatever they do. On PostgreSQL, whose server can refuse a running
gateway's connections; an embedded SQLite file is opened in the process and cannot go away
like that."""

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
    async with open_store("distributed", tmp_path) as store, start_gateway(store) as gateway:
        database = store.database_url.rsplit("/", 1)[1]
        ready = (await gateway.http.get("/health")).json()
        assert ready["status"] == "ok"
        assert set(ready["checks"]) == {"database", "redis", "workers"}
        assert all(check["ok"] and check["latencyMs"] >= 0 for check in ready["checks"].values())
        await allow_connections(database, False)
        try:
            # The first finds its pooled connection cut, the second cannot open a new one.
            for path in ("/health", "/health/ready"):
                response = await gateway.http.get(path)
                assert response.status_code == 503, response.text
                body = response.json()
                assert body["status"] == "unavailable"
                assert body["checks"]["database"]["ok"] is False and body["checks"]["database"]["error"]
                assert body["checks"]["redis"]["ok"] is True
            live = await gateway.http.get("/health/live")
            assert (live.status_code, live.json()) == (200, {"status": "ok"})
        finally:
            await allow_connections(database, True)
        response = await gateway.http.get("/health/ready")
        assert (response.status_code, response.json()["status"]) == (200, "ok")


async def test_a_distributed_gateway_without_a_worker_is_not_ready(tmp_path: Path) -> None:
    async with open_store("distributed", tmp_path) as store, start_gateway(store, worker=False) as gateway:
        response = await gateway.http.get("/health/ready")
        assert response.status_code == 503
        workers = response.json()["checks"]["workers"]
        assert workers["ok"] is False and "no worker seen" in workers["error"]
        assert (await gateway.http.get("/health/live")).status_code == 200


async def test_an_embedded_gateway_checks_only_its_database(tmp_path: Path) -> None:
    async with start_gateway(tmp_path) as gateway:
        response = await gateway.http.get("/health/ready")
        assert response.status_code == 200
        assert set(response.json()["checks"]) == {"database"}
