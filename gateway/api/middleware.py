"""Per-request plumbing: a trackingId (the caller's X-Request-Id when it is a safe token),
the body size limit, and one access log line."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.errors import INTERNAL_ERROR, error_response
from gateway.domain.errors import ApiError, Invalid, TooLarge
from gateway.telemetry import logs, traces

log = logging.getLogger("gateway.access")
# A webhook URL's last segment is its credential: never logged, whatever comes before it
# (//hooks/<token> reaches the same route).
WEBHOOK_PATH = re.compile(r"(/hooks/)[^/]+")


def loggable_path(path: str) -> str:
    return WEBHOOK_PATH.sub(r"\1<token>", path)


class RequestContext:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracking_id = _tracking_id(scope)
        scope.setdefault("state", {})["tracking_id"] = tracking_id
        with logs.about(trackingId=tracking_id), traces.caller_context(_trace_headers(scope)):
            await self._handle(scope, receive, send, tracking_id)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, tracking_id: str) -> None:
        started = time.perf_counter()
        status = 500
        responded = False
        limit = self.max_body_bytes
        too_large = TooLarge(f"the request body is larger than the limit of {limit} bytes")
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared.isdigit() and int(declared) > limit:
                raise too_large
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                headers = [*message.get("headers", []), (b"x-tracking-id", tracking_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
                # No text stored or compared in PostgreSQL may hold a NUL: refused here, once.
                refusal = Invalid("the request's path or query holds a NUL character (%00); remove it")
                await error_response(Request(scope), refusal)(scope, receive, send_with_id)
                return
            await self.app(scope, limited_receive, send_with_id)
        except Exception:
            # Unexpected errors are handled (and logged) by Starlette's outermost middleware,
            # outside this one: answer them here so that the 500 carries the X-Tracking-Id too.
            if not responded:
                response = error_response(Request(scope), ApiError(INTERNAL_ERROR, status=500))
                await response(scope, receive, send_with_id)
            raise
        finally:
            log.info(
                "trackingId=%s %s %s %d %.1fms",
                tracking_id,
                scope["method"],
                loggable_path(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
            )


def _tracking_id(scope: Scope) -> str:
    """The caller's X-Request-Id, if it is safe to log and to echo; else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if logs.SAFE_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def _trace_headers(scope: Scope) -> dict[str, str]:
    """The caller's W3C trace context headers (traceparent, tracestate), if any."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in (b"traceparent", b"tracestate")
    }
