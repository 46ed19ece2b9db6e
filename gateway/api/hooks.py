"""/hooks/{token}: inbound webhooks. No access token: the URL's signed token is the credential."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import webhooks
from gateway.api.common import runtime


async def receive_webhook(request: Request) -> Response:
    started = await webhooks.receive(
        runtime(request),
        request.path_params["token"],
        await request.body(),
        request.headers.get("content-type", ""),
        request.headers.items(),
    )
    # Recorded (committed) before this answer; the delivery follows on its own.
    return JSONResponse({"id": started.id}, status_code=202)
