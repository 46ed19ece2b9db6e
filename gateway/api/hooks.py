"""/hooks/{token}: inbound webhooks. No access token: the URL's signed token is the credential."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.adapters import limiter
from gateway.api.requests import caused_by, runtime
from gateway.api.responses import JSONResponse
from gateway.domain.errors import TooManyRequests
from gateway.usecases import webhooks


async def receive_webhook(request: Request) -> Response:
    rt = runtime(request)
    subscription_id = await webhooks.subscription_of(rt, request.path_params["token"])
    # Anyone holding the URL may call it: a leaked one must not flood the database.
    rate, burst = rt.settings.webhook_rate_limit, rt.settings.webhook_rate_burst
    wait = await rt.limiter.throttle(limiter.key("webhook", subscription_id), rate, burst)
    if wait > 0:
        raise TooManyRequests(
            f"this webhook URL is over its rate limit ({rate:g} calls/s, bursts of {burst})", wait
        )
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
