"""The console's pages as HTML strings: each function takes what a use case returned and
escapes every value it shows (html.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from gateway.console.chart import svg
from gateway.console.html import (
    BASE,
    button_form,
    csrf_input,
    esc,
    href,
    pretty_json,
    status_badge,
    table,
    when,
)
from gateway.console.masking import masked, masked_text
from gateway.domain.model import DeliveryAttempt, Invocation, Status, Trigger
from gateway.usecases.replay import replayable

FILTERS = (("trigger", "Trigger id"), ("subscription", "Subscription id"), ("tenant", "Tenant id"))


def login(error: str | None, client_id: str = "") -> str:
    alert = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    return f"""{alert}<form method="post" action="{esc(BASE)}/login" class="card login">
<label for="client_id">Client id</label>
<input id="client_id" name="client_id" autocomplete="username" required value="{esc(client_id)}">
<label for="client_secret">Client secret</label>
<input id="client_secret" name="client_secret" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>"""


def filter_form(params: Mapping[str, str]) -> str:
    statuses = "".join(
        f'<option value="{esc(s.value)}"{" selected" if params.get("status") == s.value else ""}>'
        f"{esc(s.value)}</option>"
        for s in Status
    )
    texts = "".join(
        f'<div><label for="f-{name}">{esc(label)}</label>'
        f'<input id="f-{name}" name="{name}" value="{esc(params.get(name, ""))}"></div>'
        for name, label in FILTERS
    )
    times = "".join(
        f'<div><label for="f-{name}">{esc(label)} (UTC)</label><input id="f-{name}" name="{name}" '
        f'type="datetime-local" value="{esc(params.get(name, ""))}"></div>'
        for name, label in (("since", "Created from"), ("until", "Created until"))
    )
    return f"""<form method="get" action="{esc(BASE)}/invocations" class="filters card" role="search">
<div><label for="f-status">Status</label><select id="f-status" name="status">
<option value="">any</option>{statuses}</select></div>{texts}{times}
<div class="actions"><button type="submit">Filter</button>
<a href="{esc(BASE)}/invocations">Clear</a></div></form>"""


def invocations_live(
    rows: Sequence[Invocation],
    total: int | None,
    params: Mapping[str, str],
    page_number: int,
    page_size: int,
    recent: Sequence[tuple[datetime, str, int]],
    now: datetime,
) -> str:
    """The part of the page that refreshes itself: the chart, the table and the pager."""
    cells = [
        [
            f'<a href="{href("/invocations/" + inv.id)}">{esc(inv.id[:8])}…</a>',
            esc(inv.trigger_id),
            esc(inv.subscription_name),
            status_badge(inv.status),
            esc(inv.tenant_id),
            when(inv.created),
            when(inv.completed),
            esc(inv.attempts),
        ]
        for inv in rows
    ]
    headings = ["Id", "Trigger", "Subscription", "Status", "Tenant", "Created", "Completed", "Attempts"]
    listing = table("Invocations, newest first", headings, cells, "No invocation matches these filters.")
    return svg(recent, now) + listing + _pager(params, page_number, page_size, total)


def _pager(params: Mapping[str, str], page_number: int, page_size: int, total: int | None) -> str:
    count = total or 0
    last = max(0, (count - 1) // page_size)

    def link(rel: str, number: int, label: str) -> str:
        return f'<a rel="{rel}" href="{href("/invocations", **{**params, "page": str(number)})}">{label}</a>'

    links = []
    if page_number > 0:
        links.append(link("prev", page_number - 1, "Newer"))
    if page_number < last:
        links.append(link("next", page_number + 1, "Older"))
    shown = f"page {page_number + 1} of {last + 1}, {count} invocations"
    return f'<nav class="pager" aria-label="Pages">{esc(shown)} {" ".join(links)}</nav>'


def invocations(filters: str, body: str, live_url: str) -> str:
    return filters + live(body, live_url)


def live(body: str, url: str) -> str:
    """A section the script refreshes from ``url`` while the page is open. Not aria-live: a
    screen reader would read the whole table out again at every change."""
    return f'<section data-live="{esc(url)}" id="live">{body}</section>'


def invocation_body(inv: Invocation, attempts: Sequence[DeliveryAttempt], csrf: str) -> str:
    replay = (
        button_form(f"/invocations/{inv.id}/replay", "Replay", csrf)
        if replayable(inv)
        else '<p class="muted">Replay is allowed once it has failed or expired.</p>'
    )
    facts = _facts(
        [
            ("Id", esc(inv.id)),
            ("Status", status_badge(inv.status)),
            ("Trigger", f'<a href="{href("/triggers/" + inv.trigger_id)}">{esc(inv.trigger_id)}</a>'),
            (
                "Subscription",
                f'<a href="{href("/subscriptions/" + inv.subscription_id)}">{esc(inv.subscription_name)}</a>',
            ),
            ("Mode", esc(inv.dispatch_mode)),
            ("Source", esc(inv.source)),
            ("Tenant", esc(inv.tenant_id)),
        ]
    )
    return invocation_live(inv, attempts, facts, replay)


def invocation_live(inv: Invocation, attempts: Sequence[DeliveryAttempt], facts: str, replay: str) -> str:
    return f"""<div class="card">{facts}{replay}</div>
