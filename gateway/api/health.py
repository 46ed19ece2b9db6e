"""GET /health: is the database reachable? No access token needed."""

from __future__ import annotations

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.api.common import runtime


async def health(request: Request) -> Response:
    try:
        async with runtime(request).sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok"})
