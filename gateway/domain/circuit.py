"""The circuit breaker's rules, without I/O: which outcomes count against a subscriber, and
what state its circuit is in. usecases/circuit.py keeps the counts in the database."""

from __future__ import annotations

import enum
from datetime import datetime

from gateway.domain.delivery import Failure, Outcome


class State(enum.StrEnum):
    CLOSED = "closed"  # deliveries go
    OPEN = "open"  # deliveries wait (fire-and-forget) or fail at once (request-response)
    HALF_OPEN = "half-open"  # one probe delivery may go; its outcome closes or re-opens it


def state(circuit_open: bool, probe_at: datetime | None, now: datetime) -> State:
    if not circuit_open:
        return State.CLOSED
    return State.OPEN if probe_at is not None and now < probe_at else State.HALF_OPEN


def broken(outcome: Outcome) -> bool | None:
    """True: the subscriber is down (no connection, no answer in time, 5xx); False: it
    answered, so it is up (even with a 4xx); None: the outcome says neither (the gateway
    refused to send, or could not read the answer)."""
    if outcome.kind != "failed":
        return False
    if outcome.failure in (Failure.UNSENT, Failure.TRANSIENT):
        return outcome.status_code is None or outcome.status_code >= 500
    return False if outcome.status_code is not None else None
