"""Every failure answers in the API's one error format, with a trackingId that is also logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api.app import create_app
from tests.conftest import make_settings, start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer, bound_socket, serve
from tests.services import Store

pytestmark = pytest.mark.asyncio(loop_scope="module")

LIMIT = 2048


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(module_store: Store) -> AsyncIterator[GatewayClient]:
    async with start_gateway(module_store) as client:
        await client.create_trigger("errors:approver")
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def small_gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GatewayClient]:
    """A gateway that accepts request bodies of at most LIMIT bytes."""
    async with start_gateway(tmp_path_factory.mktemp("small"), max_body_bytes=LIMIT) as client:
        yield client


def assert_error(response: httpx.Response, status: int) -> str:
    """Check the status and the error format; return the messages and causes as one string."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detailCode", "trackingId", "messages", "causes"}, body
    assert isinstance(body["detailCode"], str) and body["detailCode"].startswith(str(status))
    assert isinstance(body["trackingId"], str) and body["trackingId"]
    assert body["messages"], body
    for message in [*body["messages"], *body["causes"]]:
        assert set(message) == {"locale", "localeOrigin", "text"}, message
        assert message["locale"] and message["localeOrigin"] and message["text"]
    assert isinstance(body["causes"], list)
    assert response.headers["x-tracking-id"] == body["trackingId"]
    return " ".join(m["text"] for m in [*body["messages"], *body["causes"]])


async def test_malformed_json_is_400(gateway: GatewayClient) -> None:
    response = await gateway.http.post(
        "/beta/triggers", content=b'{"id": "x", "name":', headers={"content-type": "application/json"}
    )
    assert "not valid JSON" in assert_error(response, 400)


async def test_empty_body_is_400(gateway: GatewayClient) -> None:
    response = await gateway.http.post(
        "/beta/trigger-subscriptions", content=b"", headers={"content-type": "application/json"}
    )
    assert "empty" in assert_error(response, 400)


@pytest.mark.parametrize(
    "path", ["/beta/triggers", "/beta/trigger-subscriptions", "/beta/trigger-invocations/start"]
)
async def test_json_array_instead_of_object_is_400(gateway: GatewayClient, path: str) -> None:
    response = await gateway.http.post(path, json=[{"id": "x"}])
    assert "JSON object" in assert_error(response, 400)


async def test_non_json_content_type_is_415(gateway: GatewayClient) -> None:
    response = await gateway.http.post(
        "/beta/triggers", content=b"id=x", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert "application/json" in assert_error(response, 415)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/beta/trigger-subscriptions",
            {
                "triggerId": "errors:approver",
                "name": "s",
                "enabled": "yes please",
                "httpConfig": {"url": "http://127.0.0.1:9/hook"},
            },
            "enabled",
        ),
        (
            "/beta/trigger-subscriptions",
            {"triggerId": "errors:approver", "name": "s", "httpConfig": {"url": 7}},
            "httpConfig.url",
        ),
        (
            "/beta/trigger-subscriptions",
            {
                "triggerId": "errors:approver",
                "name": "s",
                "httpConfig": {"url": "http://127.0.0.1:9/hook", "httpDispatchMode": "SOMETIMES"},
            },
            "httpConfig.httpDispatchMode",
        ),
        ("/beta/trigger-invocations/start", {"triggerId": "errors:approver", "input": 5}, "input"),
        ("/beta/trigger-subscriptions/validate-filter", {"input": 5, "filter": "$.a"}, "input"),
        ("/beta/triggers", {"id": "errors:x", "name": "X", "type": "SOMETIMES"}, "type"),
        ("/beta/triggers", {"id": "errors:x", "name": ["X"], "type": "FIRE_AND_FORGET"}, "name"),
        ("/beta/trigger-subscriptions/any-id/run", {"payload": [1]}, "payload"),
    ],
    ids=[
        "enabled",
        "url",
        "dispatch-mode",
        "start-input",
        "filter-input",
        "trigger-type",
        "trigger-name",
        "run-payload",
    ],
)
async def test_field_of_the_wrong_type_is_400_naming_it(
    gateway: GatewayClient, path: str, body: dict[str, Any], field: str
) -> None:
    response = await gateway.http.post(path, json=body)
    assert f"{field}:" in assert_error(response, 400)


