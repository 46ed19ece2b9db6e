"""A delivery as its subscriber reads it: the input, and ``_metadata`` as typed fields."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Mode = Literal["sync", "async", "dynamic"]
MODES: tuple[Mode, ...] = ("sync", "async", "dynamic")


class InvalidDelivery(ValueError):
    """The body is not a delivery: not a JSON object, or its ``_metadata`` lacks a field."""


@dataclass(frozen=True)
class RunTrigger:
    """One trigger a run carries (more than one when a debounced run bundled several)."""

    invocation_id: str
    source: str
    mode: str  # "init" on a tenant's first run of the subscription, else "normal"
    payload: Any
    headers: dict[str, str] | None
    received_at: datetime | None


@dataclass(frozen=True)
class LastRun:
    """The previous finished run of the same subscription and tenant."""

    phase: str  # "succeeded", "failed" or "timedOut"
    started_at: datetime | None
    completed_at: datetime | None
    output: Any


@dataclass(frozen=True)
class Delivery:
    input: dict[str, Any]
    mode: Mode
    trigger_id: str
    invocation_id: str
    deadline: datetime
    fire_and_forget: bool
    # Absent from fire-and-forget deliveries: there is nothing to complete.
    callback_url: str | None
    secret: str | None = field(repr=False)  # it completes the invocation: kept out of logs
    source: str | None
    tenant_id: str | None
    option: str | None
    run_triggers: tuple[RunTrigger, ...]
    last_run: LastRun | None
    metadata: dict[str, Any] = field(repr=False)  # as sent, for fields added after this kit


def parse(body: bytes | str | Mapping[str, Any]) -> Delivery:
    """The delivery in a request's body; InvalidDelivery if it is not one."""
    try:
        document = json.loads(body) if isinstance(body, bytes | str) else dict(body)
    except ValueError as exc:
        raise InvalidDelivery(f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("_metadata"), dict):
        raise InvalidDelivery("the body is not a JSON object with _metadata")
    meta: dict[str, Any] = document.pop("_metadata")
    try:
        mode = str(meta["responseMode"]).lower()
        if mode not in MODES:
            raise InvalidDelivery(f"_metadata.responseMode is {mode!r}, not one of {', '.join(MODES)}")
        last = meta.get("lastRun")
        return Delivery(
            input=document,
            mode=mode,
            trigger_id=meta["triggerId"],
            invocation_id=meta["invocationId"],
            deadline=_time(meta["deadline"]) or _missing("deadline"),
            fire_and_forget=meta.get("triggerType") == "fireAndForget",
            callback_url=meta.get("callbackURL"),
            secret=meta.get("secret"),
            source=meta.get("source"),
            tenant_id=meta.get("tenantId"),
            option=meta.get("option"),
            run_triggers=tuple(_run_trigger(entry) for entry in meta.get("runTriggers") or ()),
            last_run=None if last is None else _last_run(last),
            metadata=meta,
        )
    except InvalidDelivery:
        raise
    except KeyError as exc:
        raise InvalidDelivery(f"_metadata has no {exc.args[0]}") from None
    except (TypeError, ValueError) as exc:
        raise InvalidDelivery(f"_metadata is malformed: {exc}") from None


def _run_trigger(entry: dict[str, Any]) -> RunTrigger:
    return RunTrigger(
        invocation_id=entry["invocationId"],
        source=entry["source"],
        mode=entry["mode"],
        payload=entry.get("payload"),
        headers=entry.get("headers"),
        received_at=_time(entry.get("receivedAt")),
    )


def _last_run(entry: dict[str, Any]) -> LastRun:
    return LastRun(
        phase=entry["phase"],
        started_at=_time(entry.get("startedAt")),
        completed_at=_time(entry.get("completedAt")),
        output=entry.get("output"),
    )


def _time(text: str | None) -> datetime | None:
    # The gateway writes RFC 3339 in UTC with a Z, which fromisoformat reads from Python 3.11.
    return None if text is None else datetime.fromisoformat(text)


def _missing(name: str) -> datetime:
    raise InvalidDelivery(f"_metadata.{name} is null")
