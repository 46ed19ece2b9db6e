"""/trigger-subscriptions: subscribe, change, unsubscribe, list, and validate a filter."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer, serve
from tests.services import Store, stored_bytes

# One gateway serves the whole module; every test defines its own triggers.
pytestmark = pytest.mark.asyncio(loop_scope="module")

HOOK = "http://127.0.0.1:9/hook"
PATCH_JSON = {"content-type": "application/json-patch+json"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(module_store: Store) -> AsyncIterator[GatewayClient]:
    async with start_gateway(module_store) as client:
        yield client


async def new_trigger(gateway: GatewayClient, type: str = "REQUEST_RESPONSE", **fields: Any) -> str:
    trigger_id = f"sub-test:{uuid.uuid4().hex[:8]}"
    await gateway.create_trigger(trigger_id, type=type, **fields)
    return trigger_id


def sub_doc(trigger_id: str | None, url: str = HOOK, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "a subscription",
        "httpConfig": {"url": url, **fields.pop("httpConfig", {})},
    }
    if trigger_id is not None:
        doc["triggerId"] = trigger_id
    return {**doc, **fields}


def basic(user: str, password: str | None) -> dict[str, Any]:
    return {
        "httpAuthenticationType": "BASIC_AUTH",
        "basicAuthConfig": {"userName": user, "password": password},
    }


def error_text(response: httpx.Response) -> str:
    """The error's messages and causes as one string, after checking the error format."""
    body = response.json()
    assert body["trackingId"], body
    return " ".join(m["text"] for m in [*body["messages"], *body["causes"]])


async def db_bytes(gateway: GatewayClient) -> bytes:
    return await stored_bytes(gateway.settings.database_url)


async def test_create_answers_201_with_defaults(gateway: GatewayClient) -> None:
    trigger_id = await new_trigger(gateway, name="Approver of things")
    response = await gateway.http.post("/beta/trigger-subscriptions", json=sub_doc(trigger_id))
    assert response.status_code == 201, response.text
    sub = response.json()
    assert sub["triggerId"] == trigger_id
    assert sub["triggerName"] == "Approver of things"
    assert sub["type"] == "HTTP"
    assert sub["enabled"] is True
    assert sub["responseDeadline"] == "PT1H"
    assert sub["filter"] is None
    assert sub["httpConfig"]["url"] == HOOK
    assert sub["httpConfig"]["httpDispatchMode"] == "SYNC"
    assert sub["httpConfig"]["httpAuthenticationType"] == "NO_AUTH"
    assert sub.pop("signingSecret").startswith("whsec_")  # shown in this answer only
    fetched = await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == sub
    root = await gateway.http.get(f"/trigger-subscriptions/{sub['id']}")
    assert root.json() == sub


async def test_basic_auth_password_is_write_only(gateway: GatewayClient) -> None:
    trigger_id = await new_trigger(gateway)
    password = f"pw-{uuid.uuid4().hex}"
    created = await gateway.http.post(
        "/beta/trigger-subscriptions", json=sub_doc(trigger_id, httpConfig=basic("ada", password))
    )
    assert created.status_code == 201, created.text
    sub_id = created.json()["id"]
    fetched = await gateway.http.get(f"/beta/trigger-subscriptions/{sub_id}")
    listed = await gateway.http.get("/beta/trigger-subscriptions", params={"filters": f'id eq "{sub_id}"'})
    replaced = await gateway.http.put(
        f"/beta/trigger-subscriptions/{sub_id}", json=sub_doc(None, httpConfig=basic("ada", password))
    )
    assert replaced.status_code == 200, replaced.text
    for doc in (created.json(), fetched.json(), listed.json()[0], replaced.json()):
        assert doc["httpConfig"]["basicAuthConfig"] == {"userName": "ada", "password": None}
        assert password not in str(doc)
    assert password.encode() not in (await db_bytes(gateway))


