"""The console's pages that only read: each authorizes the session for the scope the API's
matching endpoint needs, then renders what the use cases return."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.requests import runtime
from gateway.console import html, pages, session
from gateway.domain.clock import utcnow
from gateway.domain.documents import subscription_out
from gateway.domain.errors import Invalid
from gateway.domain.list_query import Condition, ListQuery, Sorter
from gateway.domain.model import Status
from gateway.usecases import statuses, subscriptions, triggers
from gateway.usecases.api_clients import API_SCOPES

READ = ("invocations:read",)
MANAGE = ("triggers:manage",)
PAGE_SIZE = 25
MAX_PAGE = 10_000
MAX_LISTED = 250  # triggers and subscriptions shown on one page
FILTER_NAMES = ("status", "trigger", "subscription", "tenant", "since", "until")
FILTER_FIELDS = {"trigger": "triggerId", "subscription": "subscriptionId", "tenant": "tenantId"}
DONE = {
    "replayed": "Replayed: it is being delivered again.",
    "enabled": "Enabled.",
    "disabled": "Disabled.",
    "tested": "Test invocation sent.",
}


def moment(text: str) -> datetime:
    """A datetime-local input's value, as UTC."""
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # an offset past year 1 or 9999 overflows in UTC
        raise Invalid(f"{text[:40]!r} is not a date and time (YYYY-MM-DDTHH:MM)") from None


def invocation_query(params: dict[str, str], page_number: int) -> ListQuery:
    conditions = [
        Condition(field, "eq", (params[name],)) for name, field in FILTER_FIELDS.items() if name in params
    ]
    if "status" in params:
        if params["status"] not in Status.__members__:
            raise Invalid(f"{params['status'][:40]!r} is not a status")
        conditions.append(Condition("status", "eq", (params["status"],)))
    if "since" in params:
        conditions.append(Condition("created", "ge", (moment(params["since"]),)))
    if "until" in params:
        conditions.append(Condition("created", "le", (moment(params["until"]),)))
    return ListQuery(conditions, [Sorter("created", True)], PAGE_SIZE, page_number * PAGE_SIZE, True)


def _filters(request: Request) -> tuple[dict[str, str], int]:
    params = {
        name: request.query_params[name][:255] for name in FILTER_NAMES if request.query_params.get(name)
    }
    raw_page = request.query_params.get("page", "0")
    page_number = int(raw_page) if raw_page.isdigit() and len(raw_page) < 6 else 0
    return params, min(page_number, MAX_PAGE)


async def _invocations_live(request: Request) -> tuple[str, dict[str, str], int]:
    params, page_number = _filters(request)
    rt = runtime(request)
    rows, total = await statuses.list_page(rt, invocation_query(params, page_number))
    now = utcnow()
    recent = await statuses.recent_outcomes(rt, now - timedelta(hours=1))
    live = pages.invocations_live(rows, total, params, page_number, PAGE_SIZE, recent, now)
    return live, params, page_number


async def invocations(request: Request) -> Response:
    await session.authorize(request, READ)
    live, params, page_number = await _invocations_live(request)
    query = {**params, "page": str(page_number)}
    body = pages.invocations(pages.filter_form(params), live, html.href("/fragments/invocations", **query))
    return html.page("Invocations", body, "invocations")


async def invocations_fragment(request: Request) -> Response:
    await session.authorize(request, READ)
    return html.fragment((await _invocations_live(request))[0])


async def _invocation_body(request: Request) -> tuple[str, str]:
    """The invocation's refreshing part, and its id."""
    csrf = await session.authorize(request, READ)
    rt, invocation_id = runtime(request), request.path_params["id"]
    inv = await statuses.get(rt, invocation_id)
    attempts, _ = await statuses.attempts(rt, invocation_id, ListQuery([], [], 250, 0, False))
    return pages.invocation_body(inv, attempts, csrf), inv.id


async def invocation(request: Request) -> Response:
    body, invocation_id = await _invocation_body(request)
    live_url = html.href(f"/fragments/invocations/{invocation_id}")
    return html.page(
        f"Invocation {invocation_id[:8]}", _notice(request) + pages.live(body, live_url), "invocations"
    )


async def invocation_fragment(request: Request) -> Response:
    return html.fragment((await _invocation_body(request))[0])


def _notice(request: Request) -> str:
    return html.notice(DONE.get(request.query_params.get("done", "")))


def _all(limit: int = MAX_LISTED, conditions: list[Condition] | None = None) -> ListQuery:
    return ListQuery(conditions or [], [], limit, 0, False)


async def triggers_page(request: Request) -> Response:
    await session.authorize(request, API_SCOPES)
    rows, _ = await triggers.list_page(runtime(request), _all())
    return html.page("Triggers", pages.triggers(rows), "triggers")


async def trigger(request: Request) -> Response:
    csrf = await session.authorize(request, MANAGE)
    rt, trigger_id = runtime(request), request.path_params["id"]
    found = await triggers.get(rt, trigger_id)
    subs, _ = await subscriptions.list_page(
        rt, _all(conditions=[Condition("triggerId", "eq", (trigger_id,))])
    )
    listing = pages.subscriptions([subscription_out(sub, name) for sub, name in subs])
    body = pages.trigger(found, listing, csrf, _notice(request))
    return html.page(f"Trigger {found.name}", body, "triggers")


async def subscriptions_page(request: Request) -> Response:
    await session.authorize(request, MANAGE)
    subs, _ = await subscriptions.list_page(runtime(request), _all())
    body = pages.subscriptions([subscription_out(sub, name) for sub, name in subs])
    return html.page("Subscriptions", body, "subscriptions")


async def subscription(request: Request) -> Response:
    csrf = await session.authorize(request, MANAGE)
    sub, name = await subscriptions.get(runtime(request), request.path_params["id"])
    body = pages.subscription(subscription_out(sub, name), csrf, _notice(request))
    return html.page(f"Subscription {sub.name}", body, "subscriptions")
