"""openapi/openapi.yaml is a valid OpenAPI 3.1 document and in step with the code.

Everything compared here is computed from the code (the route objects, the ``requires``
decorator's ``required_scopes``, each api module's ``FILTERABLE``, the pydantic request models, the
response builders, the enums and what a delivery carries), so adding, removing or changing any of
them without the document fails.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from pydantic import BaseModel
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Mount, Route, Router

from gateway.adapters.database import engine as database
from gateway.adapters.database.invocation_store import InvocationStore
from gateway.api.errors import DETAIL_CODES, error_response
from gateway.api.routes import API_ROUTES, BETA_ROUTES, ROUTES
from gateway.domain import delivery as deliveries
from gateway.domain import documents as schemas
from gateway.domain import signing
from gateway.domain.clock import utcnow
from gateway.domain.errors import ApiError
from gateway.domain.keys import Keys
from gateway.domain.model import (
    RUN_PHASES,
    ApiClient,
    DeliveryAttempt,
    Invocation,
    Source,
    Status,
    Subscription,
    Trigger,
)
from gateway.settings import Settings
from gateway.usecases import api_clients, runs, statuses, subscriptions, triggers

DOCUMENT = Path(__file__).resolve().parents[2] / "openapi" / "openapi.yaml"
DOCUMENT_URI = "urn:trigger-gateway:openapi"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
BETA = "/beta"

# SailPoint's operationIds: SDK clients are generated with these names.
SAILPOINT_OPERATION_IDS = {
    ("GET", "/triggers"): "listTriggers",
    ("GET", "/trigger-subscriptions"): "listSubscriptions",
    ("POST", "/trigger-subscriptions"): "createSubscription",
    ("PUT", "/trigger-subscriptions/{id}"): "updateSubscription",
    ("PATCH", "/trigger-subscriptions/{id}"): "patchTriggerSubscription",
    ("DELETE", "/trigger-subscriptions/{id}"): "deleteSubscription",
    ("POST", "/trigger-subscriptions/validate-filter"): "testSubscriptionFilter",
    ("POST", "/trigger-invocations/start"): "startInvocation",
    ("POST", "/trigger-invocations/test"): "startTestInvocation",
    ("GET", "/trigger-invocations/status"): "listInvocationStatus",
    ("POST", "/trigger-invocations/{id}/complete"): "completeTriggerInvocation",
}

# The request models, by the name of the component schema that documents them.
REQUEST_MODELS: dict[str, type[BaseModel]] = {
    "TriggerInput": schemas.TriggerIn,
    "SubscriptionInput": schemas.SubscriptionIn,
    "HttpConfig": schemas.HttpConfig,
    "BasicAuthConfig": schemas.BasicAuthConfig,
    "BearerTokenAuthConfig": schemas.BearerTokenAuthConfig,
    "ScheduleOption": schemas.ScheduleOption,
    "ScheduleInput": schemas.ScheduleIn,
    "RunInput": schemas.RunIn,
    "StartInvocationInput": schemas.StartInvocationIn,
    "TestInvocationInput": schemas.TestInvocationIn,
    "CompleteInvocationInput": schemas.CompleteInvocationIn,
    "HeartbeatInput": schemas.HeartbeatIn,
    "ValidateFilterInput": schemas.ValidateFilterIn,
    "ReplayInput": schemas.ReplayIn,
    "ApiClientInput": schemas.ApiClientIn,
}
# Fields the model requires but the schema does not, and why.
NOT_REQUIRED_IN_DOCUMENT = {
    # PUT /triggers/{id} takes the id from the path; POST requires it with an allOf.
    "TriggerInput": {"id"},
}

Operation = tuple[str, str]  # (METHOD, path as served, e.g. /beta/triggers/{id})
Endpoint = Callable[..., Any]


class Documented(NamedTuple):
    path: str  # as written in the document, without the server prefix
    method: str  # lower case, as written in the document
    operation: dict[str, Any]


# --- reading both sides ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded = yaml.safe_load(DOCUMENT.read_text())
    assert isinstance(loaded, dict), f"{DOCUMENT} does not hold a mapping"
    return loaded


def routed_operations(routes: Sequence[BaseRoute], prefix: str = "") -> dict[Operation, Endpoint]:
    """Every (METHOD, path) the application answers, mounts expanded, with its endpoint."""
    found: dict[Operation, Endpoint] = {}

    def add(key: Operation, endpoint: Endpoint) -> None:
        assert key not in found, f"{key[0]} {key[1]} is routed twice; the second route is unreachable"
        found[key] = endpoint

    for route in routes:
        if isinstance(route, Mount):
            for key, endpoint in routed_operations(route.routes, prefix + route.path).items():
                add(key, endpoint)
        elif isinstance(route, Route):
            assert route.methods, f"route {route.path} accepts any method; give it explicit methods"
            methods = set(route.methods)
            if "GET" in methods:
                methods.discard("HEAD")  # Starlette answers HEAD for every GET route by itself
            for method in methods:
                add((method, prefix + route.path), route.endpoint)
        else:
            raise AssertionError(f"{route!r} is neither a Route nor a Mount; teach this test about it")
    return found


def documented_operations(doc: Mapping[str, Any]) -> dict[Operation, Documented]:
    """Every (METHOD, path) the document describes, each path expanded with its servers and,
    in the collections of x-service-versioned-paths, also with that segment."""
    found: dict[Operation, Documented] = {}
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            servers = operation.get("servers") or item.get("servers") or doc["servers"]
            for served in (path, *versioned(doc, path)):
                for server in servers:
                    key = (method.upper(), server["url"].rstrip("/") + served)
                    assert key not in found, f"{key[0]} {key[1]} is documented twice"
                    found[key] = Documented(path, method, operation)
    return found


def versioned(doc: Mapping[str, Any], path: str) -> list[str]:
    """``path`` with the document's service-version segment after its collection, if it has one."""
    spec = doc["x-service-versioned-paths"]
    for collection in spec["collections"]:
        if path == collection or path.startswith(collection + "/"):
            return [f"{collection}/{spec['segment']}{path[len(collection) :]}"]
    return []


