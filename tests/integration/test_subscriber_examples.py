"""The subscriber kit's examples and `gateway example-subscriber --mode`, each run as its own
process the way a user runs it, against a real (embedded) gateway: the invocation completes
with the subscriber's output, at once or by its callback, and an unsigned request is refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples import async_human_approval
from tests.conftest import start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import bound_socket

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GATEWAY = Path(sys.executable).parent / "gateway"


def free_port() -> int:
    with bound_socket() as sock:
        return int(sock.getsockname()[1])


@asynccontextmanager
async def subscribed(tmp_path: Path, mode: str) -> AsyncIterator[tuple[GatewayClient, int, str]]:
    """A gateway with a trigger and a subscription in ``mode`` to a port nothing listens on
    yet; the gateway, that port and the subscription's signing secret."""
    async with start_gateway(tmp_path) as gateway:
        await gateway.create_trigger("test:approver", outputSchema={"type": "object"})
        port = free_port()
        subscription = await gateway.subscribe("test:approver", f"http://127.0.0.1:{port}/approve", mode)
        yield gateway, port, gateway.signing_secrets[subscription["id"]]


@asynccontextmanager
async def running(argv: list[str], env: dict[str, str], port: int) -> AsyncIterator[None]:
    """``argv`` listening on ``port``: ready once it refuses an unsigned delivery (401)."""
    process = await asyncio.create_subprocess_exec(
        *argv, "--port", str(port), env={**os.environ, **env}, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                if process.returncode is not None:
                    assert process.stderr is not None
                    pytest.fail(
                        f"{argv} exited {process.returncode}: {(await process.stderr.read()).decode()}"
                    )
                try:
                    unsigned = await http.post(f"http://127.0.0.1:{port}/approve", json={"_metadata": {}})
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail(f"{argv} did not listen on {port} within 20 s")
        assert unsigned.status_code == 401, unsigned.text
        yield
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 10)


async def completed(gateway: GatewayClient, input: dict[str, Any]) -> dict[str, Any]:
    [invocation] = await gateway.start("test:approver", input)
    status = await gateway.final_status(invocation["id"])
    assert status["status"] == "COMPLETED", status
    return status


def output(status: dict[str, Any]) -> Any:
    return status["completeInvocationInput"]["output"]


async def test_the_sync_approver_answers_at_once(tmp_path: Path) -> None:
    async with subscribed(tmp_path, "SYNC") as (gateway, port, secret):
        argv = [sys.executable, str(EXAMPLES / "sync_approver.py"), "--secret", secret]
        async with running(argv, {}, port):
            viewer = await completed(gateway, {"requestedFor": "ed", "role": "viewer"})
            admin = await completed(gateway, {"requestedFor": "ed", "role": "admin"})
    assert output(viewer)["approved"] is True
    assert output(admin) == {
        "approved": False,
        "approver": "sync-approver",
        "reason": "admin is a privileged role",
    }


async def test_the_human_approval_calls_back_after_its_heartbeat(tmp_path: Path) -> None:
    async with subscribed(tmp_path, "ASYNC") as (gateway, port, secret):
        argv = [sys.executable, str(EXAMPLES / "async_human_approval.py")]
        async with running(argv, {"WEBHOOK_SECRET": secret}, port):  # the secret from the environment
            [invocation] = await gateway.start("test:approver", {"requestedFor": "ann"})
            await gateway.reach(invocation["id"], "AWAITING_CALLBACK")
            status = await gateway.final_status(invocation["id"])
    assert status["status"] == "COMPLETED", status
    assert output(status) == {"approved": True, "approver": "a human", "for": "ann"}
    assert status["progress"] == async_human_approval.PROGRESS  # its heartbeat arrived


async def test_the_dynamic_subscriber_answers_now_or_later(tmp_path: Path) -> None:
    async with subscribed(tmp_path, "DYNAMIC") as (gateway, port, secret):
        argv = [sys.executable, str(EXAMPLES / "dynamic.py"), "--secret", secret]
        async with running(argv, {}, port):
            small = await completed(gateway, {"amount": 40})
            large = await completed(gateway, {"amount": 4000})
    assert output(small) == {"approved": True, "by": "rule", "amount": 40}
    assert output(large) == {"approved": True, "by": "review", "amount": 4000}


@pytest.mark.parametrize(("mode", "input"), [("sync", {}), ("async", {}), ("dynamic", {"later": True})])
async def test_the_example_subscriber_answers_in_each_mode(
    tmp_path: Path, mode: str, input: dict[str, Any]
) -> None:
    async with subscribed(tmp_path, mode.upper()) as (gateway, port, secret):
        argv = [str(GATEWAY), "example-subscriber", "--mode", mode, "--secret", secret]
        async with running(argv, {}, port):
            status = await completed(gateway, {"requestedFor": "ed", **input})
    assert output(status)["approver"] == "ada"


def test_the_example_subscriber_wants_a_secret_or_no_verify() -> None:
    env = {key: value for key, value in os.environ.items() if key != "WEBHOOK_SECRET"}
    done = subprocess.run(
        [str(GATEWAY), "example-subscriber", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "no signing secret: pass --secret whsec_" in done.stderr
    assert done.stderr.count("\n") == 1
