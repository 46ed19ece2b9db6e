"""/triggers: the trigger catalog, and the catalog file loaded at start."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.api.app import create_app
from gateway.usecases.builtin import SUBSCRIPTION_DISABLED
from tests.conftest import make_settings, start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import serve
from tests.services import Store

# One gateway serves the whole module; every test uses its own trigger ids.
pytestmark = pytest.mark.asyncio(loop_scope="module")

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"amount": {"type": "number"}, "requester": {"type": "string"}},
    "required": ["amount"],
}
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"approver": {"type": "string"}},
    "required": ["approver"],
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(module_store: Store) -> AsyncIterator[GatewayClient]:
    async with start_gateway(module_store) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}:{uuid.uuid4().hex[:8]}"


def trigger_doc(trigger_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": trigger_id, "name": "Approver", "type": "REQUEST_RESPONSE", **fields}


def error_text(response: Any) -> str:
    """The error's messages and causes as one string, after checking the error format."""
    body = response.json()
    assert body["trackingId"], body
    return " ".join(m["text"] for m in [*body["messages"], *body["causes"]])


@pytest.mark.parametrize("as_string", [True, False], ids=["schema-as-string", "schema-as-object"])
async def test_create_and_get_answer_schemas_as_strings(gateway: GatewayClient, as_string: bool) -> None:
    trigger_id = unique("create")
    fields = {
        "description": "who approves a purchase",
        "inputSchema": json.dumps(INPUT_SCHEMA) if as_string else INPUT_SCHEMA,
        "exampleInput": {"amount": 10, "requester": "ada"},
        "outputSchema": json.dumps(OUTPUT_SCHEMA) if as_string else OUTPUT_SCHEMA,
        "exampleOutput": {"approver": "grace"},
    }
    created = await gateway.http.post("/beta/triggers", json=trigger_doc(trigger_id, **fields))
    assert created.status_code == 201, created.text
    fetched = await gateway.http.get(f"/beta/triggers/{trigger_id}")
    assert fetched.status_code == 200, fetched.text
    for doc in (created.json(), fetched.json()):
        assert doc["id"] == trigger_id
        assert doc["type"] == "REQUEST_RESPONSE"
        assert doc["description"] == "who approves a purchase"
        assert isinstance(doc["inputSchema"], str) and isinstance(doc["outputSchema"], str)
        assert json.loads(doc["inputSchema"]) == INPUT_SCHEMA
        assert json.loads(doc["outputSchema"]) == OUTPUT_SCHEMA
        assert doc["exampleInput"] == {"amount": 10, "requester": "ada"}
        assert doc["exampleOutput"] == {"approver": "grace"}


async def test_invalid_json_schema_is_400_naming_the_problem(gateway: GatewayClient) -> None:
    trigger_id = unique("bad-schema")
    bad = {"type": "object", "properties": {"amount": {"type": "money"}}}
    response = await gateway.http.post("/beta/triggers", json=trigger_doc(trigger_id, inputSchema=bad))
    assert response.status_code == 400, response.text
    text = error_text(response)
    assert "inputSchema" in text and "money" in text
    assert (await gateway.http.get(f"/beta/triggers/{trigger_id}")).status_code == 404


async def test_schema_string_that_is_not_json_is_400(gateway: GatewayClient) -> None:
    doc = trigger_doc(unique("bad-schema"), inputSchema="{not json")
    response = await gateway.http.post("/beta/triggers", json=doc)
    assert response.status_code == 400, response.text
    assert "inputSchema" in error_text(response)


async def test_schema_with_an_invalid_regex_is_400(gateway: GatewayClient) -> None:
    # Valid against the metaschema, but no validator can apply the pattern.
    bad = {"type": "object", "properties": {"code": {"type": "string", "pattern": "["}}}
    response = await gateway.http.post("/beta/triggers", json=trigger_doc(unique("regex"), inputSchema=bad))
    assert response.status_code == 400, response.text
    assert "inputSchema" in error_text(response)


