"""GATEWAY_LOG_FORMAT=json, in the processes that deliver: `gateway serve` embedded, `gateway
worker` distributed. Every log record is one JSON object per line, and the delivery of a start
sent with an X-Request-Id logs its outcome with that trackingId and what it is about."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from gateway.settings import Settings
from tests.conftest import CLIENT_ID, CLIENT_SECRET, make_settings, open_store, settings_env, start_gateway
from tests.gateway_client import GatewayClient
from tests.integration.test_metrics import free_port
from tests.processes import GatewayProcess
from tests.servers import Subscriber, answer


@asynccontextmanager
async def serve_process(
    settings: Settings, log: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[GatewayClient]:
    """The real `gateway serve` command, as its own process, with the settings' environment."""
    env = {**os.environ, **settings_env(settings), **(extra_env or {})}
    process = GatewayProcess(["serve"], env, log=log, cwd=log.parent)
    try:
        async with httpx.AsyncClient(base_url=settings.public_url, timeout=30) as http:
            async with asyncio.timeout(30):
                while True:
                    assert process.poll() is None, process.output()
                    try:
                        if (await http.get("/health/ready")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
            client = GatewayClient(http, settings)
            await client.login(CLIENT_ID, CLIENT_SECRET)
            yield client
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 15)


async def deliver_one(gateway: GatewayClient, subscriber: Subscriber, request_id: str) -> str:
    await gateway.create_trigger("t:logged")
    await gateway.subscribe("t:logged", subscriber.endpoint("logged", answer(200, {"ok": True})))
    response = await gateway.http.post(
        "/beta/trigger-invocations/start",
        json={"triggerId": "t:logged", "input": {}},
        headers={"x-request-id": request_id},
    )
    assert response.status_code == 200, response.text
    invocation_id: str = response.json()[0]["id"]
    await gateway.final_status(invocation_id)
    return invocation_id


def records(log: Path) -> list[dict[str, Any]]:
    """Every log record in the file; the command's own messages ("gateway: …") aside."""
    lines = [line for line in log.read_text().splitlines() if line and not line.startswith("gateway: ")]
    parsed = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    for record in parsed:
        assert {"time", "level", "logger", "message"} <= set(record), record
    return parsed


def outcome_line(found: list[dict[str, Any]], invocation_id: str) -> dict[str, Any]:
    [line] = [r for r in found if r.get("invocationId") == invocation_id and "outcome=" in r["message"]]
    return line


async def test_embedded_serve_logs_json_with_the_starts_tracking_id(
    tmp_path: Path, subscriber: Subscriber
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(
        tmp_path, url, log_format="json", log_level="INFO", port=int(url.rsplit(":", 1)[1])
    )
    log = tmp_path / "serve.log"
    async with serve_process(settings, log) as gateway:
        invocation_id = await deliver_one(gateway, subscriber, "req-embedded-1")
    found = records(log)
    line = outcome_line(found, invocation_id)
    assert line["trackingId"] == "req-embedded-1"
    assert line["triggerId"] == "t:logged" and line["subscriptionId"] and line["level"] == "INFO"
    access = [r for r in found if r["logger"] == "gateway.access" and r.get("trackingId") == "req-embedded-1"]
    assert len(access) == 1 and "POST /beta/trigger-invocations/start 200" in access[0]["message"]


async def test_the_worker_logs_json_with_the_starts_tracking_id(
    tmp_path: Path, subscriber: Subscriber
) -> None:
    async with (
        open_store("distributed", tmp_path) as store,
        start_gateway(store, log_format="json", worker_log_level="INFO") as gateway,
    ):
        invocation_id = await deliver_one(gateway, subscriber, "req-worker-1")
        assert gateway.worker_log is not None
        log = gateway.worker_log
    line = outcome_line(records(log), invocation_id)
    assert (line["trackingId"], line["triggerId"], line["logger"]) == (
        "req-worker-1",
        "t:logged",
        "gateway.invocations",
    )
