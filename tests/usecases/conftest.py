"""The use-case tier: the use cases driven directly on the embedded adapters (SQLite, the
in-process queue, notifier and limiter), with real subscribers on loopback and real time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from gateway.bootstrap import open_runtime
from tests.conftest import make_settings
from tests.usecases.driver import Driver

PUBLIC_URL = "http://gateway.test"

OpenDriver = Callable[..., AbstractAsyncContextManager[Driver]]


@pytest.fixture
def open_driver(tmp_path: Path) -> OpenDriver:
    """Open a runtime on this test's database with settings overridden; restarts reuse it."""

    @asynccontextmanager
    async def opened(**overrides: Any) -> AsyncIterator[Driver]:
        settings = make_settings(tmp_path, PUBLIC_URL, **overrides)
        async with open_runtime(settings, "api") as rt:
            yield Driver(rt)

    return opened


@pytest.fixture
async def app(open_driver: OpenDriver) -> AsyncIterator[Driver]:
    async with open_driver() as driver:
        yield driver