async def test_schema_with_an_unresolvable_ref_is_a_400_not_a_500(gateway: GatewayClient) -> None:
    broken = {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}
    doc = trigger_doc(unique("ref"), inputSchema=broken, exampleInput={"a": 1})
    response = await gateway.http.post("/beta/triggers", json=doc)
    assert response.status_code == 400, response.text
    assert "missing" in error_text(response)
    # Without an example the schema is only applied later, to each input: also a 400.
    trigger = await gateway.create_trigger(unique("ref"), type="FIRE_AND_FORGET", inputSchema=broken)
    start = {"triggerId": trigger["id"], "input": {"a": 1}}
    response = await gateway.http.post("/beta/trigger-invocations/start", json=start)
    assert response.status_code == 400, response.text
    assert "missing" in error_text(response)


async def test_schema_with_a_remote_ref_is_400_and_never_fetched(gateway: GatewayClient) -> None:
    fetched: list[str] = []

    async def record(request: Request) -> Response:
        fetched.append(request.url.path)
        return JSONResponse({"type": "string"})

    # A $ref to a URL would be fetched by jsonschema itself, past the SSRF guard.
    async with serve(Starlette(routes=[Route("/schema", record)])) as url:
        remote = {"type": "object", "properties": {"a": {"$ref": f"{url}/schema"}}}
        doc = trigger_doc(unique("remote"), inputSchema=remote, exampleInput={"a": 1})
        response = await gateway.http.post("/beta/triggers", json=doc)
    assert response.status_code == 400, response.text
    assert "only references within the schema" in error_text(response)
    assert fetched == []


async def test_example_not_matching_its_schema_is_400(gateway: GatewayClient) -> None:
    doc = trigger_doc(unique("bad-example"), inputSchema=INPUT_SCHEMA, exampleInput={"amount": "ten"})
    response = await gateway.http.post("/beta/triggers", json=doc)
    assert response.status_code == 400, response.text
    text = error_text(response)
    assert "exampleInput" in text and "amount" in text


async def test_duplicate_id_is_409(gateway: GatewayClient) -> None:
    trigger_id = unique("dup")
    await gateway.create_trigger(trigger_id)
    again = await gateway.http.post("/beta/triggers", json=trigger_doc(trigger_id, name="Other"))
    assert again.status_code == 409, again.text
    assert trigger_id in error_text(again)
    assert (await gateway.http.get(f"/beta/triggers/{trigger_id}")).json()["name"] == "Approver"


async def test_unknown_trigger_is_404(gateway: GatewayClient) -> None:
    for method in ("GET", "PUT", "DELETE"):
        body = trigger_doc("nope") if method == "PUT" else None
        response = await gateway.http.request(method, "/beta/triggers/nope", json=body)
        assert response.status_code == 404, (method, response.text)
        assert "nope" in error_text(response)


async def test_put_replaces(gateway: GatewayClient) -> None:
    trigger_id = unique("put")
    await gateway.create_trigger(trigger_id, description="old", inputSchema=INPUT_SCHEMA)
    doc = trigger_doc(
        trigger_id, name="Renamed", type="FIRE_AND_FORGET", outputSchema=json.dumps(OUTPUT_SCHEMA)
    )
    replaced = await gateway.http.put(f"/beta/triggers/{trigger_id}", json=doc)
    assert replaced.status_code == 200, replaced.text
    fetched = (await gateway.http.get(f"/beta/triggers/{trigger_id}")).json()
    assert fetched == replaced.json()
    assert fetched["name"] == "Renamed"
    assert fetched["type"] == "FIRE_AND_FORGET"
    assert fetched["description"] is None
    assert fetched["inputSchema"] == "{}"  # a PUT without one accepts anything
    assert json.loads(fetched["outputSchema"]) == OUTPUT_SCHEMA


async def test_put_cannot_change_the_id(gateway: GatewayClient) -> None:
    trigger_id = unique("put-id")
    await gateway.create_trigger(trigger_id)
    response = await gateway.http.put(f"/beta/triggers/{trigger_id}", json=trigger_doc(trigger_id + "-other"))
    assert response.status_code == 400, response.text
    assert "id cannot change" in error_text(response)
    doc = trigger_doc(trigger_id)
    del doc["id"]  # an id left out is the path's
    assert (await gateway.http.put(f"/beta/triggers/{trigger_id}", json=doc)).status_code == 200


async def test_put_is_validated_like_post(gateway: GatewayClient) -> None:
    trigger_id = unique("put-bad")
    await gateway.create_trigger(trigger_id)
    doc = trigger_doc(trigger_id, outputSchema=OUTPUT_SCHEMA, exampleOutput={"approver": 7})
    response = await gateway.http.put(f"/beta/triggers/{trigger_id}", json=doc)
    assert response.status_code == 400, response.text
    assert "exampleOutput" in error_text(response)


