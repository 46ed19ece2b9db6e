"""The processes a benchmark runs: the gateway (embedded, or API + workers on PostgreSQL and
Redis), the subscriber and the forwarder, each its own OS process, as in production."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from redis.asyncio import Redis

from gateway.adapters.database import engine as db

# The test suite's servers, named by the same variables (README, Tests).
POSTGRES = os.environ.get("GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("GATEWAY_TEST_REDIS", "redis://127.0.0.1:6379/0")
CLIENT_ID, CLIENT_SECRET = "bench-admin", "bench-admin-secret-0123456789"
SECRET_KEY = "bench-secret-key-0123456789-0123456789"
# bench/ is not installed with the gateway: its apps run from this checkout.
CHECKOUT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    peak_rss_mb: float = 0.0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, *self.args],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.log.parent,
            )

    def rss_mb(self) -> float:
        """Resident memory now (and the peak seen so far, kept in ``peak_rss_mb``)."""
        assert self.popen is not None
        try:
            status = Path(f"/proc/{self.popen.pid}/status").read_text()
        except OSError:
            return 0.0
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss = int(fields.get("VmRSS", "0 kB").split()[0]) / 1024
        hwm = int(fields.get("VmHWM", "0 kB").split()[0]) / 1024
        self.peak_rss_mb = max(self.peak_rss_mb, hwm)
        return rss

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far."""
        assert self.popen is not None
        try:
            fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def check_alive(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"{self.name} exited; the end of its log ({self.log}):\n{tail}")

    async def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.rss_mb()
        self.popen.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.popen.wait, 15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            await asyncio.to_thread(self.popen.wait)


async def wait_for_http(process: Process, url: str, within: float = 30) -> None:
    async with aiohttp.ClientSession() as http, asyncio.timeout(within):
        while True:
            process.check_alive()
            try:
                async with http.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)


async def wait_for_worker(process: Process, redis_url: str, queue_name: str, within: float = 30) -> None:
    redis = Redis.from_url(redis_url)
    try:
        async with asyncio.timeout(within):
            while not await redis.exists(f"{queue_name}:health-check"):
                process.check_alive()
                await asyncio.sleep(0.05)
    finally:
        await redis.aclose()


@dataclass
class Store:
    mode: str  # embedded | distributed
    database_url: str
    redis_url: str = ""
    queue_name: str = field(default_factory=lambda: f"gw-bench-{uuid.uuid4().hex[:10]}")


async def services_missing() -> str | None:
    try:
        conn = await asyncio.wait_for(asyncpg.connect(POSTGRES), 5)
        await conn.close()
        redis = Redis.from_url(REDIS)
        try:
            await asyncio.wait_for(redis.ping(), 5)
        finally:
            await redis.aclose()
    except Exception as exc:
        return (
            f"PostgreSQL at {POSTGRES} or Redis at {REDIS} is not reachable ({type(exc).__name__}: {exc}); "
            "start them with `docker compose -f docker-compose.yml -f docker-compose.tests.yml up -d "
            "postgres redis` (or point GATEWAY_TEST_POSTGRES / GATEWAY_TEST_REDIS at yours)"
        )
    return None


@asynccontextmanager
async def open_store(mode: str, workdir: Path) -> AsyncIterator[Store]:
    """A fresh, migrated database: a SQLite file, or a new PostgreSQL database dropped after."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    if mode == "embedded":
        store = Store(mode, f"sqlite+aiosqlite:///{workdir / 'gateway.db'}")
        await migrate(store, workdir)
        yield store
        return
    name = f"gw_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    store = Store(mode, f"{base}/{name}", redis_url=REDIS)
    try:
        await migrate(store, workdir)
        yield store
    finally:
        admin = await asyncpg.connect(POSTGRES)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        redis = Redis.from_url(REDIS)
        keys = [key async for key in redis.scan_iter(match=f"{store.queue_name}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def migrate(store: Store, workdir: Path) -> None:
    engine = db.create_engine(store.database_url)
    try:
        await db.migrate(engine)
    finally:
        await engine.dispose()


@dataclass
class Gateway:
    """A running gateway: its base URL, an authorized HTTP session, and its processes."""

    url: str
    http: aiohttp.ClientSession
    processes: list[Process]
    store: Store

    def rss_mb(self) -> float:
        return sum(p.rss_mb() for p in self.processes)

    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds() for p in self.processes)

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200, **options: Any) -> Any:
        async with self.http.request(method, self.url + path, json=body, **options) as response:
            text = await response.text()
            if response.status != expect:
                raise RuntimeError(f"{method} {path}: HTTP {response.status} {text[:300]}")
            return await response.json() if text else None


@asynccontextmanager
async def run_gateway(
    store: Store, workdir: Path, *, workers: int, settings: dict[str, str] | None = None
) -> AsyncIterator[Gateway]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "GATEWAY_DATABASE_URL": store.database_url,
        "GATEWAY_REDIS_URL": store.redis_url,
        "GATEWAY_QUEUE_NAME": store.queue_name,
        "GATEWAY_SECRET_KEY": SECRET_KEY,
        "GATEWAY_PUBLIC_URL": url,
        "GATEWAY_BOOTSTRAP_CLIENT_ID": CLIENT_ID,
        "GATEWAY_BOOTSTRAP_CLIENT_SECRET": CLIENT_SECRET,
        "GATEWAY_ALLOWED_TARGET_NETWORKS": "127.0.0.0/8",
        # The load comes from one client: the per-client rate limit would cap it.
        "GATEWAY_RATE_LIMIT": "0",
        **(settings or {}),
    }
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    api = Process(
        "gateway serve", ["-m", "gateway.cli", "serve", "--port", str(port)], env, logs / "serve.log"
    )
    processes = [api]
    if store.redis_url:
        processes += [
            Process(f"gateway worker {i}", ["-m", "gateway.cli", "worker"], env, logs / f"worker{i}.log")
            for i in range(workers)
        ]
    async with AsyncExitStack() as stack:
        for process in processes:
            process.start()
            stack.push_async_callback(process.stop)
        await wait_for_http(api, url + "/health")
        for worker in processes[1:]:
            await wait_for_worker(worker, store.redis_url, store.queue_name)
        connector = aiohttp.TCPConnector(limit=0)
        http = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        async with http.post(url + "/oauth/token", data=form) as response:
            token = (await response.json())["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield Gateway(url, http, processes, store)


@asynccontextmanager
async def run_app(app: str, workdir: Path, port: int, *args: str) -> AsyncIterator[str]:
    """``bench.apps`` ``app`` as its own process on ``port``; yields its base URL."""
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(CHECKOUT), os.environ.get("PYTHONPATH")]))}
    process = Process(app, ["-m", "bench.apps", app, "--port", str(port), *args], env, logs / f"{app}.log")
    process.start()
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_for_http(process, url + "/")
        yield url
    finally:
        await process.stop()


def workspace() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="gateway-bench-")
