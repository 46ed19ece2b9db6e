"""/api-clients: create API clients with chosen scopes, rotate their secrets, delete them."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import clients
from gateway.api.common import NO_STORE, body, list_query, requires, run_list, runtime, total_header
from gateway.errors import Conflict, NotFound
from gateway.models import ApiClient
from gateway.schemas import ApiClientIn, api_client_out

MANAGE = clients.CLIENTS_MANAGE
FILTERABLE = {"clientId": frozenset({"eq", "in", "sw"})}
SORTABLE = ("clientId", "created")
COLUMNS = {"clientId": ApiClient.client_id, "created": ApiClient.created}


@requires(MANAGE)
async def list_clients(request: Request) -> Response:
    spec = list_query(request, FILTERABLE, SORTABLE)
    async with runtime(request).sessions() as session:
        rows, total = await run_list(session, select(ApiClient), spec, COLUMNS, [ApiClient.client_id])
    return JSONResponse([api_client_out(c) for c in rows], headers=total_header(total))


@requires(MANAGE)
async def create_client(request: Request) -> Response:
    spec = await body(request, ApiClientIn)
    client, secret = await clients.create(runtime(request).sessions, spec.clientId, sorted(set(spec.scopes)))
    return _with_secret(client, secret, status=201)


@requires(MANAGE)
async def get_client(request: Request) -> Response:
    client_id = request.path_params["id"]
    async with runtime(request).sessions() as session:
        client = await session.get(ApiClient, client_id)
    if client is None:
        raise NotFound(f"API client {client_id!r} does not exist")
    return JSONResponse(api_client_out(client))


@requires(MANAGE)
async def rotate_client_secret(request: Request) -> Response:
    rt = runtime(request)
    client_id = _not_bootstrap(request, "rotate its secret")
    grace = timedelta(seconds=rt.settings.rotation_grace)
    client, secret = await clients.rotate_secret(rt.sessions, client_id, grace)
    return _with_secret(client, secret, status=200)


@requires(MANAGE)
async def delete_client(request: Request) -> Response:
    client_id = _not_bootstrap(request, "delete it")
    await clients.delete(runtime(request).sessions, client_id, caller=request.state.client_id)
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
