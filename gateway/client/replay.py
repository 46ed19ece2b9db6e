"""`gateway invocations replay ID` and `... replay --subscription ID --since TIME`.

A subscription's replay is answered with a count once every invocation is queued again; the
deliveries follow. So the command notes which invocations the replay takes before asking for
it, then shows a progress bar of their new attempts ending (Ctrl-C stops watching, not the
deliveries)."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from datetime import datetime
from typing import Any

from gateway.client import render
from gateway.client.api import Api, segment
from gateway.client.catalog import quoted
from gateway.client.inputs import UsageError, since

REPLAYABLE = ("FAILED", "EXPIRED", "COMPLETED")
# Where a replayed invocation's attempt has ended: final, or waiting on someone else.
SETTLED = frozenset(
    {"COMPLETED", "FAILED", "EXPIRED", "BUNDLED", "SUPPRESSED", "RETRYING", "AWAITING_CALLBACK"}
)
PAGE = 250  # the API's largest page
IDS_PER_READ = 40  # an `id in (...)` filter of 40 ids stays under the API's 2,000 characters
POLL = 0.5


def replay(api: Api, args: argparse.Namespace) -> None:
    if (args.id is None) == (args.subscription is None):
        raise UsageError("give an invocation ID, or --subscription ID with --since TIME")
    if args.subscription is not None:
        replay_subscription(api, args)
        return
    status = api.json("POST", f"/trigger-invocations/{segment(args.id)}/replay")
    if args.json:
        render.print_json(status)
    else:
        print(f"replaying {status['id']}: {status['status']}")


def replay_subscription(api: Api, args: argparse.Namespace) -> None:
    if args.since is None:
        raise UsageError("--subscription needs --since TIME (e.g. 2026-12-01T00:00:00Z, or 2h)")
    after, statuses = since(args.since), args.status or ["FAILED", "EXPIRED"]
    body = {"since": after, "statuses": statuses}
    path = f"/trigger-subscriptions/{segment(args.subscription)}/replay"
    if args.json:
        render.print_json(api.json("POST", path, json=body))
        return
    taken = replayable(api, args.subscription, after, statuses)
    replayed = api.json("POST", path, json=body)["replayed"]
    print(f"replayed {replayed} invocation{'s' * (replayed != 1)} of subscription {args.subscription}")
    if replayed and taken and not args.no_wait:
        outcomes = follow(api, taken)
        print(", ".join(f"{count} {status}" for status, count in sorted(outcomes.items())))


def replayable(api: Api, subscription: str, after: str, statuses: list[str]) -> list[str]:
    """The ids of the subscription's invocations in these statuses created since `after`: the
    newest first, page by page until one is older."""
    wanted = f"status in ({', '.join(map(quoted, statuses))})"
    params: dict[str, Any] = {
        "filters": f"subscriptionId eq {quoted(subscription)} and {wanted}",
        "sorters": "-created",
        "limit": PAGE,
    }
    cutoff, ids = datetime.fromisoformat(after), []
    for offset in range(0, 100 * PAGE, PAGE):  # at most 25,000: a bar, not an inventory
        page = api.json("GET", "/trigger-invocations/status", params={**params, "offset": offset})
        ids += [s["id"] for s in page if datetime.fromisoformat(s["created"]) >= cutoff]
        if len(page) < PAGE or datetime.fromisoformat(page[-1]["created"]) < cutoff:
            break
    return ids


def follow(api: Api, ids: list[str]) -> Counter[str]:
    """A progress bar of the replayed attempts ending; their statuses when all have (or at
    Ctrl-C, as they are then)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    statuses: dict[str, str] = {}
    columns = (TextColumn("delivering again"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=render.console(stderr=True), transient=True) as progress:
        task = progress.add_task("replay", total=len(ids))
        try:
            while True:
                statuses = read_statuses(api, ids)
                settled = sum(1 for status in statuses.values() if status in SETTLED)
                progress.update(task, completed=settled)
                if settled == len(ids):
                    break
                time.sleep(POLL)
        except KeyboardInterrupt:
            pass  # stop watching; the deliveries go on
    return Counter(statuses.values())


def read_statuses(api: Api, ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(ids), IDS_PER_READ):
        chunk = ids[start : start + IDS_PER_READ]
        params = {"filters": f"id in ({', '.join(map(quoted, chunk))})", "limit": len(chunk)}
        for status in api.json("GET", "/trigger-invocations/status", params=params):
            found[status["id"]] = status["status"]
    return found


def add_parser(actions: Any, common: argparse.ArgumentParser) -> None:
    again = actions.add_parser(
        "replay", parents=[common], help="deliver an invocation, or a subscription's, again"
    )
    again.add_argument("id", nargs="?", help="the invocation to replay")
    again.add_argument("--subscription", help="replay this subscription's invocations ...")
    again.add_argument("--since", help="... created since this time (RFC 3339) or age (90m, 2h, 7d)")
    again.add_argument("--status", action="append", choices=REPLAYABLE, help="default: FAILED and EXPIRED")
    again.add_argument(
        "--no-wait", action="store_true", help="do not follow the replayed deliveries with a progress bar"
    )
    again.set_defaults(handler=replay)
