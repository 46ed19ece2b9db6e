"""GET /health: is the database reachable? No access token needed."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.requests import runtime
from gateway.api.responses import JSONResponse
from gateway.usecases.health import database_problem


async def health(request: Request) -> Response:
    problem = await database_problem(runtime(request))
    if problem is not None:
        return JSONResponse({"status": "unavailable", "database": problem}, status_code=503)
    return JSONResponse({"status": "ok"})
