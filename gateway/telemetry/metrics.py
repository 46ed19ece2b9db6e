"""The gateway's Prometheus metrics, each process its own (Prometheus sums them): what was
started and how it finished, deliveries and their durations, callbacks, and the backlog.

Label values are catalog names and fixed words: never an id, a secret or a URL, so a label's
values stay as few as the triggers an operator defines."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.process_collector import ProcessCollector

from gateway.domain import errors
from gateway.domain.model import Status

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # CPU seconds, memory, open files of this process
# The backlog, measured in the database at each scrape of an API process's /metrics: the same
# figure in every API process (take the max across them, not the sum); workers have none.
BACKLOG = CollectorRegistry()

STARTED = Counter(
    "gateway_invocations_started",
    "Invocations created (one per matching subscription of a start, run or schedule tick).",
    ["trigger", "mode"],
    registry=REGISTRY,
)
FINISHED = Counter(
    "gateway_invocations_finished",
    "Invocations that reached a final state: completed, failed, expired, suppressed (by the "
    "loop guard) or bundled (carried by another invocation's run).",
    ["trigger", "mode", "outcome"],
    registry=REGISTRY,
)
DELIVERY_SECONDS = Histogram(
    "gateway_delivery_duration_seconds",
    "Delivery attempts, from the request sent to the answer read: completed (SYNC output), "
    "acknowledged (an ASYNC 200 {}) or failed.",
    ["trigger", "mode", "result"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
CALLBACKS = Counter(
    "gateway_callbacks",
    "Callbacks received, by result: accepted, invalid (a malformed body, an output the schema "
    "refuses, an unknown invocation), wrong_secret, throttled (too many wrong secrets), late (past "
    "the deadline), conflict (already finished otherwise, or not awaiting a callback).",
    ["result"],
    registry=REGISTRY,
)
IN_FLIGHT = Gauge(
    "gateway_deliveries_in_flight", "Deliveries this process is sending now.", registry=REGISTRY
)
QUEUE_DEPTH = Gauge("gateway_queue_depth", "Invocations PENDING delivery (all processes).", registry=BACKLOG)
QUEUE_OLDEST = Gauge(
    "gateway_queue_oldest_seconds",
    "How long the oldest PENDING invocation not yet tried has waited since it was created (0: none).",
    registry=BACKLOG,
)
AWAITING_CALLBACK = Gauge(
    "gateway_awaiting_callback", "Invocations acknowledged, awaiting their callback.", registry=BACKLOG
)

# Final states, as the outcome label names them.
OUTCOMES: dict[str, str] = {
    Status.COMPLETED: "completed",
    Status.FAILED: "failed",
    Status.EXPIRED: "expired",
    Status.SUPPRESSED: "suppressed",
    Status.BUNDLED: "bundled",
}
# What a callback's refusal says, as the result label names it.
REFUSALS: tuple[tuple[type[errors.ApiError], str], ...] = (
    (errors.Forbidden, "wrong_secret"),
    (errors.TooManyRequests, "throttled"),
    (errors.Gone, "late"),
    (errors.Conflict, "conflict"),
)
# A delivery's outcome kind (domain/delivery.py), as the result label names it.
RESULTS = {"completed": "completed", "awaiting": "acknowledged", "failed": "failed"}


class Labelled(Protocol):
    """An invocation row, or a final transition's returned columns."""

    @property
    def trigger_id(self) -> str: ...
    @property
    def dispatch_mode(self) -> str: ...


# Each metric's child per label values, looked up once: labels() takes a lock and checks its
# arguments on every call, a third of what counting a round trip cost.
_children: dict[tuple[object, ...], Any] = {}


def _child(metric: MetricWrapperBase, *values: str) -> Any:
    key = (metric, *values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


def started(rows: Iterable[tuple[str, str, str]]) -> None:
    """Invocations created, as (trigger id, dispatch mode, status): one created already
    final (suppressed) has finished too."""
    for trigger_id, mode, status in rows:
        _child(STARTED, trigger_id, mode).inc()
        if status in OUTCOMES:
            _child(FINISHED, trigger_id, mode, OUTCOMES[status]).inc()


def finished(inv: Labelled, status: str, count: int = 1) -> None:
    outcome = OUTCOMES.get(status)
    if outcome is not None:
        _child(FINISHED, inv.trigger_id, inv.dispatch_mode, outcome).inc(count)


def delivered(inv: Labelled, kind: str, seconds: float) -> None:
    _child(DELIVERY_SECONDS, inv.trigger_id, inv.dispatch_mode, RESULTS[kind]).observe(seconds)


def callback(refusal: errors.ApiError | None) -> None:
    """A callback accepted (None), or refused with this error."""
    result = "accepted"
    if refusal is not None:
        result = next((name for kind, name in REFUSALS if isinstance(refusal, kind)), "invalid")
    CALLBACKS.labels(result).inc()


def backlog(pending: float, oldest_seconds: float, awaiting: float) -> None:
    QUEUE_DEPTH.set(pending)
    QUEUE_OLDEST.set(oldest_seconds)
    AWAITING_CALLBACK.set(awaiting)
