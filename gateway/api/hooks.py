"""/hooks/{token}: inbound webhooks. No access token: the URL's signed token is the credential."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import webhooks
from gateway.api.common import caused_by, runtime


async def receive_webhook(request: Request) -> Response:
    rt = runtime(request)
    subscription_id = await webhooks.subscription_of(rt, request.path_params["token"])
    started = await webhooks.receive(
        rt,
        subscription_id,
        await request.body(),
        request.headers.get("content-type", ""),
        request.headers.items(),
        caused_by(request),
    )
    # Recorded (committed) before this answer; the delivery follows on its own.
    return JSONResponse({"id": started.id}, status_code=202)
