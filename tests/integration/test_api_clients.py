"""/api-clients: clients with their own scopes, secret rotation with a grace period, deletion."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import CLIENT_ID, start_gateway
from tests.gateway_client import GatewayClient
from tests.services import Store, stored_bytes

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(module_store: Store) -> AsyncIterator[GatewayClient]:
    async with start_gateway(module_store) as client:
        yield client


async def token(gateway: GatewayClient, client_id: str, secret: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=str(gateway.http.base_url)) as http:
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        return await http.post("/oauth/token", data=form)


async def create(gateway: GatewayClient, **body: Any) -> dict[str, Any]:
    response = await gateway.http.post("/beta/api-clients", json=body)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()  # type: ignore[no-any-return]


async def test_a_client_gets_only_its_scopes(gateway: GatewayClient) -> None:
    client = await create(gateway, clientId="reader", scopes=["invocations:read"])
    assert client["scopes"] == ["invocations:read"]
    granted = await token(gateway, "reader", client["clientSecret"])
    assert granted.status_code == 200, granted.text
    assert granted.json()["scope"] == "invocations:read"
    headers = {"authorization": f"Bearer {granted.json()['access_token']}"}
    async with httpx.AsyncClient(base_url=str(gateway.http.base_url), headers=headers) as http:
        assert (await http.get("/beta/trigger-invocations/status")).status_code == 200
        assert (await http.post("/beta/triggers", json={})).status_code == 403
        assert (await http.get("/beta/api-clients")).status_code == 403


async def test_secrets_are_shown_once_and_stored_only_as_hashes(gateway: GatewayClient) -> None:
    client = await create(gateway, scopes=["invocations:start"])
    assert client["clientId"].startswith("client-")
    listed = await gateway.http.get(
        "/beta/api-clients", params={"filters": f'clientId eq "{client["clientId"]}"'}
    )
    got = await gateway.http.get(f"/beta/api-clients/{client['clientId']}")
    assert listed.json() == [got.json()]
    assert got.json() == {k: v for k, v in client.items() if k != "clientSecret"}
    assert client["clientSecret"] not in listed.text + got.text
    assert client["clientSecret"].encode() not in await stored_bytes(gateway.settings.database_url)


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"scopes": ["everything"]}, 400, "scopes"),
        ({"scopes": []}, 400, "scopes"),
        ({"clientId": "no spaces", "scopes": ["invocations:read"]}, 400, "clientId"),
        ({"clientId": CLIENT_ID, "scopes": ["invocations:read"]}, 409, "already exists"),
    ],
)
async def test_invalid_clients_are_refused(
    gateway: GatewayClient, body: dict[str, Any], status: int, says: str
) -> None:
    response = await gateway.http.post("/beta/api-clients", json=body)
    assert response.status_code == status, response.text
    assert says in response.json()["messages"][0]["text"]


async def test_a_rotated_secret_keeps_working_for_the_grace_period(gateway: GatewayClient) -> None:
    client = await create(gateway, scopes=["invocations:read"])
    rotated = await gateway.http.post(f"/beta/api-clients/{client['clientId']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["clientSecret"] != client["clientSecret"]
    assert new["previousSecretExpires"] is not None
    assert (await token(gateway, client["clientId"], client["clientSecret"])).status_code == 200
    assert (await token(gateway, client["clientId"], new["clientSecret"])).status_code == 200
    # A second rotation ends the first secret's grace: only two secrets are ever valid.
    again = await gateway.http.post(f"/beta/api-clients/{client['clientId']}/rotate-secret")
    assert (await token(gateway, client["clientId"], client["clientSecret"])).status_code == 401
    assert (await token(gateway, client["clientId"], new["clientSecret"])).status_code == 200
    assert (await token(gateway, client["clientId"], again.json()["clientSecret"])).status_code == 200


async def test_without_grace_the_old_secret_stops_at_once(module_store: Store) -> None:
    async with start_gateway(module_store, rotation_grace=0) as gateway:
        client = await create(gateway, scopes=["invocations:read"])
        rotated = await gateway.http.post(f"/api-clients/{client['clientId']}/rotate-secret")
        assert (await token(gateway, client["clientId"], client["clientSecret"])).status_code == 401
        assert (await token(gateway, client["clientId"], rotated.json()["clientSecret"])).status_code == 200


async def test_a_deleted_client_gets_no_more_tokens(gateway: GatewayClient) -> None:
    client = await create(gateway, scopes=["invocations:read"])
    deleted = await gateway.http.delete(f"/beta/api-clients/{client['clientId']}")
    assert deleted.status_code == 204
    assert (await token(gateway, client["clientId"], client["clientSecret"])).status_code == 401
    assert (await gateway.http.get(f"/beta/api-clients/{client['clientId']}")).status_code == 404
    assert (await gateway.http.delete(f"/beta/api-clients/{client['clientId']}")).status_code == 404


async def test_the_bootstrap_client_is_managed_by_its_settings(gateway: GatewayClient) -> None:
    for response in (
        await gateway.http.post(f"/beta/api-clients/{CLIENT_ID}/rotate-secret"),
        await gateway.http.delete(f"/beta/api-clients/{CLIENT_ID}"),
    ):
        assert response.status_code == 409
        assert "GATEWAY_BOOTSTRAP_CLIENT" in response.json()["messages"][0]["text"]


async def test_a_client_cannot_delete_itself(gateway: GatewayClient) -> None:
    admin = await create(gateway, scopes=["clients:manage"])
    granted = await token(gateway, admin["clientId"], admin["clientSecret"])
    headers = {"authorization": f"Bearer {granted.json()['access_token']}"}
    async with httpx.AsyncClient(base_url=str(gateway.http.base_url), headers=headers) as http:
        response = await http.delete(f"/beta/api-clients/{admin['clientId']}")
    assert response.status_code == 409
    assert "itself" in response.json()["messages"][0]["text"]
