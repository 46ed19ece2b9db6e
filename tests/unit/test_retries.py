"""domain/retries.py: which failures are tried again, when, and GATEWAY_RETRY_SCHEDULE's parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from gateway.domain.delivery import Failure, Outcome, failed
from gateway.domain.retries import RetryPolicy, next_attempt, retry_after_seconds
from gateway.settings import Settings, SettingsError

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(delays=(5.0, 300.0), jitter=0.2, retry_after_max=3600.0)


def when(
    outcome: Outcome, *, fire_and_forget: bool = True, attempt: int = 1, draw: float = 0.5
) -> float | None:
    due = next_attempt(
        POLICY,
        outcome,
        fire_and_forget=fire_and_forget,
        attempt=attempt,
        deadline=NOW + timedelta(hours=1),
        now=NOW,
        draw=draw,
    )
    return None if due is None else (due - NOW).total_seconds()


def test_the_schedule_is_followed_within_its_jitter_then_given_up() -> None:
    down = failed("HTTP 503", Failure.TRANSIENT)
    assert when(down, attempt=1) == 5.0
    assert when(down, attempt=1, draw=0.0) == pytest.approx(4.0)
    assert when(down, attempt=1, draw=0.999999) == pytest.approx(6.0, abs=1e-4)
    assert when(down, attempt=2) == 300.0
    assert when(down, attempt=3) is None  # exhausted


@pytest.mark.parametrize(
    ("failure", "fire_and_forget", "retried"),
    [
        (Failure.TRANSIENT, True, True),
        (Failure.UNSENT, True, True),
        (Failure.PERMANENT, True, False),
        (Failure.GONE, True, False),
        (Failure.UNSENT, False, True),  # nothing reached the subscriber
        (Failure.TRANSIENT, False, False),  # it may have acted on it
    ],
)
def test_what_is_tried_again(failure: Failure, fire_and_forget: bool, retried: bool) -> None:
    assert (when(failed("x", failure), fire_and_forget=fire_and_forget) is not None) is retried


def test_success_is_not_tried_again() -> None:
    assert when(Outcome("completed")) is None


def test_a_request_response_retry_due_after_its_deadline_is_not_made() -> None:
    unsent = failed("refused", Failure.UNSENT)
    due = next_attempt(
        POLICY,
        unsent,
        fire_and_forget=False,
        attempt=1,
        deadline=NOW + timedelta(seconds=3),
        now=NOW,
        draw=0.5,
    )
    assert due is None


def test_retry_after_delays_but_never_beyond_its_cap() -> None:
    throttled = Outcome("failed", error="429", failure=Failure.TRANSIENT, retry_after="120")
    assert when(throttled) == 120.0
    assert when(Outcome("failed", failure=Failure.TRANSIENT, retry_after="1")) == 5.0  # the schedule's longer
    assert when(Outcome("failed", failure=Failure.TRANSIENT, retry_after="999999999")) == 3600.0
    date = format_datetime(NOW + timedelta(seconds=600), usegmt=True)
    assert retry_after_seconds(date, NOW) == 600.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 0.0  # past: now
    for unreadable in ("soon", "-5", "1.5", "x" * 100, ""):
        assert retry_after_seconds(unreadable, NOW) is None


def test_the_schedule_setting_is_parsed_and_checked() -> None:
    assert Settings.from_env({}).retry_delays == (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
    assert Settings.from_env({"GATEWAY_RETRY_SCHEDULE": " 0.5, 2 "}).retry_delays == (0.5, 2.0)
    assert Settings.from_env({"GATEWAY_RETRY_SCHEDULE": ""}).retry_delays == ()
    for bad in ("5,,10", "five", "-1", "nan", "1e9", ",".join(["1"] * 51)):
        with pytest.raises(SettingsError, match="GATEWAY_RETRY_SCHEDULE"):
            Settings.from_env({"GATEWAY_RETRY_SCHEDULE": bad})
    for jitter in ("1", "-0.1", "nan"):
        with pytest.raises(SettingsError, match="GATEWAY_RETRY_JITTER"):
            Settings.from_env({"GATEWAY_RETRY_JITTER": jitter})