async def test_bearer_token_is_write_only(gateway: GatewayClient) -> None:
    trigger_id = await new_trigger(gateway)
    token = f"tok-{uuid.uuid4().hex}"
    http_config = {"httpAuthenticationType": "BEARER_TOKEN", "bearerTokenAuthConfig": {"bearerToken": token}}
    created = await gateway.http.post(
        "/beta/trigger-subscriptions", json=sub_doc(trigger_id, httpConfig=http_config)
    )
    assert created.status_code == 201, created.text
    sub_id = created.json()["id"]
    fetched = await gateway.http.get(f"/beta/trigger-subscriptions/{sub_id}")
    replaced = await gateway.http.put(
        f"/beta/trigger-subscriptions/{sub_id}", json=sub_doc(None, httpConfig=http_config)
    )
    assert replaced.status_code == 200, replaced.text
    for doc in (created.json(), fetched.json(), replaced.json()):
        assert doc["httpConfig"]["httpAuthenticationType"] == "BEARER_TOKEN"
        assert doc["httpConfig"]["bearerTokenAuthConfig"] == {"bearerToken": None}
        assert token not in str(doc)
    assert token.encode() not in (await db_bytes(gateway))


@pytest.mark.parametrize(
    ("http_config", "mentions"),
    [
        (basic("ada", None), "password"),
        ({"httpAuthenticationType": "BASIC_AUTH"}, "basicAuthConfig"),
        ({"httpAuthenticationType": "BEARER_TOKEN"}, "bearerToken"),
        (
            {"httpAuthenticationType": "BEARER_TOKEN", "bearerTokenAuthConfig": {"bearerToken": ""}},
            "bearerToken",
        ),
    ],
    ids=["basic-no-password", "basic-no-config", "bearer-no-config", "bearer-empty"],
)
async def test_missing_credential_is_400(
    gateway: GatewayClient, http_config: dict[str, Any], mentions: str
) -> None:
    trigger_id = await new_trigger(gateway)
    response = await gateway.http.post(
        "/beta/trigger-subscriptions", json=sub_doc(trigger_id, httpConfig=http_config)
    )
    assert response.status_code == 400, response.text
    assert mentions in error_text(response)


async def test_request_response_trigger_takes_one_subscription(gateway: GatewayClient) -> None:
    trigger_id = await new_trigger(gateway, "REQUEST_RESPONSE")
    await gateway.subscribe(trigger_id, HOOK)
    second = await gateway.http.post("/beta/trigger-subscriptions", json=sub_doc(trigger_id))
    assert second.status_code == 400, second.text
    text = error_text(second)
    assert "REQUEST_RESPONSE" in text and "1 subscription" in text
    listed = await gateway.http.get(
        "/beta/trigger-subscriptions", params={"filters": f'triggerId eq "{trigger_id}"'}
    )
    assert len(listed.json()) == 1


