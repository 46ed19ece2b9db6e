"""/trigger-invocations: raise a trigger, test it, complete it, and read statuses."""

from __future__ import annotations

import asyncio
import contextlib

from sqlmodel import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import invocations, limits, starts
from gateway.api.common import body, caused_by, list_query, requires, run_list, runtime, total_header
from gateway.errors import Forbidden, Invalid, NotFound, TooManyRequests
from gateway.models import Invocation, Status
from gateway.runtime import Runtime
from gateway.schemas import (
    CompleteInvocationIn,
    StartInvocationIn,
    TestInvocationIn,
    invocation_out,
    status_out,
)

MAX_WAIT_SECONDS = 30
FILTERABLE = {
    "triggerId": frozenset({"eq", "in"}),
    "subscriptionId": frozenset({"eq", "in"}),
    "id": frozenset({"eq", "in"}),
    "type": frozenset({"eq"}),
    "status": frozenset({"eq", "in"}),
    "source": frozenset({"eq", "in"}),
    "tenantId": frozenset({"eq", "in"}),
    "runId": frozenset({"eq"}),
}
SORTABLE = ("triggerId", "subscriptionName", "created", "completed")
COLUMNS = {
    "id": Invocation.id,
    "triggerId": Invocation.trigger_id,
    "subscriptionId": Invocation.subscription_id,
    "subscriptionName": Invocation.subscription_name,
    "type": Invocation.type,
    "status": Invocation.status,
    "source": Invocation.source,
    "tenantId": Invocation.tenant_id,
    "runId": Invocation.run_id,
    "created": Invocation.created,
    "completed": Invocation.completed,
}


def _invocations_response(rt: Runtime, created: list[starts.Started]) -> Response:
    if not created:
        return Response(status_code=204)
    return JSONResponse([invocation_out(inv, rt.keys.callback_secret(inv.id)) for inv in created])


@requires("invocations:start")
async def start_invocation(request: Request) -> Response:
    spec = await body(request, StartInvocationIn)
    rt = runtime(request)
    created = await starts.start(
        rt,
        spec.triggerId,
        spec.input,
        spec.contentJson,
        tenant_id=spec.tenantId,
        option=spec.option,
        caused_by=caused_by(request),
    )
    return _invocations_response(rt, created)


@requires("triggers:manage")
async def test_invocation(request: Request) -> Response:
    spec = await body(request, TestInvocationIn)
    rt = runtime(request)
    created = await starts.start(
        rt, spec.triggerId, spec.input, spec.contentJson, test=True, subscription_ids=spec.subscriptionIds
    )
    return _invocations_response(rt, created)


async def complete_invocation(request: Request) -> Response:
    # No access token: the subscriber proves itself with the invocation's secret.
    spec = await body(request, CompleteInvocationIn)
    rt = runtime(request)
    invocation_id = request.path_params["id"]
    # After too many wrong secrets for one invocation, refuse without checking the secret
    # until the window passes: guessing an HMAC is hopeless anyway, but a leaked invocation
    # id must not buy unlimited guesses, nor a storm unlimited database reads. The cost is
    # that whoever floods an id delays its real callback; the right secret works again
    # after Retry-After. Each attempt is counted before the check, so concurrent guesses
    # cannot overshoot the limit; only a wrong secret (403) stays counted.
    key = limits.key("callback", invocation_id)
    limit, window = rt.settings.callback_failure_limit, rt.settings.failure_window
    wait = await rt.limiter.attempt(key, limit, window)
    if wait > 0:
        raise TooManyRequests(f"too many wrong secrets for invocation {invocation_id}", wait)
    wrong_secret = False
    try:
        await invocations.complete(rt, invocation_id, spec.secret, spec.output, spec.error)
    except Forbidden:
        wrong_secret = True
        raise
    finally:
        if not wrong_secret:
            await rt.limiter.forgive(key)
    return Response(status_code=204)


@requires("invocations:read")
async def list_statuses(request: Request) -> Response:
    spec = list_query(request, FILTERABLE, SORTABLE)
    async with runtime(request).sessions() as session:
        rows, total = await run_list(
            session, select(Invocation), spec, COLUMNS, [Invocation.created, Invocation.id]
        )
    return JSONResponse([status_out(inv) for inv in rows], headers=total_header(total))


@requires("invocations:read")
async def get_status(request: Request) -> Response:
    rt = runtime(request)
    invocation_id = request.path_params["id"]
    wait = _wait_seconds(request.query_params.get("waitSeconds"))
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + wait
    with rt.notifier.watch(invocation_id) as changed:
        while True:
            changed.clear()
            async with rt.sessions() as session:
                inv = await session.get(Invocation, invocation_id)
            if inv is None:
                raise NotFound(f"invocation {invocation_id} does not exist")
            remaining = give_up_at - loop.time()
            if Status(inv.status).terminal or remaining <= 0:
                return JSONResponse(status_out(inv))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=remaining)


def _wait_seconds(raw: str | None) -> float:
    if raw is None:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_WAIT_SECONDS:
        raise Invalid(f"waitSeconds must be a number from 0 to {MAX_WAIT_SECONDS}, not {raw!r}")
    return value
