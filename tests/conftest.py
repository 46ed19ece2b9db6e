from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from gateway.api.app import create_app
from gateway.api.server import uvicorn_options
from gateway.settings import PREFIX, Settings
from tests.gateway_client import GatewayClient
from tests.processes import GatewayProcess
from tests.servers import Subscriber, bound_socket, serve
from tests.services import Store, distributed_store, drop_store

CLIENT_ID = "test-admin"
CLIENT_SECRET = "test-admin-secret-0123456789"
MODES = ["embedded", "distributed"]


# The tests that load the whole machine: they run one after the other, in one process.
LOADS_THE_MACHINE = "loads_the_machine"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With pytest-xdist (--dist loadgroup): a module's tests stay in one process, so a gateway
    a module shares is started once; the machine-loading tests share one process, so neither
    runs while the other loads the machine (each measures the load it makes, not both)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


def make_settings(tmp_path: Path | Store, public_url: str, **overrides: Any) -> Settings:
    store = tmp_path if isinstance(tmp_path, Store) else Store("embedded", tmp_path)
    values: dict[str, Any] = {
        "database_url": store.database_url,
        "redis_url": store.redis_url,
        "queue_name": store.queue_name,
        "public_url": public_url,
        "secret_key": "test-secret-key-not-for-production",
        "bootstrap_client_id": CLIENT_ID,
        "bootstrap_client_secret": CLIENT_SECRET,
        "response_timeout": 2.0,
        "sweep_interval": 0.2,
        "dispatch_concurrency": 64,
        # The fault test pushes thousands of requests through one client as fast as it can;
        # tests of the rate limit set their own.
        "rate_limit": 100_000.0,
        "rate_burst": 100_000,
        # Subscribers in tests listen on loopback, which the SSRF guard refuses by default.
        "allowed_target_networks": "127.0.0.0/8,::1/128",
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


@pytest.fixture
async def subscriber() -> AsyncIterator[Subscriber]:
    sub = Subscriber()
    async with serve(sub.app()) as url:
        sub.url = url
        yield sub


@asynccontextmanager
async def open_store(mode: str, path: Path) -> AsyncIterator[Store]:
    if mode == "embedded":
        yield Store("embedded", path)
        return
    store = await distributed_store(path)
    try:
        yield store
    finally:
        await drop_store(store)


@pytest.fixture(params=MODES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each test runs on the embedded default and on PostgreSQL + Redis + a worker process."""
    async with open_store(request.param, tmp_path) as store:
        yield store


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=MODES)
async def module_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Store]:
    """The same two modes, for modules that share one gateway between their tests."""
    async with open_store(request.param, tmp_path_factory.mktemp("module")) as store:
        yield store


@pytest.fixture
async def gateway(store: Store) -> AsyncIterator[GatewayClient]:
    """A gateway served over real HTTP, with an admin token (and, distributed, its worker)."""
    async with start_gateway(store) as client:
        yield client


def start_gateway(
    where: Path | Store, *, worker: bool = True, worker_log_level: str = "WARNING", **overrides: Any
) -> AbstractAsyncContextManager[GatewayClient]:
    """A gateway API process on ``where``'s state; distributed, also a worker process
    unless ``worker=False``, logging at ``worker_log_level`` to a file in ``where``'s
    directory (the client's ``worker_log``)."""

    @asynccontextmanager
    async def running() -> AsyncIterator[GatewayClient]:
        sock = bound_socket()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = make_settings(where, url, **overrides)
        directory = where.path if isinstance(where, Store) else where
        # The worker process starts (and, at the end, stops) while the API does the same.
        async with (
            worker_process(
                settings if worker else None, wait=False, log_dir=directory, log_level=worker_log_level
            ) as process,
            serve(create_app(settings), sock, **uvicorn_options(settings)),
            httpx.AsyncClient(base_url=url, timeout=60) as http,
        ):
            if process is not None:
                await wait_until_healthy(settings, process)
            client = GatewayClient(
                http,
                settings,
                worker_pid=None if process is None else process.pid,
                worker_log=None if process is None else process.log,
            )
            await client.login(CLIENT_ID, CLIENT_SECRET)
            try:
                yield client
            finally:
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGTERM)

    return running()


def settings_env(settings: Settings) -> dict[str, str]:
    return {PREFIX + f.name.upper(): str(getattr(settings, f.name)) for f in fields(settings)}


@asynccontextmanager
async def worker_process(
    settings: Settings | None,
    *,
    wait: bool = True,
    log_dir: Path | None = None,
    log_level: str = "WARNING",
) -> AsyncIterator[GatewayProcess | None]:
    """`gateway worker` as its own process, when the settings name a Redis server; ready
    (healthy) when ``wait``, else just started. Its output goes to a file in ``log_dir`` (kept;
    without one, a temporary file) and, at the end, to this test's captured stderr, which
    pytest shows when the test fails."""
    if settings is None or not settings.redis_url:
        yield None
        return
    env = {**os.environ, **settings_env(settings), "GATEWAY_LOG_LEVEL": log_level}
    descriptor, name = tempfile.mkstemp(prefix="gateway-worker-", suffix=".log", dir=log_dir)
    os.close(descriptor)
    log = Path(name)
    # Starting only forks; the wait for readiness below is asynchronous.
    process = GatewayProcess(["worker"], env, log=log)
    try:
        if wait:
            await wait_until_healthy(settings, process)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # again, harmless, if it was sent already
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        _hand_over_output(process, keep=log_dir is not None)


def _hand_over_output(process: GatewayProcess, *, keep: bool) -> None:
    """Copy a stopped process's log to the test's captured stderr; remove it unless ``keep``."""
    if output := process.output():
        print(f"--- gateway worker (pid {process.pid}) ---\n{output}", file=sys.stderr)
    if not keep and process.log is not None:
        process.log.unlink(missing_ok=True)


async def wait_until_healthy(settings: Settings, process: GatewayProcess) -> None:
    redis = Redis.from_url(settings.redis_url)
    try:
        async with asyncio.timeout(30):
            while not await redis.exists(f"{settings.queue_name}:health-check"):
                assert process.poll() is None, (
                    f"gateway worker exited with {process.returncode}: {process.output()[-4000:]}"
                )
                await asyncio.sleep(0.05)
    finally:
        await redis.aclose()
