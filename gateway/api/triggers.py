"""/triggers: the trigger catalog."""

from __future__ import annotations

from sqlmodel import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import triggers
from gateway.api.common import SCOPES, body, list_query, requires, run_list, runtime, total_header
from gateway.errors import Invalid, NotFound
from gateway.models import Trigger
from gateway.schemas import TriggerIn, trigger_out

FILTERABLE = {"id": frozenset({"eq", "in", "sw"}), "type": frozenset({"eq"})}
SORTABLE = ("id", "name")
COLUMNS = {"id": Trigger.id, "type": Trigger.type, "name": Trigger.name}


@requires(*SCOPES)
async def list_triggers(request: Request) -> Response:
    spec = list_query(request, FILTERABLE, SORTABLE)
    async with runtime(request).sessions() as session:
        rows, total = await run_list(session, select(Trigger), spec, COLUMNS, [Trigger.id])
    return JSONResponse([trigger_out(t) for t in rows], headers=total_header(total))


@requires("triggers:manage")
async def create_trigger(request: Request) -> Response:
    spec = await body(request, TriggerIn)
    trigger = await triggers.create(runtime(request).sessions, spec)
    return JSONResponse(trigger_out(trigger), status_code=201)


@requires(*SCOPES)
async def get_trigger(request: Request) -> Response:
    trigger_id = request.path_params["id"]
    async with runtime(request).sessions() as session:
        trigger = await session.get(Trigger, trigger_id)
    if trigger is None:
        raise NotFound(f"trigger {trigger_id!r} does not exist")
    return JSONResponse(trigger_out(trigger))


@requires("triggers:manage")
async def replace_trigger(request: Request) -> Response:
    trigger_id = request.path_params["id"]
    spec = await body(request, TriggerIn, defaults={"id": trigger_id})
    if spec.id != trigger_id:
        raise Invalid("the trigger's id cannot change")
    trigger = await triggers.replace(runtime(request).sessions, spec)
    return JSONResponse(trigger_out(trigger))


@requires("triggers:manage")
async def delete_trigger(request: Request) -> Response:
    await triggers.delete(runtime(request).sessions, request.path_params["id"])
    return Response(status_code=204)