async def test_delete_then_404(gateway: GatewayClient) -> None:
    trigger_id = unique("delete")
    await gateway.create_trigger(trigger_id)
    deleted = await gateway.http.delete(f"/beta/triggers/{trigger_id}")
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    assert (await gateway.http.get(f"/beta/triggers/{trigger_id}")).status_code == 404
    assert (await gateway.http.delete(f"/beta/triggers/{trigger_id}")).status_code == 404


async def test_delete_with_subscriptions_is_409(gateway: GatewayClient) -> None:
    trigger_id = unique("subscribed")
    await gateway.create_trigger(trigger_id)
    sub = await gateway.subscribe(trigger_id, "http://127.0.0.1:9/hook")
    response = await gateway.http.delete(f"/beta/triggers/{trigger_id}")
    assert response.status_code == 409, response.text
    assert "subscription" in error_text(response)
    assert (await gateway.http.get(f"/beta/triggers/{trigger_id}")).status_code == 200
    assert (await gateway.http.delete(f"/beta/trigger-subscriptions/{sub['id']}")).status_code == 204
    assert (await gateway.http.delete(f"/beta/triggers/{trigger_id}")).status_code == 204


async def test_put_to_request_response_with_several_subscriptions_is_409(gateway: GatewayClient) -> None:
    trigger_id = unique("fanout")
    await gateway.create_trigger(trigger_id, type="FIRE_AND_FORGET")
    await gateway.subscribe(trigger_id, "http://127.0.0.1:9/a")
    await gateway.subscribe(trigger_id, "http://127.0.0.1:9/b")
    response = await gateway.http.put(f"/beta/triggers/{trigger_id}", json=trigger_doc(trigger_id))
    assert response.status_code == 409, response.text
    assert "at most one subscription" in error_text(response)
    assert (await gateway.http.get(f"/beta/triggers/{trigger_id}")).json()["type"] == "FIRE_AND_FORGET"


async def listed(gateway: GatewayClient, prefix: str = "/beta", **params: Any) -> list[str]:
    response = await gateway.http.get(f"{prefix}/triggers", params=params)
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()]


async def test_list_filters_sorters_and_paging(gateway: GatewayClient) -> None:
    group = uuid.uuid4().hex[:8]
    ids = [f"list{group}:{letter}" for letter in "abcde"]
    for trigger_id in ids:
        await gateway.create_trigger(trigger_id)
    scoped = f'id sw "list{group}:"'

    assert await listed(gateway, filters=f'id eq "{ids[2]}"') == [ids[2]]
    assert await listed(gateway, filters=f'id in ("{ids[0]}", "{ids[3]}")') == [ids[0], ids[3]]
    assert await listed(gateway, filters=scoped) == ids
    assert await listed(gateway, filters=scoped, sorters="-id") == ids[::-1]
    assert await listed(gateway, filters=scoped, limit=2, offset=1) == ids[1:3]
    assert await listed(gateway, filters=scoped, limit=2, offset=4) == ids[4:]

    counted = await gateway.http.get(
        "/beta/triggers", params={"filters": scoped, "limit": 2, "count": "true"}
    )
    assert counted.status_code == 200, counted.text
    assert counted.headers["x-total-count"] == "5"
    assert len(counted.json()) == 2
    uncounted = await gateway.http.get("/beta/triggers", params={"filters": scoped})
    assert "x-total-count" not in uncounted.headers


async def test_list_filters_on_type(gateway: GatewayClient) -> None:
    group = uuid.uuid4().hex[:8]
    await gateway.create_trigger(f"type{group}:rr")
    await gateway.create_trigger(f"type{group}:ff", type="FIRE_AND_FORGET")
    filters = f'id sw "type{group}:" and type eq "FIRE_AND_FORGET"'
    assert await listed(gateway, filters=filters) == [f"type{group}:ff"]


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        ({"filters": 'id eq "unterminated'}, "unterminated"),
        ({"filters": 'name eq "Approver"'}, "name"),
        ({"filters": 'id gt "a"'}, "gt"),
        ({"filters": 'id eq "a" or id eq "b"'}, "or"),
        ({"sorters": "description"}, "description"),
        ({"limit": "1000"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"count": "yes"}, "count"),
    ],
)
async def test_bad_list_parameters_are_400(
    gateway: GatewayClient, params: dict[str, str], mentions: str
) -> None:
    response = await gateway.http.get("/beta/triggers", params=params)
    assert response.status_code == 400, response.text
    assert mentions in error_text(response)