@pytest.mark.parametrize(
    ("path", "content"),
    [
        (
            "/beta/triggers",
            b'{"id": "e:n", "name": "N", "type": "FIRE_AND_FORGET", "exampleInput": {"x": NaN}}',
        ),
        (
            "/beta/triggers",
            b'{"id": "e:i", "name": "I", "type": "FIRE_AND_FORGET", "exampleInput": {"x": -Infinity}}',
        ),
        ("/beta/trigger-invocations/start", b'{"triggerId": "errors:approver", "input": {"amount": 1e400}}'),
        ("/trigger-invocations/x/complete", b'{"secret": "s", "output": {"approver": NaN}}'),
    ],
    ids=["nan", "infinity", "overflow", "complete-nan"],
)
async def test_nan_and_infinity_are_not_json(gateway: GatewayClient, path: str, content: bytes) -> None:
    # Python's json module accepts them; stored, they could never be answered as JSON again.
    response = await gateway.http.post(path, content=content, headers={"content-type": "application/json"})
    assert "not valid JSON" in assert_error(response, 400)
    listed = await gateway.http.get("/beta/triggers")
    assert listed.status_code == 200, listed.text


async def test_missing_required_field_is_400_naming_it(gateway: GatewayClient) -> None:
    response = await gateway.http.post(
        "/beta/trigger-invocations/start", json={"triggerId": "errors:approver"}
    )
    assert "input" in assert_error(response, 400)


# Where a body is read: an admin endpoint, and the two that need no access token.
BODY_PATHS = ["/beta/triggers", "/oauth/token", "/trigger-invocations/x/complete"]


def content_type(path: str) -> dict[str, str]:
    form = "application/x-www-form-urlencoded"
    return {"content-type": form if path == "/oauth/token" else "application/json"}


async def big_chunks() -> AsyncIterator[bytes]:
    yield b'{"id": "big", "name": "Big", "type": "FIRE_AND_FORGET", "description": "'
    for _ in range(8):
        yield b"x" * 512
    yield b'"}'


@pytest.mark.parametrize("path", BODY_PATHS)
async def test_body_over_the_limit_with_content_length_is_413(
    small_gateway: GatewayClient, path: str
) -> None:
    content = b"".join([chunk async for chunk in big_chunks()])
    assert len(content) > 2 * LIMIT - 100
    response = await small_gateway.http.post(path, content=content, headers=content_type(path))
    assert "transfer-encoding" not in response.request.headers
    assert str(LIMIT) in assert_error(response, 413)


@pytest.mark.parametrize("path", BODY_PATHS)
async def test_chunked_body_over_the_limit_is_413(small_gateway: GatewayClient, path: str) -> None:
    response = await small_gateway.http.post(path, content=big_chunks(), headers=content_type(path))
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.request.headers
    assert str(LIMIT) in assert_error(response, 413)
    # Nothing was created from the refused body.
    assert (await small_gateway.http.get("/beta/triggers/big")).status_code == 404


async def test_body_within_the_limit_is_accepted(small_gateway: GatewayClient) -> None:
    doc = {"id": "small", "name": "Small", "type": "FIRE_AND_FORGET", "description": "x" * 1500}
    response = await small_gateway.http.post("/beta/triggers", json=doc)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("path", ["/no-such-thing", "/beta/no-such-thing", "/beta/triggers/a/b/c"])
