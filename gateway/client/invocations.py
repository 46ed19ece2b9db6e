"""`gateway invoke` and `gateway invocations list|show|tail` (and `replay`, from replay.py)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from gateway.client import render, replay
from gateway.client.api import Api, segment
from gateway.client.catalog import quoted
from gateway.client.inputs import read_input

STATUSES = (
    "WAITING", "QUEUED", "PENDING", "DISPATCHING", "AWAITING_CALLBACK", "RETRYING",
    "COMPLETED", "FAILED", "EXPIRED", "BUNDLED", "SUPPRESSED",
)  # fmt: skip
COLUMNS = ("id", "trigger", "subscription", "status", "attempts", "created", "outcome")
TAIL_ROWS = 20


def invoke(api: Api, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"triggerId": args.trigger, "input": read_input(args.input)}
    body.update({k: v for k, v in {"tenantId": args.tenant, "option": args.option}.items() if v})
    headers = {"Prefer": f"wait={args.wait}"} if args.wait is not None else {}
    created = api.json("POST", "/trigger-invocations/start", json=body, headers=headers) or []
    if args.json:
        render.print_json(created)
    elif not created:
        print(f"no enabled subscription of {args.trigger} matches: nothing was created")
    elif args.wait is None:
        render.show(("id", "trigger"), [(i["id"], i["triggerId"]) for i in created], "")
    else:
        render.show(COLUMNS, [row(status) for status in created], "")


def list_invocations(api: Api, args: argparse.Namespace) -> None:
    found = api.json("GET", "/trigger-invocations/status", params=list_params(args, args.limit))
    if args.json:
        render.print_json(found)
        return
    render.show(COLUMNS, [row(status) for status in found], "no invocations")


def list_params(args: argparse.Namespace, limit: int) -> dict[str, Any]:
    """The newest first, narrowed by the options (the API's filter language)."""
    filters = []
    if args.status:
        filters.append(f"status in ({', '.join(quoted(s) for s in args.status)})")
    if args.trigger:
        filters.append(f"triggerId eq {quoted(args.trigger)}")
    if args.subscription:
        filters.append(f"subscriptionId eq {quoted(args.subscription)}")
    params: dict[str, Any] = {"sorters": "-created", "limit": limit}
    if filters:
        params["filters"] = " and ".join(filters)
    return params


def row(status: dict[str, Any]) -> tuple[Any, ...]:
    return (
        status["id"],
        status["triggerId"],
        status.get("subscriptionName"),
        status["status"],
        status.get("attempts"),
        render.when(status.get("created")),
        render.excerpt(outcome(status)),
    )


def outcome(status: dict[str, Any]) -> str | None:
    """What an invocation came to: its error, its output, or what it waits for."""
    completion = status.get("completeInvocationInput") or {}
    error = completion.get("localizedError")
    if error:
        return str(error.get("message") or error)
    if status.get("completed"):
        return render.cell(completion.get("output")) or None
    if status.get("nextAttempt"):
        return f"next attempt {render.when(status['nextAttempt'])}"
    return status.get("progress")


def show(api: Api, args: argparse.Namespace) -> None:
    status = api.json("GET", f"/trigger-invocations/{segment(args.id)}/status")
    attempts = api.json("GET", f"/trigger-invocations/{segment(args.id)}/attempts")
    if args.json:
        render.print_json({"status": status, "attempts": attempts})
        return
    title = f"{status['id']}: {status['triggerId']} → {status.get('subscriptionName')}, {status['status']}"
    render.show(("time", "event", "detail"), timeline(status, attempts), "", title=title)


def timeline(status: dict[str, Any], attempts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Created, each attempt ended, and the end (or what it waits for), in time order."""
    events: list[tuple[Any, ...]] = [
        (status["created"], "created", f"{status.get('source')}, input {render.cell(input_of(status))}")
    ]
    for attempt in attempts:
        code = attempt.get("statusCode")
        took = attempt.get("durationMs")
        what = f"HTTP {code}" if code is not None else "no answer"
        detail = f"{what}{f' in {took} ms' if took is not None else ''}"
        detail += f": {attempt.get('error') or attempt.get('responseExcerpt') or ''}"
        events.append((attempt["started"], f"attempt {attempt['attempt']}", detail.rstrip(": ")))
    if status.get("progress"):
        events.append((None, "progress", status["progress"]))
    if status.get("completed"):
        events.append((status["completed"], status["status"].lower(), outcome(status)))
    elif status.get("nextAttempt"):
        events.append((status["nextAttempt"], "next attempt", status["status"]))
    else:
        events.append((status.get("deadline"), "deadline", status["status"]))
    return [(render.when(at), event, render.excerpt(detail, 100)) for at, event, detail in events]


def input_of(status: dict[str, Any]) -> Any:
    return (status.get("startInvocationInput") or {}).get("input")


def tail(api: Api, args: argparse.Namespace) -> None:
    """The newest invocations, read again every interval until Ctrl-C: a live table on a
    terminal; elsewhere (a pipe, a file) one line per new or changed invocation."""
    params = list_params(args, TAIL_ROWS)
    console = render.console()
    try:
        if console.is_terminal and not args.json:
            _tail_live(api, params, args.interval)
        else:
            _tail_lines(api, params, args.interval, args.json)
    except KeyboardInterrupt:
        pass  # how a tail ends: not an error


def _tail_live(api: Api, params: dict[str, Any], interval: float) -> None:
    from rich.live import Live

    def drawn() -> Any:
        found = api.json("GET", "/trigger-invocations/status", params=params)
        title = f"newest invocations, every {interval:g} s, at {time.strftime('%H:%M:%S')} (Ctrl-C ends)"
        return render.table(COLUMNS, [row(status) for status in found], title)

    with Live(drawn(), auto_refresh=False) as live:
        while True:
            time.sleep(interval)
            live.update(drawn(), refresh=True)


def _tail_lines(api: Api, params: dict[str, Any], interval: float, as_json: bool) -> None:
    seen: dict[str, tuple[str, int]] = {}
    while True:
        found = api.json("GET", "/trigger-invocations/status", params=params)
        for status in reversed(found):  # oldest first, as a log reads
            key = (status["status"], status.get("attempts") or 0)
            if seen.get(status["id"]) != key:
                seen[status["id"]] = key
                line = render.json_line(status) if as_json else "  ".join(map(render.cell, row(status)))
                print(line, flush=True)
        time.sleep(interval)


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    run = commands.add_parser("invoke", parents=[common], help="raise a trigger")
    run.add_argument("trigger", help="the trigger's id")
    run.add_argument("--input", default="{}", help="the input: JSON, or @FILE (JSON or YAML)")
    run.add_argument("--tenant", help="the tenant it is raised for")
    run.add_argument("--option", help="one of the trigger's options")
    run.add_argument(
        "--wait", nargs="?", type=_seconds, const=30, metavar="SECONDS",
        help="wait until every invocation is final (at most SECONDS, default 30) and show them",
    )  # fmt: skip
    run.set_defaults(handler=invoke)

    invocations = commands.add_parser("invocations", help="follow, inspect and replay invocations")
    actions = invocations.add_subparsers(dest="action", required=True)
    filters = argparse.ArgumentParser(add_help=False, parents=[common])
    filters.add_argument("--status", action="append", choices=STATUSES, help="only these (repeatable)")
    filters.add_argument("--trigger", help="only this trigger's")
    filters.add_argument("--subscription", help="only this subscription's")
    listing = actions.add_parser("list", parents=[filters], help="the newest invocations")
    listing.add_argument("--limit", type=int, default=50, choices=range(1, 251), metavar="1..250")
    listing.set_defaults(handler=list_invocations)
    shown = actions.add_parser("show", parents=[common], help="one invocation's timeline")
    shown.add_argument("id")
    shown.set_defaults(handler=show)
    tailing = actions.add_parser("tail", parents=[filters], help="a live table of the newest, until Ctrl-C")
    tailing.add_argument("--interval", type=_interval, default=1.0, help="seconds between reads (default 1)")
    tailing.set_defaults(handler=tail)
    replay.add_parser(actions, common)


def _seconds(value: str) -> int:
    seconds = int(value)
    if not 0 <= seconds <= 30:
        raise argparse.ArgumentTypeError("from 0 to 30 seconds")
    return seconds


def _interval(value: str) -> float:
    """A positive number of seconds (argparse: anything else is a usage error)."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds from 0 to 3600")
    return seconds
