"""GET /health/live (the process answers), /health/ready (it can serve: each dependency's state
and latency; 503 when one is down) and /health (ready's alias). No access token needed."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.requests import runtime
from gateway.api.responses import JSONResponse
from gateway.usecases import health

log = logging.getLogger("gateway.health")
# The dependencies found down at the last check, so an outage is logged when it starts and
# when it ends, not at every probe.
_down: set[str] = set()


async def live(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    checks = await health.readiness(runtime(request))
    _log_changes(checks)
    ok = all(check.ok for check in checks)
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": {
            check.name: {"ok": check.ok, "latencyMs": check.latency_ms, "error": check.error}
            for check in checks
        },
    }
    return JSONResponse(body, status_code=200 if ok else 503)


def _log_changes(checks: list[health.Check]) -> None:
    for check in checks:
        if not check.ok and check.name not in _down:
            _down.add(check.name)
            log.warning("not ready: %s is down (%s)", check.name, check.error)
        elif check.ok and check.name in _down:
            _down.discard(check.name)
            log.warning("%s is back", check.name)