def walk(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    """Every (JSON pointer, value) in the document."""
    yield where, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{where}/{str(key).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{where}/{index}")


def resolve(doc: Mapping[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref}: only references within the document are used"
    node: Any = doc
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise AssertionError(f"{ref} does not resolve: no {token!r}")
    return node


def deref(doc: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(doc, node["$ref"])
    return node


def validator(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator whose #/components/... references resolve in the document."""
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(dict(doc), default_specification=DRAFT202012)
    )
    rebased = json.loads(json.dumps(schema).replace('"#/components/', f'"{DOCUMENT_URI}#/components/'))
    return Draft202012Validator(
        rebased, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def schema_errors(doc: Mapping[str, Any], schema: Mapping[str, Any], instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator(doc, schema).iter_errors(instance)
    ]


def component(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


# --- (a) a valid OpenAPI 3.1 document ----------------------------------------------------------


def test_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert str(doc.get("openapi", "")).startswith("3.1."), "the document must be OpenAPI 3.1"
    validate(doc, cls=OpenAPIV31SpecValidator)


def test_servers_are_the_root_and_beta(doc: dict[str, Any]) -> None:
    assert [s["url"] for s in doc["servers"]] == ["/", BETA]
    beta_paths = [path for path in doc["paths"] if path == BETA or path.startswith(BETA + "/")]
    assert not beta_paths, f"write paths without the {BETA} prefix; the servers add it: {beta_paths}"


# --- (b) the document and the routes describe the same operations ------------------------------


def test_every_route_is_documented_and_every_documented_operation_is_routed(doc: dict[str, Any]) -> None:
    routed = set(routed_operations(ROUTES))
    documented = set(documented_operations(doc))
    undocumented = sorted(routed - documented)
    unrouted = sorted(documented - routed)
    assert not undocumented, f"routed but not in {DOCUMENT.name}: {undocumented}"
    assert not unrouted, f"in {DOCUMENT.name} but not routed: {unrouted}"


def test_versioned_paths_serve_the_same_endpoints_and_win_over_ids(doc: dict[str, Any]) -> None:
    routed = routed_operations(ROUTES)
    pairs = [
        ((m, path), (m, v1)) for m, path in routed_operations(BETA_ROUTES) for v1 in versioned(doc, path)
    ]
    assert len(pairs) == 25, pairs  # triggers 5, subscriptions 12, invocations 8
    for beta, v1 in pairs:
        for prefix in ("", BETA):
            served = (v1[0], prefix + v1[1])
            assert routed.get(served) is routed[beta], f"{served} routes elsewhere than {beta}"
    router = Router(routes=ROUTES)
    for method, path in [("GET", "/triggers/v1"), ("GET", "/trigger-invocations/v1/status")]:
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        route = next(r for r in router.routes if r.matches(scope)[0] is Match.FULL)
        assert isinstance(route, Route) and route.path == path, (path, route)


def test_the_api_is_served_at_the_root_and_under_beta() -> None:
    routed = routed_operations(ROUTES)
    api = routed_operations(API_ROUTES)
    assert api, "no API routes"
    for method, path in api:
        for served in (path, BETA + path):
            assert (method, served) in routed, f"{method} {served} is not routed"
            assert routed[method, served] is api[method, path], f"{method} {served} routes elsewhere"


def test_operation_ids_are_unique_and_sailpoints_where_sailpoint_has_one(doc: dict[str, Any]) -> None:
    documented = documented_operations(doc)
    ids: dict[str, tuple[str, str]] = {}
    for item in {(d.method, d.path): d for d in documented.values()}.values():
        operation_id = item.operation.get("operationId")
        assert operation_id, f"{item.method.upper()} {item.path} has no operationId"
        assert operation_id not in ids, f"operationId {operation_id} is used twice"
        ids[operation_id] = (item.method.upper(), item.path)
        assert item.operation.get("summary"), f"{operation_id} has no summary"
    for (method, path), expected in SAILPOINT_OPERATION_IDS.items():
        assert ids.get(expected) == (method, path), f"{method} {path} must have operationId {expected}"


# --- (c) security as the code enforces it ------------------------------------------------------


def test_security_matches_the_requires_decorator(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http"
    assert schemes["bearerAuth"]["scheme"].lower() == "bearer"
    documented = documented_operations(doc)
    problems = []
    for (method, path), endpoint in sorted(routed_operations(ROUTES).items()):
        operation = documented[method, path].operation
        name = f"{method} {path}"
        if "security" not in operation:
            problems.append(f"{name}: declare security explicitly (bearerAuth, or [] when open)")
            continue
        scopes: Sequence[str] | None = getattr(endpoint, "required_scopes", None)
        if scopes is None:
            if operation["security"] != []:
                problems.append(f"{name}: needs no token, so declare security: []")
            continue
        # requires(*any_of): one alternative security requirement per accepted scope.
        declared = {
            (scheme, frozenset(required))
            for requirement in operation["security"]
            for scheme, required in requirement.items()
        }
        expected = {("bearerAuth", frozenset({scope})) for scope in scopes}
        if declared != expected:
            problems.append(f"{name}: security should be one bearerAuth requirement per scope of {scopes}")
        # 429: every request with a token counts against its client's rate limit.
        missing = {"401", "403", "429"} - set(operation["responses"])
        if missing:
            problems.append(f"{name}: a token-protected operation must document {sorted(missing)}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/oauth/token", "post"),
        ("/trigger-invocations/{id}/complete", "post"),
        ("/trigger-invocations/{id}/heartbeat", "post"),
    ],
)
def test_secret_checks_document_their_lockout(doc: dict[str, Any], path: str, method: str) -> None:
    response = deref(doc, doc["paths"][path][method]["responses"].get("429"))
    assert response is not None, f"{method.upper()} {path} locks out repeated wrong secrets: document 429"
    assert "Retry-After" in response["headers"], f"{method.upper()} {path}: 429 says when to retry"


# --- (d) references resolve, and every component is used --------------------------------------


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    refs = [
        (where, value["$ref"]) for where, value in walk(doc) if isinstance(value, dict) and "$ref" in value
    ]
    assert refs
    for where, ref in refs:
        assert isinstance(ref, str), f"{where}: $ref must be a string"
        resolve(doc, ref)


def test_every_component_is_used(doc: dict[str, Any]) -> None:
    refs = {value["$ref"] for _, value in walk(doc) if isinstance(value, dict) and "$ref" in value}
    used_schemes = {
        scheme
        for _, value in walk(doc)
        if isinstance(value, dict) and "security" in value and isinstance(value["security"], list)
        for requirement in value["security"]
        for scheme in requirement
    }
    unused = []
    for kind, items in doc["components"].items():
        for name in items:
            used = (
                name in used_schemes if kind == "securitySchemes" else f"#/components/{kind}/{name}" in refs
            )
            if not used:
                unused.append(f"components/{kind}/{name}")
    assert not unused, f"unused components: {unused}"


# --- responses, parameters and bodies ----------------------------------------------------------


def test_bodies_document_their_failures(doc: dict[str, Any]) -> None:
    problems = []
    for item in documented_operations(doc).values():
        name = f"{item.method.upper()} {item.path}"
        statuses = set(item.operation["responses"])
        for status in statuses:
            if status[0] in "45":
                assert int(status) in DETAIL_CODES, f"{name}: {status} is not an error the API produces"
        if "431" not in statuses:
            problems.append(f"{name}: the server refuses headers over 16 KiB on every path: document 431")
        body = item.operation.get("requestBody")
        if body is None:
            continue
        body = deref(doc, body)
        if "413" not in statuses:
            problems.append(f"{name}: every body can be too large: document 413")
        if any("json" in media for media in body["content"]) and "415" not in statuses:
            problems.append(f"{name}: a JSON body is refused with 415 when sent as something else")
        for media, content in body["content"].items():
            if "schema" not in content:
                problems.append(f"{name}: {media} has no schema")
    assert not problems, "\n".join(problems)


def test_request_examples_match_their_schemas(doc: dict[str, Any]) -> None:
    checked = 0
    for item in documented_operations(doc).values():
        body = deref(doc, item.operation.get("requestBody", {}))
        for media, content in body.get("content", {}).items():
            if "example" in content:
                errors = schema_errors(doc, content["schema"], content["example"])
                assert not errors, f"{item.method.upper()} {item.path} {media} example: {errors}"
                checked += 1
                model = _request_model(content["schema"])
                if model is not None:
                    model.model_validate(content["example"])
    assert checked


def _request_model(schema: Mapping[str, Any]) -> type[BaseModel] | None:
    ref = schema.get("$ref") or next((s["$ref"] for s in schema.get("allOf", []) if "$ref" in s), "")
    return REQUEST_MODELS.get(str(ref).rpartition("/")[2])


# Each list operation's filters and sorters, as the use case behind it declares them.
LISTABLES = {
    "/api-clients": api_clients.LISTABLE,
    "/triggers": triggers.LISTABLE,
    "/trigger-subscriptions": subscriptions.LISTABLE,
    "/trigger-invocations/status": statuses.LISTABLE,
}


def test_list_operations_take_the_list_parameters_and_filters_match_the_code(doc: dict[str, Any]) -> None:
    documented = documented_operations(doc)
    listed = set()
    for key in routed_operations(ROUTES):
        item = documented[key]
        name = f"{key[0]} {key[1]}"
        params = {p["name"]: p for p in (deref(doc, p) for p in item.operation.get("parameters", []))}
        if "filters" not in params:
            continue
        listable = LISTABLES.get(item.path)
        assert listable is not None, f"{name}: no use case's LISTABLE is known for it"
        listed.add(item.path)
        assert {"filters", "sorters", "limit", "offset", "count"} <= set(params), name
        assert "X-Total-Count" in item.operation["responses"]["200"].get("headers", {}), name
        limit = params["limit"]["schema"]
        assert (limit["minimum"], limit["maximum"]) == (0, 250), f"{name}: limit is 0..250"
        assert params["sorters"].get("x-sortable") == list(listable.sortable), f"{name}: x-sortable differs"
        declared = {field: frozenset(ops) for field, ops in params["filters"].get("x-filterable", {}).items()}
        assert declared == dict(listable.filterable), f"{name}: x-filterable differs from the use case's"
        for field, ops in listable.filterable.items():
            assert f"`{field}` ({', '.join(f'`{op}`' for op in sorted(ops))})" in " ".join(
                params["filters"]["description"].split()
            ), f"{name}: the filters description should list {field} with {sorted(ops)}"
    assert listed == set(LISTABLES)


def test_wait_seconds_is_0_to_30(doc: dict[str, Any]) -> None:
    from gateway.api.invocations import MAX_WAIT_SECONDS

    operation = doc["paths"]["/trigger-invocations/{id}/status"]["get"]
    (wait,) = [p for p in operation["parameters"] if p["name"] == "waitSeconds"]
    assert wait["schema"]["type"] == "number"
    assert (wait["schema"]["minimum"], wait["schema"]["maximum"]) == (0, MAX_WAIT_SECONDS)


# --- the wire format: request models and response builders -------------------------------------


@pytest.mark.parametrize("name", sorted(REQUEST_MODELS))
def test_request_schema_matches_its_model(doc: dict[str, Any], name: str) -> None:
    model = REQUEST_MODELS[name]
    schema = doc["components"]["schemas"][name]
    assert set(schema["properties"]) == set(model.model_fields), f"{name}: properties differ from {model}"
    required = {field for field, info in model.model_fields.items() if info.is_required()}
    documented_required = set(schema.get("required", []))
    assert documented_required <= required, f"{name}: documents as required what the model does not"
    assert required - documented_required == NOT_REQUIRED_IN_DOCUMENT.get(name, set()), name
    for field, info in model.model_fields.items():
        if info.is_required():
            continue
        default = info.get_default(call_default_factory=True)
        if default is not None:
            documented = schema["properties"][field].get("default")
            assert documented == default, f"{name}.{field}: default is {default!r}, documented {documented!r}"


NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def _trigger(**run_options: Any) -> Trigger:
    trigger = Trigger(
        id="idn:test",
        name="Test",
        type="REQUEST_RESPONSE",
        description=None,
        input_schema={"type": "object"},
        example_input={"a": 1},
        output_schema=None,
        example_output=None,
        created=NOW,
    )
    if run_options:
        # Stored as an admin defines them: through the request model.
        spec = schemas.TriggerIn.model_validate(
            {"id": trigger.id, "name": trigger.name, "type": trigger.type, **run_options}
        )
        triggers.apply(trigger, spec)
    return trigger


def _subscription(auth_type: str, **values: Any) -> Subscription:
    fields: dict[str, Any] = {
        "id": "sub-1",
        "trigger_id": "idn:test",
        "name": "Sub",
        "description": None,
        "enabled": True,
        "response_deadline": "PT1H",
        "filter": "$[?($.a)]",
        "url": "https://subscriber.example/hook",
        "dispatch_mode": "ASYNC",
        "auth_type": auth_type,
        "basic_user": "user" if auth_type == "BASIC_AUTH" else None,
        "credential": None if auth_type == "NO_AUTH" else "encrypted",
        "created": NOW,
        "modified": NOW,
        **values,
    }
    return Subscription(**fields)


def _scheduled_subscription(paused: bool) -> Subscription:
    return _subscription(
        "NO_AUTH",
        options=["USERS", "GROUPS"],
        debounce=True,
        # A trigger's named schedule when running; a paused custom cron.
        schedule_name=None if paused else "hourly",
        schedule_cron="0 * * * *",
        schedule_timezone="Europe/Berlin",
        schedule_tenant_id="acme",
        schedule_paused=paused,
        next_fire_at=None if paused else NOW + timedelta(hours=1),
        webhook_nonce="nonce",
    )


def _invocation(status: str, **values: Any) -> Invocation:
    fields: dict[str, Any] = {
        "id": "inv-1",
        "trigger_id": "idn:test",
        "trigger_type": "REQUEST_RESPONSE",
        "subscription_id": "sub-1",
        "subscription_name": "Sub",
        "dispatch_mode": "ASYNC",
        "type": "REAL_TIME",
        "status": status,
        "input": {"a": 1},
        "content_json": {"k": "v"},
        "attempts": 1,
        "created": NOW,
        "deadline": NOW + timedelta(hours=1),
        "queued_at": NOW,
        "completed": None,
        **values,
    }
    return Invocation(**fields)


def _attempt(
    *,
    status_code: int | None = None,
    error: str | None = "the subscriber answered HTTP 503",
    excerpt: str | None = None,
    duration_ms: int | None = 120,
) -> DeliveryAttempt:
    return DeliveryAttempt(
        id=1,
        invocation_id="inv-1",
        attempt=1,
        started=NOW,
        duration_ms=duration_ms,
        status_code=status_code,
        error=error,
        response_excerpt=excerpt,
    )


def _api_client() -> ApiClient:
    return ApiClient(
        client_id="ci", secret_hash="x", scopes="invocations:start invocations:read", created=NOW
    )


def _error_body() -> Any:
    request = Request(
        {"type": "http", "method": "GET", "path": "/", "headers": [], "state": {"tracking_id": "t"}}
    )
    response = error_response(request, ApiError("broken", causes=["a: b"], status=400))
    return json.loads(bytes(response.body))


RUN_OPTIONS: dict[str, Any] = {
    "options": ["USERS", "GROUPS"],
    "tenantIdPath": "$.tenant",
    "schedules": [{"name": "hourly", "cron": "0 * * * *"}],
    "customSchedules": True,
    "schedulesPausedByDefault": True,
}

RESPONSES: list[tuple[str, str, Callable[[], Any]]] = [
    ("Trigger", "trigger", lambda: schemas.trigger_out(_trigger())),
    ("Trigger", "run options", lambda: schemas.trigger_out(_trigger(**RUN_OPTIONS))),
    ("Subscription", "no auth", lambda: schemas.subscription_out(_subscription("NO_AUTH"), "Test")),
    ("Subscription", "basic auth", lambda: schemas.subscription_out(_subscription("BASIC_AUTH"), "Test")),
    ("Subscription", "bearer token", lambda: schemas.subscription_out(_subscription("BEARER_TOKEN"), None)),
    (
        "Subscription",
        "schedule and webhook",
        lambda: schemas.subscription_out(_scheduled_subscription(paused=False), "Test"),
    ),
    (
        "Subscription",
        "paused custom schedule",
        lambda: schemas.subscription_out(_scheduled_subscription(paused=True), "Test"),
    ),
    (
        "Subscription",
        "disabled by a 410 Gone",
        lambda: schemas.subscription_out(
            _subscription("NO_AUTH", enabled=False, disabled_reason="the subscriber answered 410 Gone"),
            "Test",
        ),
    ),
    ("Invocation", "invocation", lambda: schemas.invocation_out(_invocation("PENDING"), "secret")),
    ("InvocationStatus", "in flight", lambda: schemas.status_out(_invocation("AWAITING_CALLBACK"))),
    (
        "InvocationStatus",
        "completed",
        lambda: schemas.status_out(_invocation("COMPLETED", output={"ok": True}, completed=NOW)),
    ),
    (
        "InvocationStatus",
        "failed",
        lambda: schemas.status_out(_invocation("FAILED", error="HTTP 500", completed=NOW)),
    ),
    (
        "InvocationStatus",
        "waiting webhook",
        lambda: schemas.status_out(
            _invocation(
                "WAITING",
                source=Source.WEBHOOK,
                tenant_id="acme",
                headers={"content-type": "text/plain", "x-github-event": "push"},
                input={"body": "ping"},
            )
        ),
    ),
    (
        "InvocationStatus",
        "bundled into a run",
        lambda: schemas.status_out(
            _invocation("BUNDLED", source=Source.CRON, tenant_id="acme", run_id="inv-0", completed=NOW)
        ),
    ),
    (
        "InvocationStatus",
        "leading a manual run",
        lambda: schemas.status_out(
            _invocation("DISPATCHING", source=Source.MANUAL, tenant_id="acme", run_id="inv-1")
        ),
    ),
    (
        "InvocationStatus",
        "suppressed",
        lambda: schemas.status_out(
            _invocation(
                "SUPPRESSED",
                source=Source.API,
                option="USERS",
                chain=["inv-a", "inv-b"],
                error="suppressed: raised by the delivery of invocation inv-b",
                completed=NOW,
            )
        ),
    ),
    (
        "InvocationStatus",
        "retrying",
        lambda: schemas.status_out(
            _invocation(
                "RETRYING",
                trigger_type="FIRE_AND_FORGET",
                attempts=2,
                error="the subscriber answered HTTP 503",
                next_attempt=NOW + timedelta(minutes=5),
            )
        ),
    ),
    (
        "InvocationStatus",
        "replayed",
        lambda: schemas.status_out(_invocation("PENDING", attempts=3, attempts_at_replay=3)),
    ),
    ("DeliveryAttempt", "answered", lambda: schemas.attempt_out(_attempt(status_code=503, excerpt="busy"))),
    ("DeliveryAttempt", "succeeded", lambda: schemas.attempt_out(_attempt(status_code=200, error=None))),
    (
        "DeliveryAttempt",
        "cut off by a crash",
        lambda: schemas.attempt_out(_attempt(duration_ms=None, error="the attempt was cut off")),
    ),
    ("ApiClient", "client", lambda: schemas.api_client_out(_api_client())),
    ("ErrorResponse", "error", _error_body),
]


def shape_problems(
    doc: Mapping[str, Any], schema: Any, value: Any, where: str, exact: bool = True
) -> list[str]:
    """Where an object in ``value`` has a field its schema (followed through $ref, oneOf and
    array items) does not document or, with ``exact``, lacks one it does. Objects whose schema
    lists no properties (inputs, outputs, headers) are free-form and not compared; one whose
    schema allows additionalProperties may have fields of its own."""
    schema = deref(doc, schema)
    if "oneOf" in schema:
        matching = [branch for branch in schema["oneOf"] if not schema_errors(doc, branch, value)]
        return [p for branch in matching for p in shape_problems(doc, branch, value, where, exact)]
    problems = []
    if isinstance(value, dict) and "properties" in schema:
        documented = set(schema["properties"])
        if set(value) - documented and not schema.get("additionalProperties", False):
            problems.append(f"{where}: {sorted(set(value) - documented)} are not documented")
        if exact and documented - set(value):
            problems.append(f"{where}: {sorted(documented - set(value))} are documented but not sent")
        for field in set(value) & documented:
            problems += shape_problems(
                doc, schema["properties"][field], value[field], f"{where}.{field}", exact
            )
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += shape_problems(doc, schema["items"], item, f"{where}[{index}]", exact)
    return problems


@pytest.mark.parametrize(("name", "case", "build"), RESPONSES, ids=[f"{n}-{c}" for n, c, _ in RESPONSES])
def test_response_builders_produce_their_documented_schema(
    doc: dict[str, Any], name: str, case: str, build: Callable[[], Any]
) -> None:
    body = build()
    schema = doc["components"]["schemas"][name]
    assert set(body) == set(schema["properties"]), f"{name} ({case}): fields differ from the document"
    assert not schema_errors(doc, component(name), body), schema_errors(doc, component(name), body)
    problems = shape_problems(doc, component(name), body, name)
    assert not problems, f"{name} ({case}): {problems}"


def test_enums_match_the_code(doc: dict[str, Any]) -> None:
    components = doc["components"]["schemas"]
    documented = {
        "InvocationState": set(components["InvocationState"]["enum"]),
        "InvocationSource": set(components["InvocationSource"]["enum"]),
        "RunOutcome.phase": set(components["RunOutcome"]["properties"]["phase"]["enum"]),
    }
    in_code = {
        "InvocationState": {s.value for s in Status},
        "InvocationSource": {s.value for s in Source},
        "RunOutcome.phase": set(RUN_PHASES.values()),
    }
    for name, values in in_code.items():
        assert documented[name] == values, (
            f"{name}: the document has {sorted(documented[name])}, not {sorted(values)}"
        )
    # The documented terminal states are the code's.
    described = " ".join(doc["paths"]["/trigger-invocations/{id}/status"]["get"]["description"].split())
    terminal = ", ".join(f"`{s.value}`" for s in Status if s.terminal)
    assert f"terminal state ({terminal})" in described, f"getInvocationStatus should list {terminal}"


# --- what a subscriber receives ----------------------------------------------------------------


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = database.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.mark.parametrize("trigger_type", ["REQUEST_RESPONSE", "FIRE_AND_FORGET"])
async def test_deliveries_carry_the_documented_metadata_and_headers(
    doc: dict[str, Any], engine: AsyncEngine, trigger_type: str
) -> None:
    keys = Keys(["k" * 32])
    trigger = _trigger(**RUN_OPTIONS)
    trigger.type = trigger_type
    sub = _subscription("BEARER_TOKEN", debounce=True, signing_secret=keys.encrypt(signing.new_secret()))
    sub.credential = keys.encrypt("token")
    common: dict[str, Any] = {"trigger_type": trigger_type, "tenant_id": "acme"}
    # A run led by a webhook call and carrying a scheduled trigger, after a completed run.
    earlier = _invocation("COMPLETED", id="inv-0", output={"ok": True}, completed=NOW, **common)
    earlier.dispatched_at = NOW
    later = NOW + timedelta(minutes=5)
    leader = _invocation(
        "DISPATCHING",
        id="inv-1",
        source=Source.WEBHOOK,
        headers={"content-type": "application/json"},
        run_id="inv-1",
        created=later,
        **common,
    )
    bundled = _invocation(
        "BUNDLED", id="inv-2", source=Source.CRON, run_id="inv-1", created=later, completed=later, **common
    )
    async with database.sessionmaker(engine)() as session:
        session.add_all([trigger, sub, earlier, leader, bundled])
        await session.commit()
    run = await runs.context(InvocationStore(engine), leader)
    delivery = deliveries.request_for(
        leader, sub, run, keys=keys, public_url=Settings().public_url, now=utcnow()
    )

    operation = doc["webhooks"]["invocationDelivery"]["post"]
    body = json.loads(delivery.body)
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert not schema_errors(doc, schema, body), schema_errors(doc, schema, body)
    exact = trigger_type == "REQUEST_RESPONSE"  # fire-and-forget has no callbackURL or secret
    problems = shape_problems(doc, schema, body, "delivery", exact)
    assert not problems, problems
    assert [t["invocationId"] for t in body["_metadata"]["runTriggers"]] == ["inv-1", "inv-2"]
    assert body["_metadata"]["lastRun"] is not None

    # Every header is a documented parameter, save what HTTP and the security schemes cover.
    parameters = {p["name"].lower(): p for p in operation["parameters"] if p["in"] == "header"}
    sent = set(delivery.headers) - {"content-type", "user-agent", "authorization"}
    assert sent == set(parameters), f"delivery headers {sorted(sent)} differ from the document"
    for name, parameter in parameters.items():
        errors = schema_errors(doc, parameter["schema"], delivery.headers[name])
        assert not errors, f"header {name}: {errors}"
    # The header a subscriber sends back is the one start, manual runs and webhooks document.
    for path in ("/trigger-invocations/start", "/trigger-subscriptions/{id}/run", "/hooks/{token}"):
        (guard,) = [
            p
            for p in (deref(doc, p) for p in doc["paths"][path]["post"]["parameters"])
            if p["in"] == "header" and p["name"] not in ("Prefer", "Idempotency-Key")
        ]
        assert guard["name"].lower() == deliveries.INVOCATION_HEADER in parameters, path
        assert not schema_errors(doc, guard["schema"], delivery.headers[deliveries.INVOCATION_HEADER])
