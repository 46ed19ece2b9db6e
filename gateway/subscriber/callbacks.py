"""Calling the gateway back: complete or fail an invocation, or keep it alive with a heartbeat.

Each call is retried, with backoff, when no answer came (the connection failed or dropped):
completing is idempotent on the gateway's side (the same completion twice is accepted
twice), and a heartbeat only moves a deadline forward. An HTTP error is not retried: it is
raised as CallbackError with the gateway's message.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from typing import Any

import httpx

from gateway.subscriber.delivery import Delivery

RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)  # seconds before each further attempt
TIMEOUT = 10.0


class CallbackError(Exception):
    """The gateway refused the callback (403 wrong secret, 410 deadline passed, 400 output
    not matching the trigger's outputSchema, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


async def complete(delivery: Delivery, output: Any, *, client: httpx.AsyncClient | None = None) -> None:
    """Complete the invocation with ``output`` (ASYNC, or a DYNAMIC delivery answered later)."""
    await _post(client, _url(delivery, "complete"), {"secret": delivery.secret, "output": output})


async def fail(delivery: Delivery, error: str, *, client: httpx.AsyncClient | None = None) -> None:
    """End the invocation as FAILED (or with the trigger's fallbackOutput), saying why."""
    await _post(client, _url(delivery, "complete"), {"secret": delivery.secret, "error": error})


async def heartbeat(
    delivery: Delivery,
    *,
    extend_by: timedelta | str | None = None,
    progress: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> datetime:
    """Push the invocation's deadline ``extend_by`` from now (an ISO-8601 duration or a
    timedelta; by default the subscription's responseDeadline), noting ``progress``; the
    new deadline."""
    body: dict[str, Any] = {"secret": delivery.secret}
    if extend_by is not None:
        body["extendBy"] = extend_by if isinstance(extend_by, str) else _duration(extend_by)
    if progress is not None:
        body["progress"] = progress
    answer = await _post(client, _url(delivery, "heartbeat"), body)
    return datetime.fromisoformat(answer.json()["deadline"])


def _url(delivery: Delivery, action: str) -> str:
    if delivery.callback_url is None or delivery.secret is None:
        raise ValueError("a fire-and-forget delivery has no callback: nothing to complete")
    # callbackURL is .../trigger-invocations/{id}/complete; the heartbeat is its sibling.
    return delivery.callback_url.rsplit("/", 1)[0] + "/" + action


def _duration(span: timedelta) -> str:
    return f"PT{max(1, math.ceil(span.total_seconds()))}S"


async def _post(client: httpx.AsyncClient | None, url: str, body: dict[str, Any]) -> httpx.Response:
    if client is None:
        async with httpx.AsyncClient(timeout=TIMEOUT) as own:
            return await _post(own, url, body)
    for delay in (*RETRY_DELAYS, None):
        try:
            answer = await client.post(url, json=body)
            break
        except httpx.TransportError:
            if delay is None:
                raise
            await asyncio.sleep(delay)
    if answer.is_error:
        raise CallbackError(answer.status_code, _message(answer))
    return answer


def _message(answer: httpx.Response) -> str:
    """The first message of the API's error format, or the body as it came."""
    try:
        return str(answer.json()["messages"][0]["text"])
    except (ValueError, KeyError, IndexError, TypeError):
        return answer.text[:500] or answer.reason_phrase
