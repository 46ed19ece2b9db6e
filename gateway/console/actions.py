"""The console's actions: each is a POST with the session's CSRF token, needs the scope the
API's matching endpoint needs, calls one use case, and sends the browser back (303) to the
page it acted on, which says what was done."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.api.requests import runtime
from gateway.console import html, session
from gateway.console.views import moment
from gateway.domain import strict_json
from gateway.domain.errors import Invalid
from gateway.domain.model import Status
from gateway.usecases import raise_trigger, replay, subscriptions

START = ("invocations:start",)
MANAGE = ("triggers:manage",)


def _back(path: str, done: str) -> Response:
    return RedirectResponse(f"{html.BASE}{path}?done={done}", status_code=303)


async def replay_invocation(request: Request) -> Response:
    await session.authorize_change(request, START)
    inv = await replay.invocation(runtime(request), request.path_params["id"])
    return _back(f"/invocations/{inv.id}", "replayed")


async def test_trigger(request: Request) -> Response:
    form = await session.authorize_change(request, MANAGE)
    trigger_id = request.path_params["id"]
    try:
        given = strict_json.loads(form.get("input", "{}").encode() or b"{}")
    except strict_json.Refused as exc:
        raise Invalid(f"the test input is not JSON: {exc}") from None
    if not isinstance(given, dict):
        raise Invalid("the test input must be a JSON object")
    await raise_trigger.start(runtime(request), trigger_id, given, {}, test=True)
    return _back(f"/triggers/{trigger_id}", "tested")


async def _set_enabled(request: Request, enabled: bool) -> Response:
    await session.authorize_change(request, MANAGE)
    subscription_id = request.path_params["id"]
    change = [{"op": "replace", "path": "/enabled", "value": enabled}]
    await subscriptions.patch(runtime(request), subscription_id, change)
    return _back(f"/subscriptions/{subscription_id}", "enabled" if enabled else "disabled")


async def enable(request: Request) -> Response:
    return await _set_enabled(request, True)


async def disable(request: Request) -> Response:
    return await _set_enabled(request, False)


async def replay_subscription(request: Request) -> Response:
    form = await session.authorize_change(request, START)
    subscription_id = request.path_params["id"]
    since = moment(form.get("since", ""))
    await replay.subscription(runtime(request), subscription_id, since, {Status.FAILED, Status.EXPIRED})
    return _back(f"/subscriptions/{subscription_id}", "replayed")
