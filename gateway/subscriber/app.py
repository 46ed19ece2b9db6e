"""``subscriber_app``: an async function of a Delivery, served as a subscriber.

The handler returns the output (answered at once), or ``LATER`` / ``later(work)``: answered
"later" (200 ``{}`` to an ASYNC delivery, 202 to a DYNAMIC one, as the gateway's answer table
reads them), the invocation then completed by a callback. For an ASYNC delivery an output
returned at once is sent as that callback, so one handler serves every mode.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.subscriber.callbacks import complete, fail
from gateway.subscriber.delivery import Delivery, InvalidDelivery, parse
from gateway.subscriber.signatures import TOLERANCE, SignatureError, verify

log = logging.getLogger("gateway.subscriber")


@dataclass(frozen=True, eq=False)
class Later:
    """The answer comes by callback. ``work``, if any, is awaited once the subscriber has
    answered: its result completes the invocation, an exception fails it."""

    work: Awaitable[Any] | None = None

    def __repr__(self) -> str:
        return "LATER" if self.work is None else f"later({self.work!r})"


LATER = Later()  # the handler completes the invocation itself, e.g. from a task it started


def later(work: Awaitable[Any]) -> Later:
    return Later(work)


Handler = Callable[[Delivery], Awaitable[Any]]


def subscriber_app(
    handler: Handler, *, secrets: str | Sequence[str] | None, tolerance: timedelta = TOLERANCE
) -> Starlette:
    """A Starlette app answering POSTs on any path. ``secrets``: the subscription's signing
    secrets (401 for a delivery none of them signed); None, explicitly, verifies nothing."""
    if secrets is not None and not secrets:
        raise ValueError("no signing secret: pass the subscription's signingSecret, or None")
    running: set[asyncio.Task[None]] = set()  # referenced until done: the loop keeps weak refs

    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            if secrets is not None:
                verify(request.headers, body, secrets, tolerance=tolerance)
            delivery = parse(body)
        except SignatureError as exc:
            return JSONResponse({"error": f"signature refused: {exc}"}, status_code=401)
        except InvalidDelivery as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        result = await handler(delivery)
        if delivery.fire_and_forget:
            return JSONResponse({})
        if delivery.mode == "async" and not isinstance(result, Later):
            result = later(_ready(result))
        if not isinstance(result, Later):
            return JSONResponse(result)
        if delivery.mode == "sync":
            log.error("a SYNC delivery needs its output now: LATER suits ASYNC and DYNAMIC subscriptions")
            return JSONResponse({"error": "this subscriber answers SYNC deliveries later"}, status_code=422)
        if result.work is not None:
            task = asyncio.create_task(_finish(delivery, result.work))
            running.add(task)
            task.add_done_callback(running.discard)
        return JSONResponse({}, status_code=202 if delivery.mode == "dynamic" else 200)

    return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])


async def _ready(value: Any) -> Any:
    return value


async def _finish(delivery: Delivery, work: Awaitable[Any]) -> None:
    try:
        output = await work
    except Exception as exc:
        log.exception("invocation %s: the work failed", delivery.invocation_id)
        await _quietly(fail(delivery, error=str(exc) or type(exc).__name__))
    else:
        await _quietly(complete(delivery, output))


async def _quietly(call: Awaitable[None]) -> None:
    # A task's exception would go unseen: log it (the invocation expires at its deadline).
    try:
        await call
    except Exception:
        log.exception("calling the gateway back failed")
