"""GET /health/ready (and its alias /health) answers 503, naming the dependency that is down,
while the database does not answer or no worker runs, and 200 again once they do; GET
/health/live answers whatever they do. On PostgreSQL, whose server can refuse a running
gateway's connections; an embedded SQLite file is opened in the process and cannot go away
like that."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import open_store, start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer
from tests.services import POSTGRES, REDIS, RedisProxy

# Starts, and readiness probes, while Redis is away.
STARTS = 10
OUTAGE = 3.0  # seconds


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


async def ready_status(gateway: GatewayClient, expected: int, within: float = 20) -> dict[str, Any]:
    """Poll /health/ready until it answers ``expected``; its body."""
    async with asyncio.timeout(within):
        while (response := await gateway.http.get("/health/ready")).status_code != expected:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    body: dict[str, Any] = response.json()
    return body


async def test_redis_lost_under_a_running_gateway_is_reported_logged_once_and_recovered_from(
    tmp_path: Path, subscriber: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis taken away (through a proxy: the shared server is left alone) under an API
    process and its worker: not ready, with Redis's state; starts still accepted, with a
    bounded number of log lines however many there are; all delivered once Redis is back."""
    proxy = RedisProxy(REDIS)
    await proxy.up()
    try:
        async with (
            open_store("distributed", tmp_path) as store,
            start_gateway(replace(store, redis_url=proxy.url)) as gateway,
        ):
            await gateway.create_trigger()
            await gateway.subscribe(
                "test:approver", subscriber.endpoint("ok", answer(200, {"ok": 1})), "SYNC"
            )
            await ready_status(gateway, 200)
            caplog.set_level(logging.INFO, logger="gateway")
            caplog.clear()

            proxy.down()
            body = await ready_status(gateway, 503)
            assert body["status"] == "unavailable"
            assert body["checks"]["redis"]["ok"] is False and body["checks"]["redis"]["error"]
            assert body["checks"]["database"]["ok"] is True
            during = [(await gateway.start("test:approver", {"n": n}))[0]["id"] for n in range(STARTS)]
            for _ in range(STARTS):
                assert (await gateway.http.get("/health/ready")).status_code == 503
                await asyncio.sleep(OUTAGE / STARTS)  # long enough for every retry loop to go round
            outage = warnings(caplog)

            await proxy.up()
            body = await ready_status(gateway, 200)
            assert body["checks"]["redis"]["ok"] is True
            [after] = await gateway.start("test:approver", {"n": "after"})
            # All delivered: the one started now at once, those started while Redis was away
            # once the sweep queues them again (GATEWAY_REQUEUE_AFTER).
            await subscriber.wait_for(STARTS + 1, within=20)
            for invocation_id in [*during, after["id"]]:
                await gateway.reach(invocation_id, "COMPLETED")
            assert gateway.worker_log is not None
            worker_log = gateway.worker_log
    finally:
        proxy.down()
    lines = warnings(caplog)
    shown = "\n".join(lines)
    assert all(r.exc_info is None for r in caplog.records), "a traceback was logged"
    # One line when each thing that uses Redis starts failing, whatever the number of starts
    # and probes: readiness (Redis, and the workers it cannot see), queueing, the rate limits
    # and the notification channel; and one when each works again.
    assert len(outage) <= 6, shown
    assert len(lines) <= 2 * len(outage), shown
    for line in (
        "not ready: redis is down",
        "queueing deliveries failed",
        "redis is back",
        "queueing deliveries works",
    ):
        assert sum(line in logged for logged in lines) == 1, shown
    # The worker's too (it logs at WARNING): Redis lost and back, for its queue and its channel.
    worker_lines = worker_log.read_text().splitlines()
    assert "Traceback" not in "\n".join(worker_lines)
    assert len(worker_lines) <= 4, "\n".join(worker_lines)
    assert sum("lost Redis" in line for line in worker_lines) == 1, "\n".join(worker_lines)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The gateway's warnings and errors so far (not the access log's line per request)."""
    return [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.name.startswith("gateway") and r.levelno >= logging.WARNING
    ]
