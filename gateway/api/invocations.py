"""/trigger-invocations: raise a trigger, test it, complete it, and read statuses."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

from starlette.requests import Request
from starlette.responses import Response

from gateway.adapters import limiter
from gateway.api.auth import requires
from gateway.api.requests import body, caused_by, idempotency_key, list_query, runtime
from gateway.api.responses import JSONResponse, page
from gateway.domain.clock import timestamp
from gateway.domain.documents import (
    CompleteInvocationIn,
    HeartbeatIn,
    Raised,
    StartInvocationIn,
    TestInvocationIn,
    attempt_out,
    invocation_out,
    status_out,
)
from gateway.domain.errors import ApiError, Forbidden, Invalid, TooManyRequests
from gateway.runtime import Runtime
from gateway.telemetry import metrics
from gateway.usecases import callbacks, heartbeats, idempotency, raise_trigger, replay, statuses

MAX_WAIT_SECONDS = 30
log = logging.getLogger("gateway.start")


def _invocations_response(rt: Runtime, created: Sequence[Raised], headers: Mapping[str, str]) -> Response:
    if not created:
        return Response(status_code=204, headers=headers)
    documents = [invocation_out(inv, rt.keys.callback_secret(inv.id)) for inv in created]
    return JSONResponse(documents, headers=headers)


async def _once(
    request: Request, endpoint: str, create: Callable[[], Awaitable[Sequence[Raised]]]
) -> tuple[Sequence[Raised], dict[str, str]]:
    """What ``create`` creates, or for a repeat of a request with an Idempotency-Key what the
    first one created, and a header that says so."""
    key = idempotency_key(request)
    if key is None:
        return await create(), {}
    asked = idempotency.fingerprint(endpoint, await request.body())
    rt, client_id = runtime(request), request.state.client_id
    created, replayed = await idempotency.once(rt, client_id, key, asked, create)
    return created, {"Idempotent-Replayed": "true"} if replayed else {}


@requires("invocations:start")
async def start_invocation(request: Request) -> Response:
    wait = preferred_wait(request.headers.getlist("prefer"))  # refused before anything is created
    if wait is not None and "invocations:read" not in request.state.scopes:
        raise Forbidden(
            "Prefer: wait answers with the invocations' statuses, which needs the invocations:read "
            "scope; start without it, or with a client that has that scope"
        )
    spec = await body(request, StartInvocationIn)
    rt = runtime(request)
    cause = caused_by(request)
    created, headers = await _once(
        request,
        "start",
        lambda: raise_trigger.start(
            rt,
            spec.triggerId,
            spec.input,
            spec.contentJson,
            tenant_id=spec.tenantId,
            option=spec.option,
            caused_by=cause,
        ),
    )
    if wait is None or not created:
        return _invocations_response(rt, created, headers)
    # RFC 7240: the answer itself, once every invocation is final or the wait is over.
    try:
        ended = await statuses.get_all(rt, [inv.id for inv in created], wait)
    except Exception:
        # They are committed: answer with their ids rather than a 500 a producer would retry.
        log.warning("reading the statuses a start waited for failed; answering without them", exc_info=True)
        return _invocations_response(rt, created, headers)
    applied = {**headers, "Preference-Applied": f"wait={wait}"}
    return JSONResponse([status_out(inv) for inv in ended], headers=applied)


def preferred_wait(headers: list[str]) -> int | None:
    """The seconds of a ``Prefer: wait=N`` header (RFC 7240), or None without one."""
    for header in headers:
        for preference in header.split(","):
            name, _, value = preference.split(";", 1)[0].partition("=")
            if name.strip().lower() != "wait":
                continue
            value = value.strip().strip('"')
            # Two digits at most: int() of thousands of them is a ValueError, and costly.
            whole = value.isascii() and value.isdigit() and len(value) <= 2
            if not (whole and int(value) <= MAX_WAIT_SECONDS):
                raise Invalid(
                    f"Prefer: wait must be whole seconds from 0 to {MAX_WAIT_SECONDS}, not {value[:20]!r}"
                )
            return int(value)
    return None


@requires("triggers:manage")
async def test_invocation(request: Request) -> Response:
    spec = await body(request, TestInvocationIn)
    rt = runtime(request)
    created, headers = await _once(
        request,
        "test",
        lambda: raise_trigger.start(
            rt, spec.triggerId, spec.input, spec.contentJson, test=True, subscription_ids=spec.subscriptionIds
        ),
    )
    return _invocations_response(rt, created, headers)


async def complete_invocation(request: Request) -> Response:
    # No access token: the subscriber proves itself with the invocation's secret.
    try:
        spec = await body(request, CompleteInvocationIn)
        rt = runtime(request)
        async with _secret_checked(request) as invocation_id:
            await callbacks.complete(rt, invocation_id, spec.secret, spec.output, spec.error)
    except ApiError as refusal:
        metrics.callback(refusal)
        raise
    metrics.callback(None)
    return Response(status_code=204)


async def heartbeat(request: Request) -> Response:
    # As a callback: the invocation's secret, and the same limits on wrong ones.
    spec = await body(request, HeartbeatIn)
    rt = runtime(request)
    async with _secret_checked(request) as invocation_id:
        deadline = await heartbeats.beat(rt, invocation_id, spec.secret, spec.extendBy, spec.progress)
    return JSONResponse({"deadline": timestamp(deadline)})


@asynccontextmanager
async def _secret_checked(request: Request) -> AsyncIterator[str]:
    """The invocation id, for a request that proves itself with the invocation's secret.

    After too many wrong secrets for one invocation from one address (or, a hundred times
    as many, from all addresses), refuse without checking the secret until the window
    passes: guessing an HMAC is hopeless anyway, but a leaked invocation id must not buy
    unlimited guesses, nor a storm unlimited database reads, and a flood from elsewhere must
    not lock out the real subscriber. Only a wrong secret (403) stays counted."""
    rt = runtime(request)
    invocation_id = request.path_params["id"]
    address = limiter.address(request.client.host if request.client else "unknown")
    settings = rt.settings
    counted = [
        (limiter.key("callback-address", f"{invocation_id} {address}"), settings.callback_failure_limit),
        (limiter.key("callback", invocation_id), settings.callback_invocation_failure_limit),
    ]
    async with limiter.counted_attempts(rt.limiter, counted, settings.failure_window, Forbidden) as wait:
        if wait > 0:
            raise TooManyRequests(f"too many wrong secrets for invocation {invocation_id}", wait)
        yield invocation_id


@requires("invocations:read")
async def list_statuses(request: Request) -> Response:
    rows, total = await statuses.list_page(runtime(request), list_query(request, statuses.LISTABLE))
    return page([status_out(inv) for inv in rows], total)


@requires("invocations:read")
async def get_status(request: Request) -> Response:
    wait = _wait_seconds(request.query_params.get("waitSeconds"))
    inv = await statuses.get(runtime(request), request.path_params["id"], wait)
    return JSONResponse(status_out(inv))


@requires("invocations:read")
async def list_attempts(request: Request) -> Response:
    query = list_query(request, statuses.ATTEMPTS_LISTABLE)
    logged, total = await statuses.attempts(runtime(request), request.path_params["id"], query)
    return page([attempt_out(attempt) for attempt in logged], total)


@requires("invocations:start")
async def replay_invocation(request: Request) -> Response:
    inv = await replay.invocation(runtime(request), request.path_params["id"])
    return JSONResponse(status_out(inv), status_code=202)


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
