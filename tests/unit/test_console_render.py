"""The console's rendering without a server: secrets masked in inputs, outputs and answer
excerpts (even cut short), the per-minute chart's buckets, and escaping of what pages show."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from gateway.console import chart, pages
from gateway.console.masking import MASK, masked, masked_text
from gateway.domain.model import DeliveryAttempt, Invocation

NOW = datetime(2026, 1, 2, 10, 30, 15, tzinfo=UTC)


def test_values_under_secret_names_are_masked_at_any_depth() -> None:
    given = {
        "user": "ann",
        "password": "p",
        "items": [{"apiKey": "k", "name": "x"}, {"Authorization": "Bearer t"}],
        "nested": {"client_secret": {"deep": "s"}, "keyboard": "fine"},
    }
    assert masked(given) == {
        "user": "ann",
        "password": MASK,
        "items": [{"apiKey": MASK, "name": "x"}, {"Authorization": MASK}],
        "nested": {"client_secret": MASK, "keyboard": "fine"},
    }


@pytest.mark.parametrize(
    ("excerpt", "hidden", "kept"),
    [
        ('{"token": "t-1", "ok": true}', "t-1", '"ok": true'),
        ('{"ok": 1, "accessToken": "abc\\"def", "more": "text that was cut', "abc", '"ok": 1'),
        # Not only strings: what follows a secret-looking name in a cut excerpt is all hidden.
        ('{"password": 123456, "token": {"value": "abc"}, "x": "y', "123456", '"password":'),
        ('{"ok": 1, "password": "cut sho', "cut sho", '"ok": 1'),
        ("plain text, no secrets", "", "plain text, no secrets"),
    ],
)
def test_answer_excerpts_are_masked_even_when_cut_short(excerpt: str, hidden: str, kept: str) -> None:
    shown = masked_text(excerpt)
    assert kept in shown
    if hidden:
        assert hidden not in shown and MASK in shown


def test_the_chart_counts_each_minute_of_the_last_hour_by_outcome() -> None:
    rows = [
        (NOW - timedelta(seconds=5), "COMPLETED", 3),
        (NOW - timedelta(seconds=10), "FAILED", 1),
        (NOW - timedelta(minutes=59), "EXPIRED", 1),
        (NOW - timedelta(minutes=61), "COMPLETED", 1),  # older than the hour: left out
        (NOW - timedelta(minutes=1), "DISPATCHING", 1),
    ]
    buckets = chart.per_minute(rows, NOW)
    assert len(buckets) == chart.MINUTES
    assert buckets[-1] == Counter({"COMPLETED": 3, "FAILED": 1})
    assert buckets[-2] == Counter({"IN_FLIGHT": 1})
    assert buckets[0] == Counter({"EXPIRED": 1})
    drawn = chart.svg(rows, NOW)
    assert drawn.count("<rect") == 4 and "0 min ago: 1 FAILED" in drawn


def test_the_timeline_escapes_what_subscribers_sent() -> None:
    inv = Invocation(
        id="i-1",
        trigger_id="t",
        trigger_type="REQUEST_RESPONSE",
        subscription_id="s",
        subscription_name="<b>sub</b>",
        dispatch_mode="SYNC",
        type="TEST",
        status="FAILED",
        error="<script>x</script>",
        progress="<i>half</i>",
        created=NOW,
        deadline=NOW,
        queued_at=NOW,
        completed=NOW,
    )
    attempt = DeliveryAttempt(
        invocation_id="i-1",
        attempt=1,
        started=NOW,
        duration_ms=3,
        status_code=500,
        response_excerpt="<img src=x>",
    )
    shown = pages.timeline(inv, [attempt])
    for raw in ("<script>", "<img", "<i>"):
        assert raw not in shown
    assert "&lt;script&gt;x&lt;/script&gt;" in shown and "HTTP 500, 3 ms" in shown