<h2>Timeline</h2><ol class="timeline">{timeline(inv, attempts)}</ol>
<div class="columns"><section><h2>Input</h2><pre>{pretty_json(masked(inv.input))}</pre></section>
<section><h2>Output</h2><pre>{pretty_json(masked(inv.output))}</pre></section></div>"""


def timeline(inv: Invocation, attempts: Sequence[DeliveryAttempt]) -> str:
    events = [_event(inv.created, "Created", f"by {inv.source}, deadline {when(inv.deadline)}")]
    for attempt in attempts:
        code = attempt.status_code if attempt.status_code is not None else "no answer"
        took = f"{attempt.duration_ms} ms" if attempt.duration_ms is not None else "cut off"
        detail = f"HTTP {esc(code)}, {esc(took)}"
        if attempt.error:
            detail += f" — {esc(attempt.error)}"
        excerpt = (
            f"<pre>{esc(masked_text(attempt.response_excerpt))}</pre>" if attempt.response_excerpt else ""
        )
        events.append(_event(attempt.started, f"Attempt {attempt.attempt}", detail, excerpt))
    if inv.status == Status.AWAITING_CALLBACK or (inv.dispatch_mode != "SYNC" and _acknowledged(attempts)):
        events.append(_event(None, "Acknowledged", f"awaiting the callback until {when(inv.deadline)}"))
    if inv.progress:
        events.append(_event(None, "Heartbeat", f"progress: {esc(inv.progress)}"))
    if inv.next_attempt is not None and inv.status == Status.RETRYING:
        events.append(_event(inv.next_attempt, "Next attempt", "scheduled"))
    if inv.completed is not None:
        fallback = " with the trigger's fallback output" if inv.fallback else ""
        error = f" — {esc(inv.error)}" if inv.error else ""
        events.append(_event(inv.completed, str(inv.status).capitalize(), f"{fallback}{error}"))
    return "".join(events)


def _acknowledged(attempts: Sequence[DeliveryAttempt]) -> bool:
    return bool(attempts) and attempts[-1].status_code in (200, 202) and not attempts[-1].error


def _event(moment: datetime | None, title: str, detail: str, extra: str = "") -> str:
    stamp = f"<time>{when(moment)}</time> " if moment else ""
    return f"<li>{stamp}<strong>{esc(title)}</strong> <span>{detail}</span>{extra}</li>"


def _facts(pairs: Sequence[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def triggers(rows: Sequence[Trigger]) -> str:
    cells = [
        [
            f'<a href="{href("/triggers/" + t.id)}">{esc(t.id)}</a>',
            esc(t.name),
            esc(t.type),
            esc(t.description),
        ]
        for t in rows
    ]
    return table("Triggers", ["Id", "Name", "Type", "Description"], cells, "No triggers yet.")


def trigger(t: Trigger, subscriptions: str, csrf: str, notice: str) -> str:
    facts = _facts([("Id", esc(t.id)), ("Type", esc(t.type)), ("Description", esc(t.description))])
    example = pretty_json(t.example_input or {})
    test = f"""<form method="post" action="{esc(BASE)}/triggers/{esc(t.id)}/test" class="card">
{csrf_input(csrf)}<label for="test-input">Test input (JSON)</label>
<textarea id="test-input" name="input" rows="6">{example}</textarea>
<button type="submit">Send a test invocation</button></form>"""
    recent = f'<p><a href="{href("/invocations", trigger=t.id)}">Its invocations</a></p>'
    listing = f"<h2>Subscriptions</h2>{subscriptions}"
    return f'{notice}<div class="card">{facts}</div>{recent}{listing}<h2>Test</h2>{test}'


def subscriptions(documents: Sequence[dict[str, Any]]) -> str:
    cells = [
        [
            f'<a href="{href("/subscriptions/" + d["id"])}">{esc(d["name"])}</a>',
            esc(d["triggerId"]),
            _enabled(d),
            esc(d["circuit"]["state"]),
            esc(d["httpConfig"]["url"]),
        ]
        for d in documents
    ]
    headings = ["Name", "Trigger", "Enabled", "Circuit", "URL"]
    return table("Subscriptions", headings, cells, "No subscriptions.")


def _enabled(d: dict[str, Any]) -> str:
    if d["enabled"]:
        return '<span class="status status-completed">enabled</span>'
    reason = f" ({esc(d['disabledReason'])})" if d.get("disabledReason") else ""
    return f'<span class="status status-failed">disabled</span>{reason}'


def subscription(d: dict[str, Any], csrf: str, notice: str) -> str:
    circuit = d["circuit"]
    facts = _facts(
        [
            ("Id", esc(d["id"])),
            ("Trigger", f'<a href="{href("/triggers/" + d["triggerId"])}">{esc(d["triggerId"])}</a>'),
            ("Enabled", _enabled(d)),
            (
                "Circuit",
                esc(circuit["state"]) + (f" since {esc(circuit['since'])}" if circuit["since"] else ""),
            ),
            ("Consecutive failures", esc(circuit["consecutiveFailures"])),
            ("URL", esc(d["httpConfig"]["url"])),
            ("Mode", esc(d["httpConfig"]["httpDispatchMode"])),
            ("Authentication", esc(d["httpConfig"]["httpAuthenticationType"])),
        ]
    )
    path = f"/subscriptions/{d['id']}"
    toggle = (
        button_form(path + "/disable", "Disable", csrf)
        if d["enabled"]
        else button_form(path + "/enable", "Enable", csrf)
    )
    replay = f"""<form method="post" action="{esc(BASE + path)}/replay" class="card">{csrf_input(csrf)}
<label for="replay-since">Replay its failed and expired invocations created since (UTC)</label>
<input id="replay-since" name="since" type="datetime-local" required>
<button type="submit">Replay failures</button></form>"""
    recent = f'<p><a href="{href("/invocations", subscription=d["id"])}">Its invocations</a></p>'
    return f'{notice}<div class="card">{facts}<div class="actions">{toggle}</div></div>{recent}{replay}'
