"""POST /oauth/token: the OAuth2 client-credentials grant."""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.api.common import runtime
from gateway.api.errors import error_response
from gateway.errors import ApiError
from gateway.models import ApiClient
from gateway.security import hash_secret, verify_secret_async

_UNKNOWN_CLIENT_HASH = hash_secret("no client has this secret")


class OAuthError(ApiError):
    """Both the API's error format and RFC 6749's ``error`` field, for OAuth2 libraries."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description, status=status)
        self.error = error


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
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
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
    async with runtime(request).sessions() as session:
        client = await session.get(ApiClient, client_id)
    # Hash even for an unknown client, so timing does not tell which client ids exist.
    stored = client.secret_hash if client is not None else _UNKNOWN_CLIENT_HASH
    if not await verify_secret_async(client_secret, stored) or client is None:
        raise OAuthError(401, "invalid_client", "unknown client or wrong client secret")
    allowed = frozenset(client.scopes.split())
    if requested is None:
        return allowed
    if not requested <= allowed:
        extra = ", ".join(sorted(requested - allowed))
        raise OAuthError(400, "invalid_scope", f"this client may not have the scope(s) {extra}")
    return frozenset(requested)


def _with_oauth_fields(response: Response, exc: OAuthError) -> Response:
    body = json.loads(bytes(response.body))
    body.update({"error": exc.error, "error_description": exc.message})
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401:  # RFC 6749 5.2: name the scheme the client may authenticate with
        headers["WWW-Authenticate"] = 'Basic realm="trigger-gateway"'
    return JSONResponse(body, status_code=exc.status, headers=headers)
