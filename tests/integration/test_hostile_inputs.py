"""Hostile bodies from API clients and subscribers: each is refused cleanly, nothing is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.domain.strict_json import MAX_DEPTH
from tests.conftest import start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import serve
from tests.services import Store

pytestmark = pytest.mark.asyncio(loop_scope="module")
MIB = 1024 * 1024


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def nested_text(depth: int) -> str:
    """The JSON text of nested(depth), for depths json.dumps cannot write."""
    return '{"a":' * depth + "1" + "}" * depth


async def endless(_: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"approver": "'
        while True:
            yield b"x" * 65536
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="application/json")


async def too_deep(_: Request) -> Response:
    return Response(("[" * 200 + "]" * 200).encode(), media_type="application/json")


async def acknowledge(_: Request) -> Response:
    return Response(b"{}", media_type="application/json")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def subscriber_url() -> AsyncIterator[str]:
    app = Starlette(
        routes=[
            Route("/endless", endless, methods=["POST"]),
            Route("/deep", too_deep, methods=["POST"]),
            Route("/ack", acknowledge, methods=["POST"]),
        ]
    )
    async with serve(app) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(module_store: Store, subscriber_url: str) -> AsyncIterator[GatewayClient]:
    async with start_gateway(module_store) as client:
        for name in ("endless", "deep", "ack"):
            await client.create_trigger(f"hostile:{name}")
            mode = "ASYNC" if name == "ack" else "SYNC"
            await client.subscribe(f"hostile:{name}", f"{subscriber_url}/{name}", mode)
        yield client


def error_text(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["messages"][0]["text"])


async def test_a_million_element_array_is_413(gateway: GatewayClient) -> None:
    before = await count_invocations(gateway)
    body = b'{"triggerId": "hostile:ack", "input": {"ids": [' + b",".join([b"1"] * 1_000_000) + b"]}}"
    response = await gateway.http.post(
        "/beta/trigger-invocations/start", content=body, headers={"content-type": "application/json"}
    )
    assert str(MIB) in error_text(response, 413)
    assert await count_invocations(gateway) == before


async def count_invocations(gateway: GatewayClient) -> int:
    response = await gateway.http.get(
        "/beta/trigger-invocations/status", params={"count": "true", "limit": 1}
    )
    return int(response.headers["x-total-count"])


@pytest.mark.parametrize(
    ("path", "document", "depth"),
    [
        ("/beta/trigger-invocations/start", '{"triggerId": "hostile:ack", "input": ?}', MAX_DEPTH),
        (
            "/beta/triggers",
            '{"id": "deep", "name": "Deep", "type": "FIRE_AND_FORGET", "exampleInput": ?}',
            500,
        ),
        ("/beta/trigger-subscriptions/validate-filter", '{"filter": "$.a", "input": ?}', 5000),
    ],
)
async def test_deeply_nested_json_is_400(
    gateway: GatewayClient, path: str, document: str, depth: int
) -> None:
    body = document.replace("?", nested_text(depth))
    response = await gateway.http.post(path, content=body, headers={"content-type": "application/json"})
    assert f"nested deeper than {MAX_DEPTH} levels" in error_text(response, 400)


async def test_json_at_the_depth_limit_is_accepted(gateway: GatewayClient) -> None:
    # The body is an object whose input sits two levels down: input holds MAX_DEPTH - 2 levels.
    response = await gateway.http.post(
        "/beta/trigger-invocations/start", json={"triggerId": "hostile:ack", "input": nested(MAX_DEPTH - 2)}
    )
    assert response.status_code == 200, response.text


async def test_a_10_mb_callback_is_413_and_the_invocation_still_completes(gateway: GatewayClient) -> None:
    [invocation] = await gateway.start("hostile:ack", {})
    await gateway.reach(invocation["id"], "AWAITING_CALLBACK")
    url = f"/beta/trigger-invocations/{invocation['id']}/complete"
    huge = b'{"secret": "' + invocation["secret"].encode() + b'", "output": "' + b"x" * (10 * MIB) + b'"}'
    async with httpx.AsyncClient(base_url=str(gateway.http.base_url), timeout=30) as anonymous:
        refused = await anonymous.post(url, content=huge, headers={"content-type": "application/json"})
        assert str(MIB) in error_text(refused, 413)
        deep = await anonymous.post(url, json={"secret": invocation["secret"], "output": nested(MAX_DEPTH)})
        assert "nested deeper" in error_text(deep, 400)
        accepted = await anonymous.post(url, json={"secret": invocation["secret"], "output": {"ok": True}})
        assert accepted.status_code == 204, accepted.text
    status = await gateway.final_status(invocation["id"])
    assert status["completeInvocationInput"]["output"] == {"ok": True}


async def test_an_endless_answer_is_cut_at_the_size_limit(gateway: GatewayClient) -> None:
    [invocation] = await gateway.start("hostile:endless", {})
    status = await gateway.final_status(invocation["id"])
    assert status["status"] == "FAILED"
    message = status["completeInvocationInput"]["localizedError"]["message"]
    assert f"larger than {gateway.settings.max_response_bytes} bytes" in message


async def test_a_deeply_nested_answer_fails_the_invocation(gateway: GatewayClient) -> None:
    [invocation] = await gateway.start("hostile:deep", {})
    status = await gateway.final_status(invocation["id"])
    assert status["status"] == "FAILED"
    assert "nested deeper" in status["completeInvocationInput"]["localizedError"]["message"]


async def test_ids_with_a_nul_are_refused_on_either_database(gateway: GatewayClient) -> None:
    """PostgreSQL's text cannot hold U+0000: such an id is a 400 that says so (it was a 404
    before NUL was refused wherever it comes in), never a driver error."""
    for path in ("/beta/trigger-invocations/start", "/beta/trigger-invocations/test"):
        response = await gateway.http.post(path, json={"triggerId": "t:\x00", "input": {}})
        assert response.status_code == 400, response.text
        assert "NUL character" in response.json()["messages"][0]["text"]
    status = await gateway.http.get("/beta/trigger-invocations/a%00b/status")
    assert status.status_code == 400, status.text
