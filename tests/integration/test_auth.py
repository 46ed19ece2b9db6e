"""POST /oauth/token and access tokens on the API, driven over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import CLIENT_ID, CLIENT_SECRET, start_gateway
from tests.gateway_client import GatewayClient
from tests.services import Store, stored_bytes

# One gateway serves the whole module (tests that need other settings start their own).
pytestmark = pytest.mark.asyncio(loop_scope="module")

FORM = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


def anonymous(gateway: GatewayClient) -> httpx.AsyncClient:
    """A client for the same gateway without the admin's token."""
    return httpx.AsyncClient(base_url=str(gateway.http.base_url), timeout=10)


def assert_error_format(body: dict[str, Any]) -> str:
    assert isinstance(body["detailCode"], str) and body["detailCode"]
    assert isinstance(body["trackingId"], str) and body["trackingId"]
    assert body["messages"][0]["locale"] == "en-US"
    assert body["messages"][0]["text"]
    assert isinstance(body["causes"], list)
    return str(body["messages"][0]["text"])


async def db_bytes(gateway: GatewayClient) -> bytes:
    return await stored_bytes(gateway.settings.database_url)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(module_store: Store) -> AsyncIterator[GatewayClient]:
    async with start_gateway(module_store) as client:
        yield client


async def test_token_with_form_credentials(gateway: GatewayClient) -> None:
    async with anonymous(gateway) as http:
        response = await http.post("/oauth/token", data=FORM)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"].lower() == "bearer"
    assert body["expires_in"] == gateway.settings.token_ttl
    assert set(body["scope"].split()) == {
        "triggers:manage",
        "invocations:start",
        "invocations:read",
        "clients:manage",
        "metrics:read",
    }
    assert response.headers["cache-control"] == "no-store"


def unique_id(prefix: str) -> str:
    """An id no other test of this module's shared gateway uses."""
    return f"{prefix}:{uuid.uuid4().hex[:12]}"


async def test_token_with_basic_client_authentication(gateway: GatewayClient) -> None:
    trigger_id = unique_id("t:basic")
    await gateway.create_trigger(trigger_id)
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    async with anonymous(gateway) as http:
        response = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        listed = await http.get(
            "/beta/triggers",
            params={"filters": f'id eq "{trigger_id}"'},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert listed.status_code == 200, listed.text
    assert [t["id"] for t in listed.json()] == [trigger_id]  # the token reads what the admin made


@pytest.mark.parametrize(
    ("client_id", "client_secret"),
    [(CLIENT_ID, "not-the-secret"), ("nobody", CLIENT_SECRET)],
    ids=["wrong-secret", "unknown-client"],
)
async def test_bad_client_credentials_are_401(
    gateway: GatewayClient, client_id: str, client_secret: str
) -> None:
    form = {**FORM, "client_id": client_id, "client_secret": client_secret}
    async with anonymous(gateway) as http:
        response = await http.post("/oauth/token", data=form)
    assert response.status_code == 401, response.text
    body = response.json()
    assert_error_format(body)
    assert body["error"] == "invalid_client"
    assert "access_token" not in body


async def test_wrong_grant_type_is_400(gateway: GatewayClient) -> None:
    async with anonymous(gateway) as http:
        response = await http.post("/oauth/token", data={**FORM, "grant_type": "password"})
    assert response.status_code == 400, response.text
    body = response.json()
    assert_error_format(body)
    assert body["error"] == "unsupported_grant_type"


async def test_json_token_request_is_400(gateway: GatewayClient) -> None:
    async with anonymous(gateway) as http:
        response = await http.post("/oauth/token", json=FORM)
    assert response.status_code == 400, response.text
    body = response.json()
    assert "form" in assert_error_format(body)
    assert body["error"] == "invalid_request"


async def test_token_limited_to_a_requested_scope(gateway: GatewayClient) -> None:
    # An invocation to read (its subscriber is unreachable: it fails at once, unseen).
    trigger_id = unique_id("t:scoped")
    await gateway.create_trigger(trigger_id, type="FIRE_AND_FORGET")
    await gateway.subscribe(trigger_id, "http://127.0.0.1:9/nobody-listens")
    [invocation] = await gateway.start(trigger_id, {})
    refused_id = unique_id("t:refused")
    async with anonymous(gateway) as http:
        response = await http.post("/oauth/token", data={**FORM, "scope": "invocations:read"})
        assert response.status_code == 200, response.text
        assert response.json()["scope"] == "invocations:read"
        http.headers["authorization"] = f"Bearer {response.json()['access_token']}"
        create = await http.post(
            "/beta/triggers", json={"id": refused_id, "name": "T", "type": "FIRE_AND_FORGET"}
        )
        statuses = await http.get(
            "/beta/trigger-invocations/status", params={"filters": f'triggerId eq "{trigger_id}"'}
        )
    assert create.status_code == 403, create.text
    assert "triggers:manage" in assert_error_format(create.json())
    assert (await gateway.http.get(f"/beta/triggers/{refused_id}")).status_code == 404  # not made
    assert statuses.status_code == 200, statuses.text
    assert [s["id"] for s in statuses.json()] == [invocation["id"]]


async def test_scope_beyond_the_clients_is_400(gateway: GatewayClient) -> None:
    async with anonymous(gateway) as http:
        response = await http.post("/oauth/token", data={**FORM, "scope": "invocations:read root"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_scope"


async def test_missing_token_is_401_with_challenge(gateway: GatewayClient) -> None:
    async with anonymous(gateway) as http:
        response = await http.get("/beta/triggers")
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert "/oauth/token" in assert_error_format(response.json())


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Bearer", "Basic dGVzdDp0ZXN0"])
async def test_garbage_token_is_401(gateway: GatewayClient, header: str) -> None:
    async with anonymous(gateway) as http:
        response = await http.get("/beta/triggers", headers={"Authorization": header})
    assert response.status_code == 401, response.text
    assert "www-authenticate" in response.headers
    assert_error_format(response.json())


async def test_token_signed_by_another_key_is_401(gateway: GatewayClient, tmp_path: Path) -> None:
    async with start_gateway(tmp_path, secret_key="a-different-secret-key-of-enough-length") as foreign:
        foreign_token = foreign.http.headers["authorization"]
    async with anonymous(gateway) as http:
        response = await http.get("/beta/triggers", headers={"Authorization": foreign_token})
    assert response.status_code == 401, response.text


async def test_expired_token_is_401(tmp_path: Path) -> None:
    async with start_gateway(tmp_path, token_ttl=1) as gateway:
        fresh = await gateway.http.get("/beta/triggers")
        assert fresh.status_code == 200, fresh.text
        # Token timestamps have one-second resolution: two seconds on, the token is past its TTL.
        await asyncio.sleep(2.0)
        expired = await gateway.http.get("/beta/triggers")
    assert expired.status_code == 401, expired.text
    assert "expired" in assert_error_format(expired.json())


async def test_health_and_complete_need_no_token(gateway: GatewayClient) -> None:
    async with anonymous(gateway) as http:
        health = await http.get("/health")
        complete = await http.post(
            "/beta/trigger-invocations/no-such-invocation/complete", json={"secret": "s", "output": {}}
        )
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"
    assert complete.status_code == 404, complete.text
    assert_error_format(complete.json())


async def test_configured_client_secret_is_not_stored(gateway: GatewayClient) -> None:
    stored = await db_bytes(gateway)
    assert CLIENT_ID.encode() in stored
    assert CLIENT_SECRET.encode() not in stored
