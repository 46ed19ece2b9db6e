"""POST /oauth/token: the OAuth2 client-credentials grant."""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from gateway.adapters import limiter
from gateway.api.errors import error_response
from gateway.api.requests import runtime
from gateway.api.responses import NO_STORE, JSONResponse
from gateway.domain.errors import ApiError, TooManyRequests
from gateway.usecases import api_clients


class OAuthError(ApiError):
    """Both the API's error format and RFC 6749's ``error`` field, for OAuth2 libraries."""

    def __init__(
        self, status: int, error: str, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description, status=status, headers=headers)
        self.error = error


class InvalidClient(OAuthError):
    """The client id is unknown or the secret is wrong: the one failure that stays counted."""

    def __init__(self) -> None:
        super().__init__(401, "invalid_client", "unknown client or wrong client secret")


async def token(request: Request) -> Response:
    try:
        client_id, client_secret, requested = await _credentials(request)
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


async def _grant(
    request: Request, client_id: str, client_secret: str, requested: set[str] | None
) -> frozenset[str]:
    allowed = await authenticate(request, client_id, client_secret)
    if requested is None:
        return allowed
    if not requested <= allowed:
        extra = ", ".join(sorted(requested - allowed))
        raise OAuthError(400, "invalid_scope", f"this client may not have the scope(s) {extra}")
    return frozenset(requested)


async def authenticate(request: Request, client_id: str, client_secret: str) -> frozenset[str]:
    """The client's scopes if the secret is right (also the console's sign-in). Count this
    authentication against the client id from this address, the client id, and the address, and
    refuse it before any scrypt work once one has failed too often: that caps both the guesses
    at a weak secret and the CPU a flood can burn. A flood naming a client id from other
    addresses meets the client id's ceiling only after a hundred times as many guesses, so it
    cannot lock the owner out cheaply; the address limit is higher than the per-pair one, as
    many callers may share one address behind a NAT."""
    if "\x00" in client_id or "\x00" in client_secret:  # PostgreSQL would refuse the lookup: a 500
        raise OAuthError(400, "invalid_request", "client_id and client_secret may not hold a NUL character")
    rt = runtime(request)
    settings = rt.settings
    address = limiter.address(request.client.host if request.client else "unknown")
    counted = [
        (limiter.key("token-client-address", f"{client_id} {address}"), settings.token_failure_limit),
        (limiter.key("token-client", client_id), settings.token_client_failure_limit),
        (limiter.key("token-address", address), settings.token_address_failure_limit),
    ]
    async with limiter.counted_attempts(rt.limiter, counted, settings.failure_window, InvalidClient) as wait:
        if wait > 0:
            limited = TooManyRequests("too many failed authentications for this client id or address", wait)
            # "slow_down" (RFC 8628 3.5, registered for the token endpoint) means "ask less
            # often"; invalid_client or invalid_request would tell a caller with the right
            # secret that its credentials or its request are wrong.
            raise OAuthError(429, "slow_down", limited.message, headers=limited.headers)
        try:
            allowed = await api_clients.authenticate(rt, client_id, client_secret)
        except api_clients.WrongSecret:
            raise InvalidClient from None
    return allowed


def _with_oauth_fields(response: Response, exc: OAuthError) -> Response:
    body = json.loads(bytes(response.body))
    body.update({"error": exc.error, "error_description": exc.message})
    headers = {**NO_STORE, **(exc.headers or {})}
    if exc.status == 401:  # RFC 6749 5.2: name the scheme the client may authenticate with
        headers["WWW-Authenticate"] = 'Basic realm="trigger-gateway"'
    return JSONResponse(body, status_code=exc.status, headers=headers)
