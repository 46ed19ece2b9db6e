"""POST /oauth/token: the OAuth2 client-credentials grant."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import clients, limits
from gateway.api.common import NO_STORE, runtime
from gateway.api.errors import error_response
from gateway.errors import ApiError, TooManyRequests
from gateway.models import ApiClient
from gateway.security import hash_secret, verify_secret_async

_UNKNOWN_CLIENT_HASH = hash_secret("no client has this secret")


class OAuthError(ApiError):
    """Both the API's error format and RFC 6749's ``error`` field, for OAuth2 libraries."""

    def __init__(
        self, status: int, error: str, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description, status=status, headers=headers)
        self.error = error


async def token(request: Request) -> Response:
    try:
        client_id, client_secret, requested = await _credentials(request)
        async with _failures_counted(request, client_id):
            scopes = await _grant(request, client_id, client_secret, requested)
    except OAuthError as exc:
        response = error_response(request, exc)
        return _with_oauth_fields(response, exc)
    rt = runtime(request)
    return JSONResponse(
        {
            "access_token": rt.keys.issue_token(client_id, scopes),
            "token_type": "bearer",
            "expires_in": rt.settings.token_ttl,
            "scope": " ".join(sorted(scopes)),
        },
        headers={**NO_STORE, "Pragma": "no-cache"},
    )


async def _credentials(request: Request) -> tuple[str, str, set[str] | None]:
    content_type = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" not in content_type:
        raise OAuthError(
            400,
            "invalid_request",
            "send the token request form-encoded "
            "(application/x-www-form-urlencoded) with grant_type=client_credentials",
        )
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
    if form.get("grant_type") != "client_credentials":
        raise OAuthError(400, "unsupported_grant_type", "only grant_type=client_credentials is supported")
    client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError(401, "invalid_client", "malformed Basic authorization header") from None
        client_id, _, client_secret = decoded.partition(":")
    if not client_id or not client_secret:
        raise OAuthError(401, "invalid_client", "give client_id and client_secret")
    requested = set(form["scope"].split()) if form.get("scope") else None
    return client_id, client_secret, requested


@asynccontextmanager
async def _failures_counted(request: Request, client_id: str) -> AsyncIterator[None]:
    """Count this authentication against the client id and the caller's address, and refuse
    it before any scrypt work once either has failed too often: that caps both the guesses
    at a weak secret and the CPU a flood can burn. The cost is that a flood naming a client
    id delays its owner's next token until Retry-After (tokens already issued keep working);
    the address limit is higher, as many callers may share one address behind a NAT."""
    rt = runtime(request)
    settings = rt.settings
    address = request.client.host if request.client else "unknown"
    counted = [
        (limits.key("token-client", client_id), settings.token_failure_limit),
        (limits.key("token-address", address), settings.token_address_failure_limit),
    ]
    wait = await limits.attempt_all(rt.limiter, counted, settings.failure_window)
    if wait > 0:
        limited = TooManyRequests("too many failed authentications for this client id or address", wait)
        # "slow_down" (RFC 8628 3.5, registered for the token endpoint) means "ask less
        # often"; invalid_client or invalid_request would tell a caller with the right
        # secret that its credentials or its request are wrong.
        raise OAuthError(429, "slow_down", limited.message, headers=limited.headers)
    wrong_secret = False
    try:
        yield
    except OAuthError as exc:
        wrong_secret = exc.status == 401
        raise
    finally:
        if not wrong_secret:  # only a wrong secret stays counted
            await limits.forgive_all(rt.limiter, [name for name, _ in counted])


async def _grant(
    request: Request, client_id: str, client_secret: str, requested: set[str] | None
) -> frozenset[str]:
    async with runtime(request).sessions() as session:
        client = await session.get(ApiClient, client_id)
    # Hash even for an unknown client, so timing does not tell which client ids exist.
    hashes = clients.secret_hashes(client) if client is not None else [_UNKNOWN_CLIENT_HASH]
    if not await _any_matches(client_secret, hashes) or client is None:
        raise OAuthError(401, "invalid_client", "unknown client or wrong client secret")
    allowed = frozenset(client.scopes.split())
    if requested is None:
        return allowed
    if not requested <= allowed:
        extra = ", ".join(sorted(requested - allowed))
        raise OAuthError(400, "invalid_scope", f"this client may not have the scope(s) {extra}")
    return frozenset(requested)


async def _any_matches(secret: str, hashes: list[str]) -> bool:
    for stored in hashes:
        if await verify_secret_async(secret, stored):
            return True
    return False


def _with_oauth_fields(response: Response, exc: OAuthError) -> Response:
    body = json.loads(bytes(response.body))
    body.update({"error": exc.error, "error_description": exc.message})
    headers = {**NO_STORE, **(exc.headers or {})}
    if exc.status == 401:  # RFC 6749 5.2: name the scheme the client may authenticate with
        headers["WWW-Authenticate"] = 'Basic realm="trigger-gateway"'
    return JSONResponse(body, status_code=exc.status, headers=headers)