async def test_everything_also_works_without_the_beta_prefix(gateway: GatewayClient) -> None:
    trigger_id = unique("root")
    created = await gateway.http.post("/triggers", json=trigger_doc(trigger_id, inputSchema=INPUT_SCHEMA))
    assert created.status_code == 201, created.text
    assert (await gateway.http.get(f"/beta/triggers/{trigger_id}")).json() == created.json()
    assert (await gateway.http.get(f"/triggers/{trigger_id}")).json() == created.json()
    assert await listed(gateway, prefix="", filters=f'id eq "{trigger_id}"') == [trigger_id]
    replaced = await gateway.http.put(f"/triggers/{trigger_id}", json=trigger_doc(trigger_id, name="Root"))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["name"] == "Root"
    duplicate = await gateway.http.post("/triggers", json=trigger_doc(trigger_id))
    assert duplicate.status_code == 409, duplicate.text
    assert (await gateway.http.delete(f"/triggers/{trigger_id}")).status_code == 204
    assert (await gateway.http.get(f"/triggers/{trigger_id}")).status_code == 404


async def test_the_sailpoint_v1_paths_serve_the_same_api(gateway: GatewayClient) -> None:
    trigger_id = unique("v1")
    created = await gateway.http.post("/triggers/v1", json=trigger_doc(trigger_id))
    assert created.status_code == 201, created.text
    # Without an inputSchema the trigger accepts anything: {} says so to SDKs that require one.
    assert json.loads(created.json()["inputSchema"]) == {}
    for prefix in ("", "/beta"):
        assert (await gateway.http.get(f"{prefix}/triggers/v1/{trigger_id}")).json() == created.json()
        assert await listed(gateway, prefix=prefix, filters=f'id eq "{trigger_id}"') == [trigger_id]
        v1_list = await gateway.http.get(f"{prefix}/triggers/v1", params={"filters": f'id eq "{trigger_id}"'})
        assert [t["id"] for t in v1_list.json()] == [trigger_id]
    assert (await gateway.http.delete(f"/triggers/v1/{trigger_id}")).status_code == 204


async def test_a_trigger_may_not_be_named_v1(gateway: GatewayClient) -> None:
    for path in ("/triggers", "/beta/triggers", "/triggers/v1"):
        refused = await gateway.http.post(path, json=trigger_doc("v1"))
        assert refused.status_code == 400, refused.text
        assert "reserved" in error_text(refused) and "/triggers/v1" in error_text(refused)
    assert (await gateway.http.get("/triggers/v1/v1")).status_code == 404


CATALOG: list[dict[str, Any]] = [
    {
        "id": "catalog:approver",
        "name": "Approver",
        "type": "REQUEST_RESPONSE",
        "inputSchema": json.dumps(INPUT_SCHEMA),
        "exampleInput": {"amount": 1},
        "outputSchema": OUTPUT_SCHEMA,
        "exampleOutput": {"approver": "ada"},
    },
    {"id": "catalog:created", "name": "Identity created", "type": "FIRE_AND_FORGET"},
]


def yaml_catalog() -> str:
    return """\
triggers:
  - id: catalog:approver
    name: Approver
    type: REQUEST_RESPONSE
    inputSchema: |
      {"type": "object", "properties": {"amount": {"type": "number"},
       "requester": {"type": "string"}}, "required": ["amount"]}
    exampleInput: {amount: 1}
    outputSchema:
      type: object
      properties: {approver: {type: string}}
      required: [approver]
    exampleOutput: {approver: ada}
  - id: catalog:created
    name: Identity created
    type: FIRE_AND_FORGET
"""