async def test_fire_and_forget_trigger_takes_fifty_even_when_racing(gateway: GatewayClient) -> None:
    trigger_id = await new_trigger(gateway, "FIRE_AND_FORGET")
    # 51 subscribes at once: the count check must hold under concurrency, not just in sequence.
    responses = await asyncio.gather(
        *(
            gateway.http.post("/beta/trigger-subscriptions", json=sub_doc(trigger_id, name=f"sub {i}"))
            for i in range(51)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 50 + [400], statuses
    [refused] = [r for r in responses if r.status_code == 400]
    assert "50 subscription" in error_text(refused)
    again = await gateway.http.post("/beta/trigger-subscriptions", json=sub_doc(trigger_id))
    assert again.status_code == 400, again.text
    counted = await gateway.http.get(
        "/beta/trigger-subscriptions",
        params={"filters": f'triggerId eq "{trigger_id}"', "count": "true", "limit": "1"},
    )
    assert counted.headers["x-total-count"] == "50"


async def test_unknown_or_missing_trigger_is_400(gateway: GatewayClient) -> None:
    unknown = await gateway.http.post("/beta/trigger-subscriptions", json=sub_doc("no:such-trigger"))
    assert unknown.status_code == 400, unknown.text
    assert "no:such-trigger" in error_text(unknown)
    missing = await gateway.http.post("/beta/trigger-subscriptions", json=sub_doc(None))
    assert missing.status_code == 400, missing.text
    assert "triggerId" in error_text(missing)


@pytest.mark.parametrize("deadline", ["1 hour", "P1M", "P1Y", "PT0S", "-PT1H", "P31D", ""])
async def test_bad_response_deadline_is_400(gateway: GatewayClient, deadline: str) -> None:
    trigger_id = await new_trigger(gateway)
    response = await gateway.http.post(
        "/beta/trigger-subscriptions", json=sub_doc(trigger_id, responseDeadline=deadline)
    )
    assert response.status_code == 400, response.text
    assert "responseDeadline" in error_text(response)


@pytest.mark.parametrize("deadline", ["PT2S", "P30D", "P1DT2H"])
async def test_good_response_deadline_is_kept(gateway: GatewayClient, deadline: str) -> None:
    trigger_id = await new_trigger(gateway)
    sub = await gateway.subscribe(trigger_id, HOOK, responseDeadline=deadline)
    assert sub["responseDeadline"] == deadline


async def test_bad_filter_is_400(gateway: GatewayClient) -> None:
    trigger_id = await new_trigger(gateway)
    response = await gateway.http.post(
        "/beta/trigger-subscriptions", json=sub_doc(trigger_id, filter="$[?(@.amount >")
    )
    assert response.status_code == 400, response.text
    assert "filter" in error_text(response)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hook", "example.com/hook", "http://", "javascript:alert(1)"]
)
async def test_non_http_url_is_400(gateway: GatewayClient, url: str) -> None:
    trigger_id = await new_trigger(gateway)
    response = await gateway.http.post("/beta/trigger-subscriptions", json=sub_doc(trigger_id, url=url))
    assert response.status_code == 400, response.text
    assert "url" in error_text(response)


async def test_put_replaces_the_subscription(gateway: GatewayClient) -> None:
    trigger_id = await new_trigger(gateway)
    sub = await gateway.subscribe(trigger_id, HOOK, filter="$[?($.amount > 1)]", description="old")
    doc = sub_doc(
        None,
        url="https://localhost:9/new",
        name="renamed",
        enabled=False,
        responseDeadline="PT5M",
        httpConfig={"httpDispatchMode": "ASYNC"},
    )
    replaced = await gateway.http.put(f"/beta/trigger-subscriptions/{sub['id']}", json=doc)
    assert replaced.status_code == 200, replaced.text
    fetched = (await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")).json()
    assert fetched == replaced.json()
    assert fetched["id"] == sub["id"] and fetched["triggerId"] == trigger_id
    assert fetched["name"] == "renamed"
    assert fetched["enabled"] is False
    assert fetched["responseDeadline"] == "PT5M"
    assert fetched["filter"] is None  # a PUT replaces: what is left out is reset
    assert fetched["description"] is None
    assert fetched["httpConfig"]["url"] == "https://localhost:9/new"
    assert fetched["httpConfig"]["httpDispatchMode"] == "ASYNC"


async def test_put_is_validated_and_unknown_is_404(gateway: GatewayClient) -> None:
    trigger_id = await new_trigger(gateway)
    sub = await gateway.subscribe(trigger_id, HOOK)
    bad = await gateway.http.put(
        f"/beta/trigger-subscriptions/{sub['id']}", json=sub_doc(None, responseDeadline="P1M")
    )
    assert bad.status_code == 400, bad.text
    unknown = await gateway.http.put("/beta/trigger-subscriptions/no-such-id", json=sub_doc(None))
    assert unknown.status_code == 404, unknown.text
    assert (await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")).json() == sub


async def test_put_cannot_change_the_trigger(gateway: GatewayClient) -> None:
    trigger_id = await new_trigger(gateway)
    other = await new_trigger(gateway)
    sub = await gateway.subscribe(trigger_id, HOOK)
    response = await gateway.http.put(f"/beta/trigger-subscriptions/{sub['id']}", json=sub_doc(other))
    assert response.status_code == 400, response.text
    assert "triggerId" in error_text(response)
    # Sending the document back as read (with its own triggerId and read-only fields) is fine.
    same = await gateway.http.put(f"/beta/trigger-subscriptions/{sub['id']}", json=sub)
    assert same.status_code == 200, same.text
    assert same.json()["triggerId"] == trigger_id


async def delivered_authorization(gateway: GatewayClient, subscriber: Subscriber, trigger_id: str) -> str:
    """Raise a test invocation and return the Authorization header the subscriber received."""
    before = len(subscriber.received)
    response = await gateway.http.post("/beta/trigger-invocations/test", json={"triggerId": trigger_id})
    assert response.status_code == 200, response.text
    received = await subscriber.wait_for(before + 1)
    return received[before].headers.get("authorization", "")


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_put_keeps_the_stored_credential_when_sent_back_as_null(gateway: GatewayClient) -> None:
    trigger_id = await new_trigger(gateway, "FIRE_AND_FORGET", exampleInput={"n": 1})
    subscriber = Subscriber()
    async with serve(subscriber.app()) as url:
        subscriber.url = url
        hook = subscriber.endpoint("hook", answer(200, {}))
        sub = await gateway.subscribe(trigger_id, hook, httpConfig=basic("ada", "first-password"))
        assert await delivered_authorization(gateway, subscriber, trigger_id) == basic_header(
            "ada", "first-password"
        )

        # The document as GET shows it (password null) goes back unchanged: the password stays.
        shown = (await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")).json()
        assert shown["httpConfig"]["basicAuthConfig"]["password"] is None
        kept = await gateway.http.put(f"/beta/trigger-subscriptions/{sub['id']}", json=shown)
        assert kept.status_code == 200, kept.text
        assert await delivered_authorization(gateway, subscriber, trigger_id) == basic_header(
            "ada", "first-password"
        )

        # A new password replaces it.
        changed = await gateway.http.put(
            f"/beta/trigger-subscriptions/{sub['id']}",
            json=sub_doc(None, url=hook, httpConfig=basic("ada", "second-password")),
        )
        assert changed.status_code == 200, changed.text
        assert await delivered_authorization(gateway, subscriber, trigger_id) == basic_header(
            "ada", "second-password"
        )

        # Switching to another kind of authentication needs its own credential.
        to_bearer = await gateway.http.put(
            f"/beta/trigger-subscriptions/{sub['id']}",
            json=sub_doc(None, url=hook, httpConfig={"httpAuthenticationType": "BEARER_TOKEN"}),
        )
        assert to_bearer.status_code == 400, to_bearer.text


async def patch(gateway: GatewayClient, sub_id: str, operations: Any) -> httpx.Response:
    return await gateway.http.patch(
        f"/beta/trigger-subscriptions/{sub_id}", json=operations, headers=PATCH_JSON
    )


async def test_patch_replaces_fields(gateway: GatewayClient) -> None:
    trigger_id = await new_trigger(gateway)
    sub = await gateway.subscribe(trigger_id, HOOK, name="before")
    response = await patch(
        gateway,
        sub["id"],
        [
            {"op": "replace", "path": "/enabled", "value": False},
            {"op": "replace", "path": "/name", "value": "after"},
            {"op": "replace", "path": "/filter", "value": "$[?($.amount > 100)]"},
        ],
    )
    assert response.status_code == 200, response.text
    fetched = (await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")).json()
    assert fetched == response.json()
    assert fetched["enabled"] is False
    assert fetched["name"] == "after"
    assert fetched["filter"] == "$[?($.amount > 100)]"
    assert fetched["httpConfig"] == sub["httpConfig"]
    assert fetched["triggerId"] == trigger_id


async def test_concurrent_patches_of_different_fields_all_land(gateway: GatewayClient) -> None:
    trigger_id = await new_trigger(gateway)
    sub = await gateway.subscribe(trigger_id, HOOK, name="n0", description="d0")
    for round in range(1, 6):
        name = patch(gateway, sub["id"], [{"op": "replace", "path": "/name", "value": f"n{round}"}])
        text = [{"op": "replace", "path": "/description", "value": f"d{round}"}]
        responses = await asyncio.gather(name, patch(gateway, sub["id"], text))
        assert [r.status_code for r in responses] == [200, 200]
        fetched = (await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")).json()
        assert (fetched["name"], fetched["description"]) == (f"n{round}", f"d{round}")


async def test_patch_keeps_the_stored_credential(gateway: GatewayClient) -> None:
    trigger_id = await new_trigger(gateway)
    sub = await gateway.subscribe(trigger_id, HOOK, httpConfig=basic("ada", "a-password"))
    response = await patch(gateway, sub["id"], [{"op": "replace", "path": "/name", "value": "renamed"}])
    assert response.status_code == 200, response.text
    assert response.json()["httpConfig"]["basicAuthConfig"] == {"userName": "ada", "password": None}


@pytest.mark.parametrize("path", ["/id", "/triggerId", "/triggerId/x"])
async def test_patch_on_immutable_fields_is_400(gateway: GatewayClient, path: str) -> None:
    trigger_id = await new_trigger(gateway)
    sub = await gateway.subscribe(trigger_id, HOOK)
    response = await patch(gateway, sub["id"], [{"op": "replace", "path": path, "value": "other"}])
    assert response.status_code == 400, response.text
    assert path in error_text(response)
    assert (await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")).json() == sub


@pytest.mark.parametrize(
    "operations",
    [
        {"op": "replace", "path": "/name", "value": "x"},
        [],
        [{"op": "frobnicate", "path": "/name", "value": "x"}],
        [{"op": "replace", "path": "/no-such-field", "value": "x"}],
        [{"op": "replace", "path": "/name"}],
        [{"op": "replace", "path": 5, "value": "x"}],
        [{"op": "replace", "path": "/enabled", "value": "yes please"}],
        [{"op": "remove", "path": "/httpConfig"}],
        [{"op": "test", "path": "/name", "value": "not the name"}],
        ["not an operation"],
    ],
    ids=[
        "not-a-list",
        "empty",
        "unknown-op",
        "missing-target",
        "no-value",
        "path-not-a-string",
        "wrong-type",
        "required-removed",
        "failed-test",
        "not-an-object",
    ],
)
async def test_invalid_patch_is_400(gateway: GatewayClient, operations: Any) -> None:
    trigger_id = await new_trigger(gateway)
    sub = await gateway.subscribe(trigger_id, HOOK)
    response = await patch(gateway, sub["id"], operations)
    assert response.status_code == 400, response.text
    assert error_text(response)
    assert (await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")).json() == sub


async def test_patch_unknown_subscription_is_404(gateway: GatewayClient) -> None:
    response = await patch(gateway, "no-such-id", [{"op": "replace", "path": "/name", "value": "x"}])
    assert response.status_code == 404, response.text


async def test_delete_then_404(gateway: GatewayClient) -> None:
    trigger_id = await new_trigger(gateway)
    sub = await gateway.subscribe(trigger_id, HOOK)
    deleted = await gateway.http.delete(f"/beta/trigger-subscriptions/{sub['id']}")
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    assert (await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")).status_code == 404
    assert (await gateway.http.delete(f"/beta/trigger-subscriptions/{sub['id']}")).status_code == 404
    # The trigger's one REQUEST_RESPONSE slot is free again.
    await gateway.subscribe(trigger_id, HOOK)


async def listed(gateway: GatewayClient, **params: Any) -> list[dict[str, Any]]:
    response = await gateway.http.get("/beta/trigger-subscriptions", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_list_filters_sorters_paging_and_count(gateway: GatewayClient) -> None:
    fanout = await new_trigger(gateway, "FIRE_AND_FORGET")
    single = await new_trigger(gateway, "REQUEST_RESPONSE")
    subs = [await gateway.subscribe(fanout, HOOK, name=f"fan {n}") for n in "cab"]
    lone = await gateway.subscribe(single, HOOK, name="lone")
    mine = f'triggerId in ("{fanout}", "{single}")'

    assert [s["id"] for s in await listed(gateway, filters=f'id eq "{lone["id"]}"')] == [lone["id"]]
    in_ids = f'id in ("{subs[0]["id"]}", "{lone["id"]}")'
    assert {s["id"] for s in await listed(gateway, filters=in_ids)} == {subs[0]["id"], lone["id"]}
    fanned = await listed(gateway, filters=f'triggerId eq "{fanout}"')
    assert {s["id"] for s in fanned} == {s["id"] for s in subs}
    assert all(s["triggerName"] == "Approver" for s in fanned)
    assert len(await listed(gateway, filters=f'{mine} and type eq "HTTP"')) == 4
    assert await listed(gateway, filters=f'{mine} and type eq "EVENTBRIDGE"') == []

    by_name = [s["name"] for s in await listed(gateway, filters=mine, sorters="name")]
    assert by_name == ["fan a", "fan b", "fan c", "lone"]
    by_name_desc = [s["name"] for s in await listed(gateway, filters=mine, sorters="-name")]
    assert by_name_desc == by_name[::-1]
    paged = await listed(gateway, filters=mine, sorters="name", limit=2, offset=1)
    assert [s["name"] for s in paged] == ["fan b", "fan c"]

    counted = await gateway.http.get(
        "/beta/trigger-subscriptions", params={"filters": mine, "count": "true", "limit": "1"}
    )
    assert counted.headers["x-total-count"] == "4"
    assert len(counted.json()) == 1


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        ({"filters": 'name eq "x"'}, "name"),
        ({"filters": 'triggerId sw "x"'}, "sw"),
        ({"filters": "id eq"}, "value"),
        ({"sorters": "url"}, "url"),
        ({"limit": "251"}, "limit"),
        ({"count": "1"}, "count"),
    ],
)
async def test_bad_list_parameters_are_400(
    gateway: GatewayClient, params: dict[str, str], mentions: str
) -> None:
    response = await gateway.http.get("/beta/trigger-subscriptions", params=params)
    assert response.status_code == 400, response.text
    assert mentions in error_text(response)


@pytest.mark.parametrize(
    ("input", "filter", "expected"),
    [
        (
            {"amount": 150},
            "$[?($.amount > 100)]",
            {"isValid": True, "isValidJSONPath": True, "isPathExist": True},
        ),
        ({"amount": 50}, "$[?($.amount > 100)]", {"isValid": False, "isValidJSONPath": True}),
        ({"amount": 150}, "$[?(", {"isValid": False, "isValidJSONPath": False, "isPathExist": False}),
    ],
    ids=["matching", "not-matching", "invalid"],
)
async def test_validate_filter(
    gateway: GatewayClient, input: dict[str, Any], filter: str, expected: dict[str, bool]
) -> None:
    response = await gateway.http.post(
        "/beta/trigger-subscriptions/validate-filter", json={"input": input, "filter": filter}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"isValid", "isValidJSONPath", "isPathExist"}
    assert all(isinstance(value, bool) for value in body.values())
    assert {key: body[key] for key in expected} == expected


async def test_validate_filter_needs_input_and_filter(gateway: GatewayClient) -> None:
    for doc in ({"filter": "$.a"}, {"input": {"a": 1}}, {"input": {"a": 1}, "filter": ""}):
        response = await gateway.http.post("/beta/trigger-subscriptions/validate-filter", json=doc)
        assert response.status_code == 400, (doc, response.text)