async def test_unknown_route_is_404(gateway: GatewayClient, path: str) -> None:
    response = await gateway.http.get(path)
    assert path in assert_error(response, 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [("PATCH", "/beta/triggers/x"), ("DELETE", "/triggers"), ("GET", "/oauth/token"), ("POST", "/health")],
)
async def test_wrong_method_is_405(gateway: GatewayClient, method: str, path: str) -> None:
    response = await gateway.http.request(method, path)
    assert method in assert_error(response, 405)
    assert response.headers["allow"]


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/triggers", "GET, POST"),
        ("/beta/triggers/x", "DELETE, GET, PUT"),
        ("/trigger-subscriptions/x", "DELETE, GET, PATCH, PUT"),
        ("/trigger-subscriptions/validate-filter", "POST"),
        ("/beta/trigger-invocations/x/complete", "POST"),
        ("/health", "GET"),
    ],
)
async def test_405_allows_every_method_of_the_path(gateway: GatewayClient, path: str, allowed: str) -> None:
    # Each method has its own route: Allow must not list only the first route's methods.
    response = await gateway.http.request("OPTIONS", path)
    assert_error(response, 405)
    assert set(response.headers["allow"].split(", ")) - {"HEAD"} == set(allowed.split(", "))


async def logged_line(caplog: pytest.LogCaptureFixture, tracking_id: str) -> str:
    """The access log line carrying ``tracking_id`` (logged as the response finishes)."""
    async with asyncio.timeout(2):
        while True:
            lines = [r.getMessage() for r in caplog.records if r.name == "gateway.access"]
            found = [line for line in lines if tracking_id in line]
            if found:
                assert len(found) == 1, found
                return found[0]
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/beta/no-such-thing", None, 404),
        ("POST", "/beta/triggers", [1], 400),
        ("GET", "/beta/triggers/errors:approver", None, 200),
    ],
    ids=["404", "400", "200"],
)
async def test_tracking_id_is_logged_and_returned(
    gateway: GatewayClient,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    body: Any,
    status: int,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.access")
    response = await gateway.http.request(method, path, json=body)
    assert response.status_code == status, response.text
    tracking_id = response.headers["x-tracking-id"]
    assert tracking_id
    if status >= 400:
        assert response.json()["trackingId"] == tracking_id
    line = await logged_line(caplog, tracking_id)
    assert f"{method} {path} {status}" in line


async def test_tracking_ids_differ_between_requests(gateway: GatewayClient) -> None:
    first = await gateway.http.get("/beta/no-such-thing")
    second = await gateway.http.get("/beta/no-such-thing")
    assert first.json()["trackingId"] != second.json()["trackingId"]


async def test_unexpected_error_is_500_in_the_error_format(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway")

    async def boom(request: Request) -> Response:
        raise RuntimeError("a secret detail of the failure")

    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(make_settings(tmp_path, url))
    app.router.routes.insert(0, Route("/boom", boom))  # stands in for any bug in an endpoint
    async with serve(app, sock), httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/boom")
    assert "trackingId" in assert_error(response, 500)
    assert "secret detail" not in response.text
    tracking_id = response.json()["trackingId"]
    assert "GET /boom 500" in await logged_line(caplog, tracking_id)
    [logged] = [r for r in caplog.records if r.name == "gateway.api" and tracking_id in r.getMessage()]
    assert logged.exc_info is not None  # the operators' log has the traceback


async def test_subscriber_answer_with_nan_does_not_poison_the_statuses(tmp_path: Path) -> None:
    subscriber = Subscriber()
    async with start_gateway(tmp_path) as gateway, serve(subscriber.app()) as subscriber_url:
        subscriber.url = subscriber_url
        await gateway.create_trigger("errors:nan")
        await gateway.subscribe(
            "errors:nan", subscriber.endpoint("nan", answer(200, raw=b'{"approver": NaN}'))
        )
        [invocation] = await gateway.start("errors:nan", {"amount": 1})
        status = await gateway.http.get(
            f"/beta/trigger-invocations/{invocation['id']}/status", params={"waitSeconds": 5}
        )
        listing = await gateway.http.get("/beta/trigger-invocations/status")
    assert status.status_code == 200, status.text
    assert status.json()["status"] == "FAILED"
    assert "JSON" in status.json()["completeInvocationInput"]["localizedError"]["message"]
    assert listing.status_code == 200, listing.text
