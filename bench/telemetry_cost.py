"""``python -m bench.telemetry_cost``: the CPU a SYNC round trip spends on telemetry, each
part on its own, best of three runs: its metrics (a start counted, a delivery in flight and
timed, a final state counted), and its log context and trace spans (a start's span and its
stored traceparent, a delivery's span and its HTTP request's, the header injected) with no
tracing SDK configured, without and with a caller's traceparent. The round trip's whole
cost is `python -m bench --only sync`'s "gateway CPU ms per round trip"."""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import NamedTuple

from gateway.telemetry import logs, metrics, traces

CALLER = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


class _Invocation(NamedTuple):
    trigger_id: str
    dispatch_mode: str


INVOCATION = _Invocation("bench:sync", "SYNC")


def counted(inv: _Invocation = INVOCATION) -> None:
    metrics.started([(inv.trigger_id, inv.dispatch_mode, "PENDING")])
    with metrics.IN_FLIGHT.track_inprogress():
        pass
    metrics.delivered(inv, "completed", 0.001)
    metrics.finished(inv, "COMPLETED")


def traced() -> None:
    with traces.span("gateway.start") as start:
        start.set_attribute("gateway.trigger.id", INVOCATION.trigger_id)
        stored = traces.current_traceparent()
    about = {"invocationId": "i", "triggerId": INVOCATION.trigger_id, "subscriptionId": "s"}
    with logs.about(trackingId="t", **about), traces.span("gateway.deliver", parent=stored) as deliver:
        deliver.set_attributes({"gateway.invocation.id": "i", "gateway.attempt": 1})
        with traces.span("POST") as post:
            post.set_attributes({"http.request.method": "POST", "url.full": "http://subscriber/"})
            traces.inject({})
            post.set_attribute("http.response.status_code", 200)


def traced_for_a_caller() -> None:
    with traces.caller_context(CALLER):
        traced()


def best(action: Callable[[], None], number: int = 100_000) -> float:
    """Microseconds per call."""
    return min(timeit.repeat(action, number=number, repeat=3)) / number * 1e6


def main() -> None:
    print("CPU per SYNC round trip, µs (best of 3 runs of 100,000):")
    print(f"  metrics:                                     {best(counted):5.1f}")
    print(f"  log context and traces, no SDK:              {best(traced):5.1f}")
    print(f"  log context and traces, a caller's trace:    {best(traced_for_a_caller):5.1f}")


if __name__ == "__main__":
    main()
