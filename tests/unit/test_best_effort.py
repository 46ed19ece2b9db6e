"""runtime.best_effort: a failing after-commit step (Redis gone, say) is logged once when it
starts failing, in one line without a traceback, and once when it works again."""

from __future__ import annotations

import logging

import pytest

from gateway.runtime import best_effort


async def fails() -> None:
    raise ConnectionError("Redis is gone")


async def works() -> None:
    return None


async def test_an_outage_is_logged_when_it_starts_and_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway")
    for _ in range(5):
        await best_effort("queueing deliveries (test)", fails())
    await best_effort("queueing deliveries (test)", works())
    await best_effort("queueing deliveries (test)", works())
    lines = [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records]
    assert lines == [
        (
            "WARNING",
            "queueing deliveries (test) failed (ConnectionError: Redis is gone); the sweep will catch up. "
            "Not logged again until it works",
            None,
        ),
        ("WARNING", "queueing deliveries (test) works again, after 5 failure(s)", None),
    ]
