"""/triggers: the trigger catalog."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.auth import SCOPES, requires
from gateway.api.requests import body, list_query, runtime
from gateway.api.responses import JSONResponse, page
from gateway.domain.documents import TriggerIn, trigger_out
from gateway.domain.errors import Invalid
from gateway.usecases import triggers

MANAGE = "triggers:manage"


@requires(*SCOPES)
async def list_triggers(request: Request) -> Response:
    rows, total = await triggers.list_page(runtime(request), list_query(request, triggers.LISTABLE))
    return page([trigger_out(t) for t in rows], total)


@requires(MANAGE)
async def create_trigger(request: Request) -> Response:
    spec = await body(request, TriggerIn)
    trigger = await triggers.create(runtime(request), spec)
    return JSONResponse(trigger_out(trigger), status_code=201)


@requires(*SCOPES)
async def get_trigger(request: Request) -> Response:
    trigger = await triggers.get(runtime(request), request.path_params["id"])
    return JSONResponse(trigger_out(trigger))


@requires(MANAGE)
async def replace_trigger(request: Request) -> Response:
    trigger_id = request.path_params["id"]
    spec = await body(request, TriggerIn, defaults={"id": trigger_id})
    if spec.id != trigger_id:
        raise Invalid("the trigger's id cannot change")
    trigger = await triggers.replace(runtime(request), spec)
    return JSONResponse(trigger_out(trigger))


@requires(MANAGE)
async def delete_trigger(request: Request) -> Response:
    await triggers.delete(runtime(request), request.path_params["id"])
    return Response(status_code=204)
