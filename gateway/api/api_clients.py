"""/api-clients: create API clients with chosen scopes, rotate their secrets, delete them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.auth import requires
from gateway.api.requests import body, list_query, runtime
from gateway.api.responses import NO_STORE, JSONResponse, page
from gateway.domain.documents import ApiClientIn, api_client_out
from gateway.domain.errors import Conflict
from gateway.domain.model import ApiClient
from gateway.usecases import api_clients

MANAGE = api_clients.CLIENTS_MANAGE


@requires(MANAGE)
async def list_api_clients(request: Request) -> Response:
    rows, total = await api_clients.list_page(runtime(request), list_query(request, api_clients.LISTABLE))
    return page([api_client_out(c) for c in rows], total)


@requires(MANAGE)
async def create_api_client(request: Request) -> Response:
    spec = await body(request, ApiClientIn)
    client, secret = await api_clients.create(runtime(request), spec.clientId, sorted(set(spec.scopes)))
    return _with_secret(client, secret, status=201)


@requires(MANAGE)
async def get_api_client(request: Request) -> Response:
    client = await api_clients.get(runtime(request), request.path_params["id"])
    return JSONResponse(api_client_out(client))


@requires(MANAGE)
async def rotate_api_client_secret(request: Request) -> Response:
    client_id = _not_bootstrap(request, "rotate its secret")
    client, secret = await api_clients.rotate_secret(runtime(request), client_id)
    return _with_secret(client, secret, status=200)


@requires(MANAGE)
async def delete_api_client(request: Request) -> Response:
    client_id = _not_bootstrap(request, "delete it")
    await api_clients.delete(runtime(request), client_id, caller=request.state.client_id)
    return Response(status_code=204)


def _not_bootstrap(request: Request, action: str) -> str:
    client_id: str = request.path_params["id"]
    if client_id == runtime(request).settings.bootstrap_client_id:
        # Every start sets it back from the environment, so a change here would not last.
        raise Conflict(
            f"API client {client_id!r} is set by GATEWAY_BOOTSTRAP_CLIENT_ID/_SECRET; "
            f"change those settings to {action}"
        )
    return client_id


def _with_secret(client: ApiClient, secret: str, *, status: int) -> Response:
    # The secret is shown in this answer only; only its hash is stored.
    document = {**api_client_out(client), "clientSecret": secret}
    return JSONResponse(document, status_code=status, headers=NO_STORE)
