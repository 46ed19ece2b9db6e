"""The use-case tier: the use cases driven directly on the embedded adapters (SQLite, the
in-process queue, notifier and limiter), with real subscribers on loopback and real time."""

from __future__ import annotations

import asyncio
import shutil
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


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database migrated and holding the bootstrap client, copied for each test: a copy
    costs a millisecond, migrating and hashing the client's secret a few hundred."""
    path = tmp_path_factory.mktemp("template")

    async def prepare() -> None:
        async with open_runtime(make_settings(path, PUBLIC_URL), "api"):
            pass

    asyncio.run(prepare())
    return path / "gateway.db"


@pytest.fixture
def open_driver(tmp_path: Path, template: Path) -> OpenDriver:
    """Open a runtime on this test's database with settings overridden; restarts reuse it."""
    shutil.copyfile(template, tmp_path / "gateway.db")

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
