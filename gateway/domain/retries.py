"""When a failed delivery is tried again: the retry schedule, its jitter, and the
subscriber's own Retry-After. Pure: the caller passes the time and the random draw."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.domain.delivery import Failure, Outcome

# Longest Retry-After value read: a date is about 30 characters, seconds far fewer.
MAX_RETRY_AFTER_LENGTH = 64


@dataclass(frozen=True)
class RetryPolicy:
    delays: tuple[float, ...]  # after the 1st attempt, the 2nd, ...
    jitter: float  # each delay is drawn within ±jitter of itself
    retry_after_max: float  # the longest Retry-After honoured, in seconds


def next_attempt(
    policy: RetryPolicy,
    outcome: Outcome,
    *,
    fire_and_forget: bool,
    attempt: int,
    deadline: datetime,
    now: datetime,
    draw: float,
) -> datetime | None:
    """When to try again after ``outcome`` of the ``attempt``-th attempt (counted from the
    last replay), or None to give up. ``draw`` is uniform in [0, 1).

    Fire-and-forget: every failure but a refusal is tried again. Request-response: only one
    that sent nothing (a second POST of a request the subscriber may have acted on could
    act twice), and only if the attempt is due before the invocation's deadline."""
    if outcome.failure is None or attempt > len(policy.delays):
        return None
    if outcome.failure not in (Failure.UNSENT, Failure.TRANSIENT):
        return None
    if not fire_and_forget and outcome.failure is not Failure.UNSENT:
        return None
    delay = policy.delays[attempt - 1] * (1 + policy.jitter * (2 * draw - 1))
    asked = retry_after_seconds(outcome.retry_after, now)
    if asked is not None:
        delay = max(delay, min(asked, policy.retry_after_max))
    due = now + timedelta(seconds=delay)
    if not fire_and_forget and due >= deadline:
        return None
    return due


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (RFC 9110: seconds, or an HTTP date) as seconds from ``now``;
    None if absent or unreadable."""
    if value is None or len(value) > MAX_RETRY_AFTER_LENGTH:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return max(0.0, (when - now).total_seconds())
