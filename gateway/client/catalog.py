"""`gateway triggers apply|list` and `gateway subscriptions list|create`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.client import render
from gateway.client.api import Api, ApiError, segment
from gateway.client.inputs import UsageError, read_document

MODES = ("SYNC", "ASYNC", "DYNAMIC")


def apply_triggers(api: Api, args: argparse.Namespace) -> None:
    """Create each trigger of the file, or replace it when it exists (the file is the truth)."""
    document = read_document(args.file)
    triggers = document if isinstance(document, list) else [document]
    if not triggers or not all(isinstance(t, dict) and isinstance(t.get("id"), str) for t in triggers):
        raise UsageError(f"{args.file}: expected a trigger (an object with an id) or a list of them")
    applied = [apply_trigger(api, trigger) for trigger in triggers]
    if args.json:
        render.print_json([trigger for trigger, _ in applied])
        return
    for trigger, action in applied:
        print(f"{action} trigger {trigger['id']}")


def apply_trigger(api: Api, trigger: dict[str, Any]) -> tuple[dict[str, Any], str]:
    try:
        return api.json("POST", "/triggers", json=trigger), "created"
    except ApiError as exc:
        if exc.status != 409:  # 409: it exists, so this is an update
            raise
    body = {key: value for key, value in trigger.items() if key != "id"}
    return api.json("PUT", f"/triggers/{segment(trigger['id'])}", json=body), "updated"


# The API's largest page (its default): a list is read a page at a time until a short one.
PAGE = 250


def every(api: Api, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every item of a list, however many pages it takes."""
    items: list[dict[str, Any]] = []
    while True:
        page = api.json("GET", path, params={**params, "limit": str(PAGE), "offset": str(len(items))})
        items += page
        if len(page) < PAGE:
            return items


def list_triggers(api: Api, args: argparse.Namespace) -> None:
    triggers = every(api, "/triggers", {"sorters": "id"})
    if args.json:
        render.print_json(triggers)
        return
    rows = [(t["id"], t["name"], t["type"], render.excerpt(t.get("description"))) for t in triggers]
    render.show(("id", "name", "type", "description"), rows, "no triggers")


def list_subscriptions(api: Api, args: argparse.Namespace) -> None:
    params = {"sorters": "triggerId,created"}
    if args.trigger:
        params["filters"] = f"triggerId eq {quoted(args.trigger)}"
    subscriptions = every(api, "/trigger-subscriptions", params)
    if args.json:
        render.print_json(subscriptions)
        return
    render.show(
        ("id", "trigger", "name", "mode", "url", "enabled", "circuit"),
        [subscription_row(s) for s in subscriptions],
        "no subscriptions",
    )


def subscription_row(subscription: dict[str, Any]) -> tuple[Any, ...]:
    http = subscription.get("httpConfig") or {}
    circuit = (subscription.get("circuit") or {}).get("state")
    enabled = "yes" if subscription["enabled"] else f"no: {subscription.get('disabledReason') or ''}"
    return (
        subscription["id"],
        subscription["triggerId"],
        subscription["name"],
        http.get("httpDispatchMode"),
        http.get("url"),
        enabled.rstrip(": "),
        circuit,
    )


def create_subscription(api: Api, args: argparse.Namespace) -> None:
    created = api.json("POST", "/trigger-subscriptions", json=subscription_body(args))
    if args.json:
        render.print_json(created)
        return
    print(f"created subscription {created['id']} to {created['triggerId']}")
    # The API shows a subscription's signing secret this once: its subscriber needs it.
    print(f"signing secret (shown only now): {created.get('signingSecret')}", file=sys.stderr)


def subscription_body(args: argparse.Namespace) -> dict[str, Any]:
    """The file's subscription, with what the options say on top of it."""
    body: dict[str, Any] = {}
    if args.file:
        body = read_document(args.file)
        if not isinstance(body, dict):
            raise UsageError(f"{args.file}: expected a subscription (an object)")
    http = dict(body.get("httpConfig") or {})
    given = {"triggerId": args.trigger, "name": args.name, "responseDeadline": args.deadline}
    body.update({key: value for key, value in given.items() if value is not None})
    http.update({k: v for k, v in {"url": args.url, "httpDispatchMode": args.mode}.items() if v})
    body["httpConfig"] = http
    body.setdefault("name", body.get("triggerId"))
    if not body.get("triggerId") or not http.get("url"):
        raise UsageError("a subscription needs a trigger and a URL: --trigger and --url, or -f FILE")
    return body


def quoted(value: str) -> str:
    """A string in the list filters' language."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    triggers = commands.add_parser("triggers", help="define and list triggers").add_subparsers(
        dest="action", required=True
    )
    apply = triggers.add_parser(
        "apply", parents=[common], help="create or update the triggers of a YAML or JSON file"
    )
    apply.add_argument("-f", "--file", required=True, help="a trigger, or a list of them")
    apply.set_defaults(handler=apply_triggers)
    triggers.add_parser("list", parents=[common], help="list the triggers").set_defaults(
        handler=list_triggers
    )

    subscriptions = commands.add_parser("subscriptions", help="list and create subscriptions")
    actions = subscriptions.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", parents=[common], help="list the subscriptions")
    listing.add_argument("--trigger", help="only this trigger's")
    listing.set_defaults(handler=list_subscriptions)
    create = actions.add_parser("create", parents=[common], help="subscribe a URL to a trigger")
    create.add_argument("-f", "--file", help="a subscription (YAML or JSON); the options override it")
    create.add_argument("--trigger", help="the trigger's id")
    create.add_argument("--url", help="where deliveries are POSTed")
    create.add_argument("--name", help="default: the trigger's id")
    create.add_argument("--mode", choices=MODES, help="how the subscriber answers (default: SYNC)")
    create.add_argument("--deadline", help="ISO 8601 duration for ASYNC answers, e.g. PT1H")
    create.set_defaults(handler=create_subscription)
