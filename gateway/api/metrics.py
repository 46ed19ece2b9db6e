"""GET /metrics: the Prometheus text format, for a token with the scope metrics:read, or for
anyone with GATEWAY_METRICS_PUBLIC=true. The backlog gauges are measured at each scrape."""

from __future__ import annotations

import logging
import math

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.auth import authorize
from gateway.api.requests import runtime
from gateway.telemetry import metrics
from gateway.usecases import backlog
from gateway.usecases.api_clients import METRICS_READ

log = logging.getLogger("gateway.metrics")


async def scrape(request: Request) -> Response:
    rt = runtime(request)
    if not rt.settings.metrics_public:
        await authorize(request, (METRICS_READ,))
    try:
        metrics.backlog(*await backlog.measure(rt))
    except Exception:
        # Unknown, not stale: /health/ready says why (the database is down).
        metrics.backlog(math.nan, math.nan, math.nan)
        log.debug("measuring the backlog failed", exc_info=True)
    text = generate_latest(metrics.REGISTRY) + generate_latest(metrics.BACKLOG)
    return Response(text, media_type=CONTENT_TYPE_LATEST)


scrape.required_scopes = (METRICS_READ,)  # type: ignore[attr-defined]  # as requires() marks it
