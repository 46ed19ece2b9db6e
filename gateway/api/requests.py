"""What endpoints read from a request: the runtime, JSON bodies, list parameters, the loop
guard's header."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request

from gateway.domain import strict_json
from gateway.domain.delivery import INVOCATION_HEADER
from gateway.domain.errors import ApiError, Invalid
from gateway.domain.list_query import Listable, ListQuery, QueryError, parse_list_query
from gateway.runtime import Runtime

INVOCATION_ID = re.compile(r"[A-Za-z0-9\-]{1,64}")

M = TypeVar("M", bound=BaseModel)


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def read_json(request: Request) -> Any:
    """The request body as JSON, or a 400 that says why it is not."""
    content_type = request.headers.get("content-type", "application/json")
    if "json" not in content_type:
        raise ApiError(status=415, message=f"send the body as application/json, not {content_type}")
    body = await request.body()
    if not body:
        raise Invalid("the request body is empty; send a JSON document")
    try:
        return strict_json.loads(body)
    except strict_json.Refused as exc:
        raise Invalid(f"the request body is refused: {exc}") from None
    except ValueError as exc:
        raise Invalid(f"the request body is not valid JSON: {exc}") from None


async def body(request: Request, model: type[M], *, defaults: Mapping[str, Any] | None = None) -> M:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise Invalid(f"the request body must be a JSON object, not {type(data).__name__}")
    if defaults:
        data = {**defaults, **data}
    return model.model_validate(data)


def list_query(request: Request, listable: Listable) -> ListQuery:
    try:
        return parse_list_query(request.query_params, listable)
    except QueryError as exc:
        raise Invalid(str(exc)) from None


def caused_by(request: Request) -> str | None:
    """The invocation whose delivery led the caller to make this request (the loop guard)."""
    value = request.headers.get(INVOCATION_HEADER)
    if value is not None and not INVOCATION_ID.fullmatch(value):
        raise Invalid(f"the {INVOCATION_HEADER} header must be an invocation id as delivered")
    return value


# The Idempotency-Key header's longest value.
MAX_IDEMPOTENCY_KEY = 255


def idempotency_key(request: Request) -> str | None:
    value = request.headers.get("idempotency-key")
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY or not value.isprintable() or not value.isascii():
        raise Invalid(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters")
    return value
