"""/trigger-subscriptions: subscribe, change, unsubscribe, and check a filter."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.auth import requires
from gateway.api.requests import body, caused_by, list_query, read_json, runtime
from gateway.api.responses import NO_STORE, JSONResponse, page
from gateway.domain.documents import (
    ReplayIn,
    RunIn,
    SubscriptionIn,
    ValidateFilterIn,
    invocation_out,
    subscription_out,
)
from gateway.domain.jsonpath_filter import validate_filter
from gateway.domain.model import Source, Status
from gateway.usecases import raise_trigger, replay, subscriptions, webhooks

MANAGE = "triggers:manage"


@requires(MANAGE)
async def list_subscriptions(request: Request) -> Response:
    named, total = await subscriptions.list_page(
        runtime(request), list_query(request, subscriptions.LISTABLE)
    )
    return page([subscription_out(*n) for n in named], total)


@requires(MANAGE)
async def create_subscription(request: Request) -> Response:
    spec = await body(request, SubscriptionIn)
    sub, trigger_name, secret = await subscriptions.create(runtime(request), spec)
    return _with_secret(subscription_out(sub, trigger_name), secret, status=201)


@requires(MANAGE)
async def rotate_signing_secret(request: Request) -> Response:
    sub, trigger_name, secret = await subscriptions.rotate_secret(runtime(request), request.path_params["id"])
    return _with_secret(subscription_out(sub, trigger_name), secret, status=200)


def _with_secret(document: dict[str, Any], secret: str, *, status: int) -> Response:
    # The signing secret is shown in this answer only; it is stored encrypted.
    return JSONResponse({**document, "signingSecret": secret}, status_code=status, headers=NO_STORE)


@requires(MANAGE)
async def get_subscription(request: Request) -> Response:
    sub, trigger_name = await subscriptions.get(runtime(request), request.path_params["id"])
    return JSONResponse(subscription_out(sub, trigger_name))


@requires(MANAGE)
async def replace_subscription(request: Request) -> Response:
    spec = await body(request, SubscriptionIn)
    sub, name = await subscriptions.replace(runtime(request), request.path_params["id"], spec)
    return JSONResponse(subscription_out(sub, name))


@requires(MANAGE)
async def patch_subscription(request: Request) -> Response:
    operations = await read_json(request)
    sub, name = await subscriptions.patch(runtime(request), request.path_params["id"], operations)
    return JSONResponse(subscription_out(sub, name))


@requires(MANAGE)
async def delete_subscription(request: Request) -> Response:
    await subscriptions.delete(runtime(request), request.path_params["id"])
    return Response(status_code=204)


@requires("invocations:start")
async def run_subscription(request: Request) -> Response:
    """The "sync now" button: one run of this subscription, of source manual."""
    spec = await body(request, RunIn) if await request.body() else RunIn()
    rt = runtime(request)
    started = await raise_trigger.raise_run(
        rt,
        request.path_params["id"],
        Source.MANUAL,
        spec.payload,
        tenant_id=spec.tenantId,
        caused_by=caused_by(request),
    )
    return JSONResponse(invocation_out(started, rt.keys.callback_secret(started.id)), status_code=202)


@requires("invocations:start")
async def replay_subscription(request: Request) -> Response:
    """Deliver again every invocation of the subscription since a time, of the statuses named."""
    spec = await body(request, ReplayIn)
    statuses = {Status(name) for name in spec.statuses}
    replayed = await replay.subscription(runtime(request), request.path_params["id"], spec.since, statuses)
    return JSONResponse({"replayed": replayed}, status_code=202)


@requires(MANAGE)
async def issue_webhook(request: Request) -> Response:
    url = await webhooks.issue(runtime(request), request.path_params["id"])
    # The URL is a credential: shown in this answer only, never stored (only its nonce is).
    return JSONResponse({"url": url}, status_code=201, headers=NO_STORE)


@requires(MANAGE)
async def revoke_webhook(request: Request) -> Response:
    await webhooks.revoke(runtime(request), request.path_params["id"])
    return Response(status_code=204)


@requires(MANAGE)
async def validate_subscription_filter(request: Request) -> Response:
    spec = await body(request, ValidateFilterIn)
    valid, valid_path, path_exists = validate_filter(spec.filter, spec.input)
    return JSONResponse({"isValid": valid, "isValidJSONPath": valid_path, "isPathExist": path_exists})