@pytest.mark.parametrize("kind", ["yaml", "json"])
async def test_catalog_file_loaded_at_start(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"triggers.{kind}"
    path.write_text(yaml_catalog() if kind == "yaml" else json.dumps(CATALOG))
    async with start_gateway(tmp_path, triggers_file=str(path)) as gateway:
        response = await gateway.http.get("/beta/triggers")
    assert response.status_code == 200, response.text
    by_id = {t["id"]: t for t in response.json()}
    # The file's, beside the gateway's own.
    assert set(by_id) == {"catalog:approver", "catalog:created", SUBSCRIPTION_DISABLED}
    approver = by_id["catalog:approver"]
    assert json.loads(approver["inputSchema"]) == INPUT_SCHEMA
    assert json.loads(approver["outputSchema"]) == OUTPUT_SCHEMA
    assert approver["exampleInput"] == {"amount": 1}
    assert by_id["catalog:created"]["type"] == "FIRE_AND_FORGET"


async def start_with_catalog(tmp_path: Path, path: Path) -> None:
    """Run the gateway's startup (its lifespan) with ``path`` as GATEWAY_TRIGGERS_FILE.

    Driven directly rather than under uvicorn, which answers a failed startup with sys.exit().
    """
    app = create_app(make_settings(tmp_path, "http://127.0.0.1:9", triggers_file=str(path)))
    async with app.router.lifespan_context(app):
        pass


@pytest.mark.parametrize(
    ("content", "mentions"),
    [
        ("triggers: [{id: x, name: X, type: SOMETIMES}]", "type"),
        ('[{"id": "x", "name": "X", "type": "REQUEST_RESPONSE", "inputSchema": {"type": 5}}]', "inputSchema"),
        ("triggers: {id: x}", "list"),
        ("triggers: [unterminated", "cannot read"),
        ("[{id: x, name: X, type: FIRE_AND_FORGET, exampleInput: {a: .nan}}]", "not JSON"),
        ("[{id: x, name: X, type: FIRE_AND_FORGET, exampleInput: {on: 2024-01-01}}]", "not JSON"),
    ],
    ids=["bad-type", "bad-schema", "not-a-list", "not-yaml", "nan", "date"],
)
async def test_invalid_catalog_file_fails_startup_naming_the_file(
    tmp_path: Path, content: str, mentions: str
) -> None:
    path = tmp_path / "broken-catalog.yaml"
    path.write_text(content)
    with pytest.raises(ValueError, match=r"broken-catalog\.yaml") as failed:
        await start_with_catalog(tmp_path, path)
    assert str(path) in str(failed.value)
    assert mentions in str(failed.value)


async def test_catalog_updates_its_triggers_and_leaves_others_alone(tmp_path: Path) -> None:
    async with start_gateway(tmp_path) as gateway:
        await gateway.create_trigger("catalog:approver", name="Old name")
        await gateway.create_trigger("api:defined")
    path = tmp_path / "triggers.json"
    path.write_text(json.dumps(CATALOG))
    async with start_gateway(tmp_path, triggers_file=str(path)) as gateway:
        ids = await listed(gateway)
        approver = (await gateway.http.get("/beta/triggers/catalog:approver")).json()
    assert sorted(ids) == ["api:defined", "catalog:approver", "catalog:created", SUBSCRIPTION_DISABLED]
    assert approver["name"] == "Approver"
    assert json.loads(approver["inputSchema"]) == INPUT_SCHEMA


async def test_catalog_cannot_give_a_request_response_trigger_several_subscriptions(tmp_path: Path) -> None:
    async with start_gateway(tmp_path) as gateway:
        await gateway.create_trigger("catalog:created", type="FIRE_AND_FORGET")
        await gateway.subscribe("catalog:created", "http://127.0.0.1:9/a")
        await gateway.subscribe("catalog:created", "http://127.0.0.1:9/b")
    path = tmp_path / "retyped.json"
    path.write_text(json.dumps([{"id": "catalog:created", "name": "Now asks", "type": "REQUEST_RESPONSE"}]))
    with pytest.raises(ValueError, match=r"retyped\.json") as failed:
        await start_with_catalog(tmp_path, path)
    assert "catalog:created" in str(failed.value)
    async with start_gateway(tmp_path) as gateway:
        unchanged = (await gateway.http.get("/beta/triggers/catalog:created")).json()
    assert unchanged["type"] == "FIRE_AND_FORGET"


async def test_missing_catalog_file_fails_startup(tmp_path: Path) -> None:
    path = tmp_path / "no-such-catalog.yaml"
    with pytest.raises(ValueError, match=r"no-such-catalog\.yaml"):
        await start_with_catalog(tmp_path, path)
