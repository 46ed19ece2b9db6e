"""A tiny subscriber for trying the gateway: answers every delivery synchronously."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("gateway.example_subscriber")


async def approve(request: Request) -> Response:
    body = await request.json()
    metadata = body.get("_metadata", {})
    log.info("received invocation %s of %s", metadata.get("invocationId"), metadata.get("triggerId"))
    return JSONResponse({"approver": "ada", "reason": f"approved {len(body) - 1} field(s)"})


def create_example_subscriber() -> Starlette:
    return Starlette(routes=[Route("/{path:path}", approve, methods=["POST"])])
