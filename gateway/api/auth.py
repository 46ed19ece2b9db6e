"""Access tokens on API requests: the scopes an endpoint needs, and each client's request rate."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response

from gateway.adapters import limiter
from gateway.api.requests import runtime
from gateway.domain.errors import Forbidden, TooManyRequests, Unauthorized
from gateway.runtime import Runtime
from gateway.usecases.api_clients import API_SCOPES

SCOPES = frozenset(API_SCOPES)

Endpoint = Callable[[Request], Awaitable[Response]]


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
    await authorize_token(request, token.strip(), any_of, challenge)


async def authorize_token(
    request: Request, token: str, any_of: Sequence[str], challenge: dict[str, str] | None = None
) -> None:
    """The token is valid, its client exists and is within its rate, and it has one of the
    scopes; shared by bearer requests and the console's session (which carries a token)."""
    rt = runtime(request)
    claims = rt.keys.read_token(token, rt.settings.token_ttl)
    if claims is None or not await rt.known_clients.exists(rt, claims.client_id):
        raise Unauthorized(
            "the access token is invalid or expired, or its client was deleted; "
            "get a new one from POST /oauth/token",
            headers=challenge,
        )
    await _within_rate(rt, claims.client_id)
    if not claims.scopes.intersection(any_of):
        raise Forbidden(f"the access token lacks the scope this needs: one of {', '.join(any_of)}")
    request.state.client_id = claims.client_id
    request.state.scopes = claims.scopes


async def _within_rate(rt: Runtime, client_id: str) -> None:
    """Every request with a valid token spends its client's budget, whatever it asks for."""
    rate, burst = rt.settings.rate_limit, rt.settings.rate_burst
    wait = await rt.limiter.throttle(limiter.key("rate", client_id), rate, burst)
    if wait > 0:
        raise TooManyRequests(
            f"API client {client_id} is over its rate limit ({rate:g} requests/s, bursts of {burst})",
            wait,
        )
