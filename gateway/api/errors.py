"""The API's one error format, and the handlers that turn every failure into it.

{detailCode, trackingId, messages: [{locale, localeOrigin, text}], causes: []}
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

from gateway.api.responses import JSONResponse
from gateway.domain.errors import ApiError, Invalid, describe_validation_error

log = logging.getLogger("gateway.api")

DETAIL_CODES = {
    400: "400.1 Bad Request Content",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not found",
    405: "405 Method Not Allowed",
    408: "408 Request Timeout",
    409: "409 Conflict",
    410: "410 Gone",
    413: "413 Payload Too Large",
    415: "415 Unsupported Media Type",
    422: "422 Unprocessable Content",
    431: "431 Request Header Fields Too Large",
    429: "429 Too Many Requests",
    500: "500.0 Internal Fault",
    503: "503 Service Unavailable",
}


def tracking_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("tracking_id", ""))


def error_response(request: Request, err: ApiError) -> Response:
    body = error_body(err.status, tracking_id(request), err.message, err.causes)
    return JSONResponse(body, status_code=err.status, headers=err.headers)


def error_body(status: int, tracking: str, message: str, causes: Sequence[str] = ()) -> dict[str, Any]:
    """The API's one error format."""
    return {
        "detailCode": DETAIL_CODES.get(status, f"{status}"),
        "trackingId": tracking,
        "messages": [_message(message)],
        "causes": [_message(cause) for cause in causes],
    }


def _message(text: str) -> dict[str, str]:
    return {"locale": "en-US", "localeOrigin": "DEFAULT", "text": text}


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.status >= 500:
        log.error("trackingId=%s %s", tracking_id(request), exc.message)
    return error_response(request, exc)


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    causes = describe_validation_error(exc)
    return error_response(request, Invalid("invalid request body: " + "; ".join(causes)))


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = f"no route matches {request.method} {request.url.path}; see openapi/openapi.yaml"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
        # Starlette names only the methods of the first route whose path matched; a path has
        # one route per method, and Allow must list them all (RFC 9110 15.5.6).
        scope = request.scope
        # The scope as it reached the app: a Mount has since moved its prefix into root_path.
        root_path = scope.get("app_root_path", scope.get("root_path", ""))
        fresh: Scope = {"type": "http", "method": "", "path": scope["path"], "root_path": root_path}
        allowed = _allowed_methods(request.app.router.routes, fresh)
        if allowed:
            headers["Allow"] = ", ".join(sorted(allowed))
    else:
        message = str(exc.detail)
    return error_response(request, ApiError(message, headers=headers, status=exc.status_code))


def _allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> set[str]:
    """The methods of the first path template that matches, as Starlette routes: a concrete
    path such as /trigger-subscriptions/validate-filter, not the {id} template after it."""
    allowed: set[str] = set()
    template = None
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount) and template is None:
            return _allowed_methods(route.routes, {**scope, **child_scope})
        if isinstance(route, Route) and route.path == (template or route.path):
            template = route.path
            allowed |= route.methods or set()
    return allowed


INTERNAL_ERROR = "internal error; report the trackingId to the gateway's operators"


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("trackingId=%s unhandled error", tracking_id(request))
    return error_response(request, ApiError(INTERNAL_ERROR, status=500))
