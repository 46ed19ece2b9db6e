"""What every endpoint needs: the runtime, the caller's scopes, bodies and list parameters."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar
from starlette.requests import Request
from starlette.responses import Response

from gateway import clients, invocations, limits
from gateway.api.errors import read_json
from gateway.errors import Forbidden, Invalid, TooManyRequests, Unauthorized
from gateway.query import Condition, QueryError, Sorter, parse_filters, parse_paging, parse_sorters
from gateway.runtime import Runtime

SCOPES = frozenset(clients.API_SCOPES)
INVOCATION_ID = re.compile(r"[A-Za-z0-9\-]{1,64}")
# On every answer that carries a secret: no cache may keep it.
NO_STORE = {"Cache-Control": "no-store"}

Endpoint = Callable[[Request], Awaitable[Response]]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def caused_by(request: Request) -> str | None:
    """The invocation whose delivery led the caller to make this request (the loop guard)."""
    value = request.headers.get(invocations.INVOCATION_HEADER)
    if value is not None and not INVOCATION_ID.fullmatch(value):
        raise Invalid(f"the {invocations.INVOCATION_HEADER} header must be an invocation id as delivered")
    return value


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def requires(*any_of: str) -> Callable[[Endpoint], Endpoint]:
    """The endpoint needs a valid bearer token carrying at least one of these scopes."""

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            await authorize(request, any_of)
            return await endpoint(request)

        guarded.required_scopes = any_of  # type: ignore[attr-defined]
        return guarded

    return decorate


async def authorize(request: Request, any_of: Sequence[str]) -> None:
    challenge = {"WWW-Authenticate": 'Bearer realm="trigger-gateway"'}
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(
            "send an access token as 'Authorization: Bearer <token>'; get one from POST /oauth/token",
            headers=challenge,
        )
    rt = runtime(request)
    claims = rt.keys.read_token(token.strip(), rt.settings.token_ttl)
    if claims is None:
        raise Unauthorized(
            "the access token is invalid or expired; get a new one from POST /oauth/token",
            headers=challenge,
        )
    await _within_rate(rt, claims.client_id)
    if not claims.scopes.intersection(any_of):
        raise Forbidden(f"the access token lacks the scope this needs: one of {', '.join(any_of)}")
    request.state.client_id = claims.client_id


async def _within_rate(rt: Runtime, client_id: str) -> None:
    """Every request with a valid token spends its client's budget, whatever it asks for."""
    rate, burst = rt.settings.rate_limit, rt.settings.rate_burst
    wait = await rt.limiter.throttle(limits.key("rate", client_id), rate, burst)
    if wait > 0:
        raise TooManyRequests(
            f"API client {client_id} is over its rate limit ({rate:g} requests/s, bursts of {burst})",
            wait,
        )


async def body(request: Request, model: type[M], *, defaults: Mapping[str, Any] | None = None) -> M:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise Invalid(f"the request body must be a JSON object, not {type(data).__name__}")
    if defaults:
        data = {**defaults, **data}
    return model.model_validate(data)


@dataclass(frozen=True)
class ListQuery:
    conditions: list[Condition]
    sorters: list[Sorter]
    limit: int
    offset: int
    count: bool


def list_query(
    request: Request, filterable: Mapping[str, frozenset[str]], sortable: Sequence[str]
) -> ListQuery:
    params = request.query_params
    try:
        limit, offset, count = parse_paging(params.get("limit"), params.get("offset"), params.get("count"))
        return ListQuery(
            conditions=parse_filters(params.get("filters"), filterable),
            sorters=parse_sorters(params.get("sorters"), sortable),
            limit=limit,
            offset=offset,
            count=count,
        )
    except QueryError as exc:
        raise Invalid(str(exc)) from None


def where(condition: Condition, column: Any) -> ColumnElement[bool]:
    value = condition.values[0] if condition.values else None
    clauses: dict[str, Callable[[], ColumnElement[bool]]] = {
        "eq": lambda: column == value,
        "ne": lambda: column != value,
        "in": lambda: column.in_(condition.values),
        "sw": lambda: column.startswith(value, autoescape=True),
        "co": lambda: column.contains(value, autoescape=True),
        "gt": lambda: column > value,
        "ge": lambda: column >= value,
        "lt": lambda: column < value,
        "le": lambda: column <= value,
        "isnull": lambda: column.is_(None),
    }
    return clauses[condition.op]()


async def run_list(
    session: AsyncSession,
    query: SelectOfScalar[T],
    spec: ListQuery,
    columns: Mapping[str, Any],
    default_order: Sequence[Any],
) -> tuple[Sequence[T], int | None]:
    """Apply filters, sorters and paging; also count the filtered rows when asked."""
    for condition in spec.conditions:
        query = query.where(where(condition, columns[condition.field]))
    total = None
    if spec.count:
        total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    order = [columns[s.field].desc() if s.descending else columns[s.field].asc() for s in spec.sorters]
    query = query.order_by(*order, *default_order).limit(spec.limit).offset(spec.offset)
    rows = (await session.execute(query)).scalars().all()
    return rows, total


def total_header(total: int | None) -> dict[str, str]:
    return {} if total is None else {"X-Total-Count": str(total)}
