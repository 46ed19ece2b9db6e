"""Fault test: the distributed deployment under load, with processes killed and Redis lost.

Two `gateway serve` processes and two `gateway worker` processes share one PostgreSQL
database and one Redis queue. While a few thousand invocations of every kind are in flight
(SYNC, ASYNC and DYNAMIC request-response subscribers, and a fire-and-forget trigger with
several subscriptions), the test

1. kills -9 a worker while deliveries are under way, and starts a replacement;
2. kills -9 an API process while starts and callbacks are in flight to it, then restarts it;
3. deletes everything Redis held for this gateway (queued jobs, deferred expiry jobs,
   in-progress markers), as a Redis restart with an empty memory would;
4. meanwhile, from early in the load, takes the fire-and-forget subscribers down for 20 s:
   half of them refuse connections (their server is stopped, and started again on the same
   port), the other half answer 503. The request-response subscribers stay up. The gateway
   runs with a short retry schedule and circuit-breaker cooldown: the first deliveries fail
   and are retried, then each subscription's circuit opens and holds the rest, its probes
   failing while the outage lasts, until one after it closes the circuit.

Each fault must hit work in flight, or the run proves nothing: a kill that cut off no
delivery (or no start, or no callback) is struck again on the replacement process, and a
flush that found no job is tried again, a bounded number of times; the outage must have
failed deliveries both ways.

Then every invocation must reach exactly one terminal state, agree with what its subscriber
saw, and have been delivered more than once only where a fault cut its delivery off
(ARCHITECTURE.md, invariants 1-3). Its attempt log must hold each of its attempts once, end
with a success, and show failures only where a fault explains them: attempts cut off by the
worker kill, and fire-and-forget attempts made during the outage, which every invocation
struck by it outlived. The figures are printed (run with -s to see them).

A smaller test restarts Redis for real (connections dropped, refused for a while, memory
empty) through a TCP proxy, so the shared Redis server is not disturbed: the worker must
reconnect by itself and deliver again, and long-polls must still be woken.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import socket
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import uvicorn
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.settings import Settings
from gateway.usecases.sweep import INTERRUPTED
from tests.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    LOADS_THE_MACHINE,
    make_settings,
    settings_env,
    wait_until_healthy,
)
from tests.gateway_client import GatewayClient
from tests.processes import GatewayProcess
from tests.servers import Received, Subscriber, bound_socket, serve
from tests.services import RedisProxy, Store, distributed_store, drop_store, require_services

# Request-response triggers (one subscription each) and their subscribers' modes; the
# subscriber endpoint is named after the trigger.
REQUEST_RESPONSE = {
    "fault:sync": "SYNC",
    "fault:sync-slow": "SYNC",
    "fault:async": "ASYNC",
    "fault:async-slow": "ASYNC",
    "fault:dynamic": "DYNAMIC",
}
FIRE_AND_FORGET = "fault:notify"
# Enough for the load to outlast the outage (20 s from 10 % in), with starts to spare.
STARTS_PER_TRIGGER = 360  # 5 x 360 = 1,800 request-response invocations
NOTIFY_STARTS = 150  # x 4 subscriptions (REFUSING and UNAVAILABLE) = 600 fire-and-forget invocations
IN_FLIGHT = 20  # concurrent POST /trigger-invocations/start
DEADLINE = "PT5M"  # generous: no invocation should expire
RESPONSE_TIMEOUT = 2.0
SWEEP_INTERVAL = 0.2
# When each fault strikes, as a share of the starts acknowledged so far.
KILL_WORKER_AT = 0.2
KILL_API_AT = 0.45
LOSE_REDIS_AT = 0.7
OPEN_AT_WORKER_KILL = 10  # the killed worker's deliveries open at its subscribers
HOLD_AT_MOST = 1.0  # seconds a subscriber holds a delivery for the kill: under the time limit
TRIES = 3  # strikes of one fault before the test gives up on it hitting work in flight
# The subscriber outage: from when OUTAGE_AT of the starts are acknowledged, for OUTAGE seconds,
# the fire-and-forget subscribers are down, REFUSING ones refusing connections and
# UNAVAILABLE ones answering 503.
OUTAGE_AT = 0.1
OUTAGE = 20.0
REFUSING = frozenset({"notify-0", "notify-1"})
UNAVAILABLE = frozenset({"notify-2", "notify-3"})
# Attempts 1, 2, 4, 8, ... s apart (within 20 %): 7 attempts may be needed to outlast the
# outage (when every draw is low), 9 are allowed, so a worker kill may also cut one off.
# (Needed only if the circuit breaker lets many deliveries fail: by default it opens after 5.)
RETRY_SCHEDULE = "1,2,4,8,8,8,8,8"
RETRY_JITTER = 0.2
# An open circuit's probe every 5 s (30 s by default): a few fail during the outage, and the
# one after it comes within 5 s.
BREAKER_COOLDOWN = 5.0
# An attempt's log entry says when the gateway began it, not when it reached the subscriber:
# one begun less than this before the outage ended may have arrived after it. (One not sent
# within RESPONSE_TIMEOUT fails of that time limit.)
OUTAGE_EDGE = RESPONSE_TIMEOUT + 0.5
DRAIN_WITHIN = 90.0
CALLBACK_PATIENCE = 60.0
TERMINAL = frozenset({"COMPLETED", "FAILED", "EXPIRED"})


# --- processes ------------------------------------------------------------------------------


@dataclass
class Process:
    """A `gateway` subprocess that can be killed -9 and started again with the same settings."""

    name: str
    args: list[str]
    settings: Settings
    log: Path
    popen: GatewayProcess | None = None

    def spawn(self) -> None:
        env = {**os.environ, **settings_env(self.settings), "GATEWAY_LOG_LEVEL": "WARNING"}
        self.popen = GatewayProcess(self.args, env, log=self.log, cwd=self.log.parent)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    async def kill9(self) -> None:
        assert self.popen is not None and self.alive, f"{self.name} is not running"
        self.popen.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.popen.wait)

    async def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            await asyncio.to_thread(self.popen.wait, 10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            await asyncio.to_thread(self.popen.wait)

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Cluster:
    """The gateway's processes; every one is stopped in `stop`, whatever happened."""

    def __init__(self, store: Store, logs: Path) -> None:
        self.store = store
        self.logs = logs
        self.processes: list[Process] = []

    def _process(self, name: str, args: list[str], public_url: str) -> Process:
        settings = make_settings(
            self.store,
            public_url,
            response_timeout=RESPONSE_TIMEOUT,
            sweep_interval=SWEEP_INTERVAL,
            retry_schedule=RETRY_SCHEDULE,
            retry_jitter=RETRY_JITTER,
            breaker_cooldown=BREAKER_COOLDOWN,
        )
        process = Process(name, args, settings, self.logs / f"{name}.log")
        self.processes.append(process)
        process.spawn()
        return process

    async def api(self, name: str, port: int, http: httpx.AsyncClient) -> Process:
        url = f"http://127.0.0.1:{port}"
        process = self._process(name, ["serve", "--port", str(port)], url)
        await wait_for_api(process, url, http)
        return process

    async def worker(self, name: str, public_url: str) -> Process:
        """A worker whose callbackURLs point at ``public_url`` (one of the API processes)."""
        process = self._process(name, ["worker"], public_url)
        assert process.popen is not None
        await wait_until_healthy(process.settings, process.popen)
        return process

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.processes), return_exceptions=True)

    def log_lines(self, needle: str) -> int:
        return sum(p.log.read_text(errors="replace").count(needle) for p in self.processes if p.log.exists())


async def wait_for_api(process: Process, url: str, http: httpx.AsyncClient) -> None:
    async with asyncio.timeout(30):
        while True:
            assert process.alive, f"{process.name} exited during start-up:\n{process.tail()}"
            try:
                # Live, not ready: an API process may start before any worker does.
                if (await http.get(f"{url}/health/live")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


def free_port() -> int:
    with bound_socket() as sock:
        return int(sock.getsockname()[1])


class Requests:
    """The requests a client has open to each API process, and which of them got no answer
    (refused, or cut off): what tells whether killing a process hit requests in flight."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.open: defaultdict[str, set[int]] = defaultdict(set)  # by API base URL
        self.unanswered: set[int] = set()
        self._numbers = itertools.count()

    async def post(self, url: str, **kwargs: Any) -> httpx.Response | None:
        api = _base(url)
        number = next(self._numbers)
        self.open[api].add(number)
        try:
            return await self.client.post(url, **kwargs)
        except httpx.TransportError:
            self.unanswered.add(number)
            return None
        finally:
            self.open[api].discard(number)

    async def cut_off(self, snapshot: set[int], api: str) -> int:
        """How many of ``snapshot`` (requests open to ``api`` when it was killed) got no answer,
        once they have all ended."""
        await until(lambda: not snapshot & self.open[api], 30)
        return len(snapshot & self.unanswered)


# --- subscribers ----------------------------------------------------------------------------


@dataclass
class Seen:
    """What the subscribers saw of one invocation."""

    deliveries: int = 0
    unavailable: int = 0  # deliveries answered 503 during the outage (not counted above)
    answered: list[Any] = field(default_factory=list)  # outputs answered with 200
    accepted: list[Any] = field(default_factory=list)  # outputs whose callback got 204
    refused: list[str] = field(default_factory=list)  # callbacks answered 4xx


class Subscribers:
    """Every subscriber endpoint, POST /{kind}: on one loopback server, but for the REFUSING
    ones, on a server of their own that the outage stops.

    Each delivery gets a distinct output (it names the delivery's number), so a status shows
    which answer or callback the gateway kept. ASYNC and DYNAMIC-202 subscribers call back a
    little later, to the callbackURL; when that API process is down they try the other one,
    as a subscriber behind a load balancer would. For a worker's kill, they hold its
    deliveries open, and tell which of them it cut off. During the outage, the UNAVAILABLE
    ones answer 503.
    """

    def __init__(self, apis: Sequence[str]) -> None:
        self.apis = list(apis)
        self.url = ""
        self.refusing_url = ""  # the REFUSING subscribers' server
        self.unavailable = False  # the outage is on: UNAVAILABLE subscribers answer 503
        self.unavailable_answers = 0
        self.seen: defaultdict[str, Seen] = defaultdict(Seen)
        self.delivering: set[int] = set()  # deliveries being answered, by number
        # While a worker is about to be killed, its deliveries (their callbackURLs name its API
        # process) wait here before they are answered.
        self.held: set[int] = set()
        self._holding: str | None = None
        self._released = asyncio.Event()
        # Deliveries whose sender hung up before the answer: a worker died mid-request.
        self.orphaned: dict[int, str] = {}  # delivery number -> invocation id
        self.callback_retries = 0
        self.lost_callbacks: list[str] = []
        self.callbacks: set[asyncio.Task[None]] = set()
        self._dynamic_turn = itertools.count()
        self._numbers = itertools.count()
        self.requests = Requests(httpx.AsyncClient(timeout=httpx.Timeout(10, pool=None)))

    @contextmanager
    def holding(self, api: str) -> Iterator[None]:
        """Hold every delivery whose callbackURL is on ``api`` until the block ends."""
        self._holding = f"{api}/"
        self._released.clear()
        try:
            yield
        finally:
            self._holding = None
            self._released.set()

    async def cut_off(self, deliveries: set[int]) -> set[str]:
        """Once ``deliveries`` have ended (within the longest pause a subscriber takes), the
        invocations of those whose sender hung up before the answer."""
        await until(lambda: not deliveries & self.delivering, 10)
        return {self.orphaned[n] for n in deliveries if n in self.orphaned}

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{kind}", self._handle, methods=["POST"])])

    def endpoint(self, kind: str) -> str:
        return f"{self.refusing_url if kind in REFUSING else self.url}/{kind}"

    async def _handle(self, request: Request) -> Response:
        kind: str = request.path_params["kind"]
        meta = (await request.json())["_metadata"]
        number = next(self._numbers)
        self.delivering.add(number)
        try:
            if self._holding and meta.get("callbackURL", "").startswith(self._holding):
                self.held.add(number)
                try:
                    await self._released.wait()
                finally:
                    self.held.discard(number)
            response = await self._answer(kind, meta)
            if await request.is_disconnected():
                self.orphaned[number] = meta["invocationId"]
            return response
        finally:
            self.delivering.discard(number)

    async def _answer(self, kind: str, meta: dict[str, Any]) -> Response:
        seen = self.seen[meta["invocationId"]]
        if self.unavailable and kind in UNAVAILABLE:
            seen.unavailable += 1
            self.unavailable_answers += 1
            return Response("down for maintenance", status_code=503)
        seen.deliveries += 1
        output = {"approver": f"{kind}/{meta['invocationId'][:8]}", "delivery": seen.deliveries}
        if kind.startswith("notify"):
            await asyncio.sleep(random.uniform(0, 0.1))
            return JSONResponse({})
        if kind.endswith("-slow") or kind == "dynamic":
            await asyncio.sleep(random.uniform(0, 0.3))
        if kind.startswith("sync") or (kind == "dynamic" and next(self._dynamic_turn) % 2 == 0):
            seen.answered.append(output)
            return JSONResponse(output)
        # Acknowledge now, answer later. A subscriber that received the delivery calls
        # back even if the gateway process that sent it died meanwhile.
        delay = random.uniform(0.2, 1.0) if kind.endswith("-slow") else random.uniform(0.02, 0.2)
        self._call_back_later(meta, output, delay)
        return JSONResponse({}, status_code=202 if kind == "dynamic" else 200)

    def _call_back_later(self, meta: dict[str, Any], output: Any, delay: float) -> None:
        task = asyncio.create_task(
            self._call_back(meta["invocationId"], meta["callbackURL"], meta["secret"], output, delay)
        )
        self.callbacks.add(task)
        task.add_done_callback(self.callbacks.discard)

    async def _call_back(self, invocation_id: str, url: str, secret: str, output: Any, delay: float) -> None:
        await asyncio.sleep(delay)
        seen = self.seen[invocation_id]
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + CALLBACK_PATIENCE
        pause = 0.05
        while True:
            response = await self.requests.post(url, json={"secret": secret, "output": output})
            if response is not None and response.status_code < 500:
                if response.status_code == 204:
                    seen.accepted.append(output)
                else:
                    seen.refused.append(f"HTTP {response.status_code}: {response.text[:300]}")
                return
            self.callback_retries += 1
            if loop.time() > give_up_at:
                self.lost_callbacks.append(invocation_id)
                return
            url = self._elsewhere(url)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _elsewhere(self, url: str) -> str:
        """The same callback path on the next API process."""
        here = _base(url)
        others = [api for api in self.apis if api != here] or self.apis
        return others[0] + url[len(here) :]

    async def settle(self, within: float) -> None:
        async with asyncio.timeout(within):
            while self.callbacks:
                await asyncio.gather(*list(self.callbacks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self.callbacks):
            task.cancel()
        await asyncio.gather(*list(self.callbacks), return_exceptions=True)
        await self.requests.client.aclose()


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Restartable:
    """A loopback server (tests.servers.serve's uvicorn) that can be stopped, its port then
    refusing connections, and started again on the same port. Meanwhile a socket bound to the
    port, not listening, keeps it from being taken (a connection to it is refused as to a
    free port): bound before the server stops, so the port is never free."""

    def __init__(self, app: Starlette) -> None:
        self._app = app
        self._sock = _shared_port()
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task[None] | None = None
        self.left_open = 0  # connections uvicorn's shutdown left open, aborted by stop()

    async def start(self) -> None:
        assert self._serving is None, "already serving"
        config = uvicorn.Config(self._app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = server = uvicorn.Server(config)
        self._serving = serving = asyncio.create_task(server.serve(sockets=[self._sock]))
        while not server.started:
            if serving.done():
                serving.result()  # start-up failed: raise its error here
                raise RuntimeError("server exited during start-up")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop serving: no connection is left open, and new ones are refused."""
        assert self._server is not None and self._serving is not None, "not serving"
        server, serving, self._serving = self._server, self._serving, None
        held = _shared_port(self.port)
        server.should_exit = True
        await serving  # uvicorn closes the listening socket
        # uvicorn's shutdown closes the connections it knows of when it begins; one accepted
        # a moment before is not known yet, and keeps serving, kept alive by the gateway's
        # deliveries. (Before this, deliveries once succeeded seconds into the outage, most
        # likely through such a connection.)
        for connection in list(server.server_state.connections):
            connection.transport.abort()
            self.left_open += 1
        self._sock = held

    async def close(self) -> None:
        if self._serving is not None:
            await self.stop()
        self._sock.close()


def _shared_port(port: int = 0) -> socket.socket:
    """tests.servers.bound_socket, on a given port, and with SO_REUSEPORT: another such socket
    can be bound to the port while this one listens."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    return sock


# --- producer -------------------------------------------------------------------------------


class Producer:
    """Raises triggers through every API process, IN_FLIGHT at a time. A start that gets no
    answer (its API process died) or a 5xx is sent again to the next API process, as a
    producer behind a load balancer would; the lost attempt may still have created
    invocations, which the gateway must then deliver too."""

    def __init__(self, apis: Sequence[str], token: str) -> None:
        self.apis = list(apis)
        self.acknowledged = 0
        self.retries = 0
        self.finished = 0.0  # time.monotonic() when every start was acknowledged
        self.ids: list[str] = []
        self.requests = Requests(
            httpx.AsyncClient(
                timeout=30,
                headers={"authorization": f"Bearer {token}"},
                limits=httpx.Limits(max_connections=IN_FLIGHT * 2),
            )
        )

    async def run(self, plan: Sequence[tuple[str, int]]) -> None:
        limit = asyncio.Semaphore(IN_FLIGHT)
        try:
            async with asyncio.TaskGroup() as group:
                for i, (trigger_id, n) in enumerate(plan):
                    group.create_task(self._start(limit, i, trigger_id, n))
            self.finished = time.monotonic()
        finally:
            await self.requests.client.aclose()

    async def _start(self, limit: asyncio.Semaphore, i: int, trigger_id: str, n: int) -> None:
        body = {"triggerId": trigger_id, "input": {"n": n}, "contentJson": {"start": i}}
        async with limit:
            for attempt in range(100):
                api = self.apis[(i + attempt) % len(self.apis)]
                response = await self.requests.post(f"{api}/beta/trigger-invocations/start", json=body)
                if response is not None and response.status_code < 500:
                    assert response.status_code == 200, response.text
                    self.ids += [invocation["id"] for invocation in response.json()]
                    self.acknowledged += 1
                    return
                self.retries += 1
                await asyncio.sleep(0.1)
        raise AssertionError(f"start {i} of {trigger_id} got no answer from any API process")


# --- the database and Redis -----------------------------------------------------------------


def asyncpg_dsn(store: Store) -> str:
    return store.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def status_counts(db: asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch("SELECT status, count(*) AS n FROM invocations GROUP BY status")
    return {row["status"]: row["n"] for row in rows}


def describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{status.lower()} {n}" for status, n in sorted(counts.items())) or "none"


async def forget_jobs(redis: Redis, store: Store, invocation_ids: set[str]) -> int:
    """Delete everything Redis holds for this gateway: its queue and health keys, and arq's
    job, in-progress, retry and result keys of its invocations' jobs."""
    keys = [key async for key in redis.scan_iter(match=f"{store.queue_name}*", count=1000)]
    async for key in redis.scan_iter(match="arq:*", count=1000):
        job_id = key.decode().split(":", 2)[-1]  # arq:<kind>:dispatch:<invocation id>
        function, _, invocation_id = job_id.partition(":")
        if function in ("dispatch", "expire") and invocation_id in invocation_ids:
            keys.append(key)
    for start in range(0, len(keys), 1000):
        await redis.delete(*keys[start : start + 1000])
    return len(keys)


# Deletes, atomically, every key of one arq queue: the queue itself, its health key, and the
# job, in-progress, retry and result keys of every job in it (a job stays in the queue until it
# finishes, so that is every job queued, deferred or running). Atomic, as a restart is: a job
# enqueued meanwhile cannot keep its job key and lose its place in the queue. Returns how
# many jobs the queue held and how many keys were deleted.
FLUSH_QUEUE = """
local jobs = redis.call('ZRANGE', KEYS[1], 0, -1)
local deleted = 0
for _, job in ipairs(jobs) do
  for _, prefix in ipairs({'arq:job:', 'arq:in-progress:', 'arq:retry:', 'arq:result:'}) do
    deleted = deleted + redis.call('DEL', prefix .. job)
  end
end
for _, key in ipairs(redis.call('KEYS', KEYS[1] .. '*')) do
  deleted = deleted + redis.call('DEL', key)
end
return {#jobs, deleted}
"""


async def flush_redis(redis: Redis, store: Store) -> tuple[int, int]:
    """What a Redis restart with an empty memory leaves of this gateway's queue: nothing.
    (Only this gateway's keys: other tests may share the server.) The jobs lost (queued,
    deferred or running) and the keys deleted."""
    jobs, deleted = await redis.eval(FLUSH_QUEUE, 1, store.queue_name)  # type: ignore[misc]
    return int(jobs), int(deleted)


async def clean_up(store: Store) -> None:
    """Drop the database, and every Redis key of this gateway (arq's job keys too)."""
    redis = Redis.from_url(store.redis_url)
    try:
        db = await asyncpg.connect(asyncpg_dsn(store))
        try:
            ids = {row["id"] for row in await db.fetch("SELECT id FROM invocations")}
        finally:
            await db.close()
        await forget_jobs(redis, store, ids)
    finally:
        await redis.aclose()
        await drop_store(store)


# --- the scenario ---------------------------------------------------------------------------


NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass
class Outage:
    """When the fire-and-forget subscribers were down, by the wall clock (as the attempt log
    has it), and the invocations' states when it began and ended."""

    going: datetime = NEVER  # UNAVAILABLE ones answer 503 from here on
    down: datetime = NEVER  # ... and the REFUSING ones' server has stopped
    coming: datetime = NEVER  # both about to come back
    back: datetime = NEVER  # both back
    began_at: float = 0.0  # time.monotonic() at ``going``
    back_at: float = 0.0  # ... at ``back``
    at_start: dict[str, int] = field(default_factory=dict)
    at_end: dict[str, int] = field(default_factory=dict)


@dataclass
class Faults:
    killed: list[Process] = field(default_factory=list)  # every process killed, in order
    worker_kills: int = 0  # strikes until one cut a delivery off
    delivering_at_kill: int = 0  # its deliveries held open when that worker died
    # Deliveries whose connection the kill dropped while the subscriber was answering.
    orphaned: set[str] = field(default_factory=set)
    # DISPATCHING when a worker died (a superset: some were the other worker's)
    cut_off: set[str] = field(default_factory=set)
    at_worker_kill: dict[str, int] = field(default_factory=dict)
    api_kills: int = 0
    at_api_kill: dict[str, int] = field(default_factory=dict)
    # Requests in flight to the API process when it died that got no answer.
    starts_to_killed_api: int = 0
    callbacks_to_killed_api: int = 0
    redis_flushes: int = 0
    at_redis_flush: dict[str, int] = field(default_factory=dict)
    redis_jobs_lost: int = 0
    redis_keys_lost: int = 0
    api_restarted_after: float = 0.0
    outage: Outage = field(default_factory=Outage)
    last_fault: float = 0.0  # time.monotonic()


async def until(condition: Callable[[], bool], within: float, *, every: float = 0.02) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (the counters are plain attributes)
            await asyncio.sleep(every)


async def inject_faults(
    cluster: Cluster,
    refusing: Restartable,
    apis: dict[str, Process],
    workers: list[Process],
    producer: Producer,
    subscribers: Subscribers,
    db: asyncpg.Connection,
    http: httpx.AsyncClient,
    starts: int,
) -> Faults:
    faults = Faults()
    a_url = next(iter(apis))
    # The outage runs beside the other faults, on its own database connection.
    outage = asyncio.create_task(
        subscriber_outage(refusing, subscribers, producer, cluster.store, starts, faults)
    )
    try:
        await until(lambda: producer.acknowledged >= KILL_WORKER_AT * starts, 60)
        await kill_a_worker(cluster, workers, subscribers, db, a_url, faults)
        await until(lambda: producer.acknowledged >= KILL_API_AT * starts, 60)
        restart = await kill_an_api(apis[a_url], a_url, producer, subscribers, db, http, faults)
        try:
            await until(lambda: producer.acknowledged >= LOSE_REDIS_AT * starts, 60)
            await lose_redis(cluster.store, db, faults)
            await restart
        finally:
            restart.cancel()
        await outage
    finally:
        outage.cancel()
    faults.last_fault = max(faults.last_fault, faults.outage.back_at)
    return faults


async def subscriber_outage(
    refusing: Restartable,
    subscribers: Subscribers,
    producer: Producer,
    store: Store,
    starts: int,
    faults: Faults,
) -> None:
    """From OUTAGE_AT of the starts on, the fire-and-forget subscribers are down for OUTAGE
    seconds: the REFUSING ones' server is stopped, the UNAVAILABLE ones answer 503."""
    outage = faults.outage
    await until(lambda: producer.acknowledged >= OUTAGE_AT * starts, 60)
    db = await asyncpg.connect(asyncpg_dsn(store))
    try:
        outage.going, outage.began_at = datetime.now(UTC), time.monotonic()
        subscribers.unavailable = True
        await refusing.stop()
        outage.down = datetime.now(UTC)
        stopped_in = (outage.down - outage.going).total_seconds()
        outage.at_start = await status_counts(db)
        print(
            f"[fault] fire-and-forget subscribers down for {OUTAGE:g} s ({', '.join(sorted(REFUSING))} "
            f"refusing connections, their server stopped in {stopped_in:.1f} s with "
            f"{refusing.left_open} connections left open, aborted; {', '.join(sorted(UNAVAILABLE))} "
            f"answering 503), {producer.acknowledged} starts in: {describe(outage.at_start)}",
            flush=True,
        )
        await asyncio.sleep(OUTAGE - (time.monotonic() - outage.began_at))
        outage.coming = datetime.now(UTC)
        await refusing.start()
        subscribers.unavailable = False
        outage.back, outage.back_at = datetime.now(UTC), time.monotonic()
        outage.at_end = await status_counts(db)
        print(
            f"[fault] fire-and-forget subscribers back after {outage.back_at - outage.began_at:.1f} s, "
            f"{subscribers.unavailable_answers} deliveries answered 503: {describe(outage.at_end)}",
            flush=True,
        )
    finally:
        await db.close()


async def kill_a_worker(
    cluster: Cluster,
    workers: list[Process],
    subscribers: Subscribers,
    db: asyncpg.Connection,
    a_url: str,
    faults: Faults,
) -> None:
    """kill -9 a worker in the middle of its deliveries, and start a replacement; strike the
    replacement again until a kill cuts off a delivery its subscriber was answering."""
    victim = workers[0]
    for strike in range(1, TRIES + 1):
        held, killed_at = await kill_holding(victim, subscribers, a_url, db, faults)
        faults.killed.append(victim)
        faults.worker_kills = strike
        faults.delivering_at_kill = len(held)
        faults.at_worker_kill = await status_counts(db)
        # By the time the held deliveries have ended, a commit the worker sent just before dying
        # has landed: look again (the first look was before any of them was answered or called back).
        orphaned = await subscribers.cut_off(held)
        faults.orphaned |= orphaned
        faults.cut_off |= await dispatching(db, killed_at)
        print(
            f"[fault] killed -9 {victim.name} with {len(held)} of its deliveries open, {len(orphaned)} "
            f"of them cut off; {len(faults.cut_off)} invocations dispatching: "
            f"{describe(faults.at_worker_kill)}",
            flush=True,
        )
        victim = await cluster.worker(f"worker-{len(workers) + 1}", a_url)
        workers.append(victim)
        if orphaned:
            return
    raise AssertionError(f"{TRIES} worker kills cut off no delivery in flight")


async def kill_holding(
    victim: Process, subscribers: Subscribers, api: str, db: asyncpg.Connection, faults: Faults
) -> tuple[set[int], datetime]:
    """kill -9 ``victim`` while its subscribers hold OPEN_AT_WORKER_KILL of its deliveries
    (those whose callbackURL is on ``api``, the victim's API process) open. A delivery is held
    for HOLD_AT_MOST seconds at most, so that the victim's time limit has not ended it when the
    kill comes; when fewer arrived meanwhile, they are answered and the hold begins again."""
    for _ in range(20):
        with subscribers.holding(api):
            with suppress(TimeoutError):
                await until(lambda: len(subscribers.held) >= OPEN_AT_WORKER_KILL, HOLD_AT_MOST)
            held = set(subscribers.held)
            if len(held) >= OPEN_AT_WORKER_KILL:
                await victim.kill9()
                killed_at = datetime.now(UTC)
                # Before any held delivery is answered or called back, which may complete it.
                faults.cut_off |= await dispatching(db, killed_at)
                return held, killed_at
        await asyncio.sleep(0.5)
    raise AssertionError(f"{victim.name} never had {OPEN_AT_WORKER_KILL} deliveries open at once")


async def dispatching(db: asyncpg.Connection, before: datetime) -> set[str]:
    rows = await db.fetch(
        "SELECT id FROM invocations WHERE status = 'DISPATCHING' AND dispatched_at <= $1", before
    )
    return {row["id"] for row in rows}


async def kill_an_api(
    api: Process,
    url: str,
    producer: Producer,
    subscribers: Subscribers,
    db: asyncpg.Connection,
    http: httpx.AsyncClient,
    faults: Faults,
) -> asyncio.Task[None]:
    """kill -9 an API process while starts and callbacks are in flight to it, until a kill
    leaves both a start and a callback without an answer; the task restarting it."""

    async def restart(down_at: float) -> None:
        await asyncio.sleep(1.5)
        api.spawn()
        await wait_for_api(api, url, http)
        faults.api_restarted_after = time.monotonic() - down_at
        print(f"[fault] {api.name} back after {faults.api_restarted_after:.1f} s", flush=True)

    for strike in range(1, TRIES + 1):
        # Callbacks take milliseconds: look often for one in flight.
        await until(
            lambda: bool(producer.requests.open[url] and subscribers.requests.open[url]), 30, every=0.005
        )
        starts, callbacks = set(producer.requests.open[url]), set(subscribers.requests.open[url])
        await api.kill9()
        down_at = time.monotonic()
        faults.killed.append(api)
        faults.api_kills = strike
        faults.at_api_kill = await status_counts(db)
        faults.starts_to_killed_api = await producer.requests.cut_off(starts, url)
        faults.callbacks_to_killed_api = await subscribers.requests.cut_off(callbacks, url)
        print(
            f"[fault] killed -9 {api.name} with {len(starts)} starts and {len(callbacks)} callbacks in "
            f"flight to it, {faults.starts_to_killed_api} and {faults.callbacks_to_killed_api} of them "
            f"left unanswered: {describe(faults.at_api_kill)}",
            flush=True,
        )
        restarting = asyncio.create_task(restart(down_at))
        if faults.starts_to_killed_api and faults.callbacks_to_killed_api:
            return restarting
        await restarting
    raise AssertionError(f"{TRIES} kills of {api.name} did not each cut off a start and a callback")


async def lose_redis(store: Store, db: asyncpg.Connection, faults: Faults) -> None:
    """Redis loses everything this gateway had in it; again, until that was some job."""
    redis = Redis.from_url(store.redis_url)
    try:
        for flush in range(1, TRIES + 1):
            faults.redis_flushes = flush
            faults.at_redis_flush = await status_counts(db)
            faults.redis_jobs_lost, faults.redis_keys_lost = await flush_redis(redis, store)
            faults.last_fault = time.monotonic()
            print(
                f"[fault] flushed Redis: {faults.redis_jobs_lost} jobs and {faults.redis_keys_lost} keys "
                f"lost; {describe(faults.at_redis_flush)}",
                flush=True,
            )
            if faults.redis_jobs_lost:
                return
            await asyncio.sleep(0.5)
    finally:
        await redis.aclose()
    raise AssertionError(f"{TRIES} flushes of Redis found no job to lose")


async def drain(db: asyncpg.Connection, workers: Sequence[Process], within: float) -> dict[str, int]:
    """Wait until every invocation is terminal, printing progress."""
    last_print = 0.0
    counts: dict[str, int] = {}
    try:
        async with asyncio.timeout(within):
            while True:
                counts = await status_counts(db)
                if set(counts) <= TERMINAL:
                    return counts
                # In the distributed mode only workers deliver and sweep: without one, wait no more.
                assert any(w.alive for w in workers), (
                    f"every worker has exited, {describe(counts)}:\n" + "\n".join(w.tail() for w in workers)
                )
                if time.monotonic() - last_print >= 3:
                    print(f"[drain] {describe(counts)}", flush=True)
                    last_print = time.monotonic()
                await asyncio.sleep(0.25)
    except TimeoutError:
        stuck = await db.fetch(
            "SELECT id, status, attempts, queued_at, dispatched_at FROM invocations "
            "WHERE status NOT IN ('COMPLETED', 'FAILED', 'EXPIRED') ORDER BY created LIMIT 10"
        )
        raise AssertionError(
            f"not every invocation is terminal {within:g} s after the load: {describe(counts)}; "
            f"e.g. {[dict(row) for row in stuck]}"
        ) from None


async def all_statuses(http: httpx.AsyncClient, api: str, trigger_ids: Sequence[str]) -> list[dict[str, Any]]:
    statuses: list[dict[str, Any]] = []
    for trigger_id in trigger_ids:
        offset = 0
        while True:
            response = await http.get(
                f"{api}/beta/trigger-invocations/status",
                params={"filters": f'triggerId eq "{trigger_id}"', "limit": 250, "offset": offset},
            )
            assert response.status_code == 200, response.text
            page: list[dict[str, Any]] = response.json()
            statuses += page
            offset += len(page)
            if len(page) < 250:
                break
    return statuses


def check(
    statuses: list[dict[str, Any]], producer: Producer, subscribers: Subscribers, faults: Faults
) -> tuple[list[str], Counter[str]]:
    """Every problem found, and the repeats (deliveries beyond the first) per invocation."""
    problems: list[str] = []
    by_id = {status["id"]: status for status in statuses}
    if len(by_id) != len(statuses):
        problems.append(f"{len(statuses) - len(by_id)} invocation(s) listed twice")
    if len(set(producer.ids)) != len(producer.ids):
        problems.append("/start returned an invocation id twice")
    missing = set(producer.ids) - set(by_id)
    if missing:
        problems.append(f"{len(missing)} acknowledged invocation(s) do not exist, e.g. {sorted(missing)[:3]}")
    unknown = set(subscribers.seen) - set(by_id)
    if unknown:
        problems.append(f"subscribers received {len(unknown)} invocation(s) the gateway does not list")
    if subscribers.lost_callbacks:
        problems.append(f"{len(subscribers.lost_callbacks)} callback(s) never got an answer")

    repeats: Counter[str] = Counter()
    for invocation_id, status in by_id.items():
        seen = subscribers.seen.get(invocation_id, Seen())
        state = status["status"]
        complete = status["completeInvocationInput"]
        where = f"{invocation_id} ({status['triggerId']}, {state})"
        if state not in TERMINAL or status["completed"] is None or complete is None:
            problems.append(f"{where} is not terminal: completed={status['completed']}")
            continue
        if state != "COMPLETED":
            problems.append(f"{where}: {complete['localizedError']}")
            continue
        if seen.deliveries < 1:
            problems.append(f"{where} completed but its subscriber never saw it")
        if seen.deliveries > 1:
            repeats[invocation_id] = seen.deliveries - 1
            if invocation_id not in faults.cut_off:
                problems.append(
                    f"{where} delivered {seen.deliveries} times but no fault cut its delivery off"
                )
        # Deliveries happen only after a claim (PENDING -> DISPATCHING), which counts an attempt.
        if status["attempts"] < seen.deliveries + seen.unavailable:
            problems.append(
                f"{where}: attempts={status['attempts']} < {seen.deliveries} deliveries seen "
                f"and {seen.unavailable} answered 503"
            )
        if seen.refused and invocation_id not in faults.cut_off:
            problems.append(f"{where}: callback refused without a fault: {seen.refused}")
        output = complete["output"]
        if complete["localizedError"] is not None:
            problems.append(f"{where} has an error: {complete['localizedError']}")
        if status["triggerId"] == FIRE_AND_FORGET:
            if output is not None:
                problems.append(f"{where}: fire-and-forget output {output!r}, expected null")
            continue
        mode = REQUEST_RESPONSE[status["triggerId"]]
        kept = {"SYNC": seen.answered, "ASYNC": seen.accepted, "DYNAMIC": seen.answered + seen.accepted}[mode]
        if output not in kept:
            problems.append(
                f"{where}: output {output!r} is none of what the subscriber answered {seen.answered} "
                f"or called back {seen.accepted}"
            )
        if any(accepted != output for accepted in seen.accepted):
            problems.append(f"{where}: callbacks {seen.accepted} were accepted but the output is {output!r}")
    return problems, repeats


@dataclass(frozen=True)
class Attempt:
    """One entry of the attempt log (table delivery_attempts)."""

    attempt: int
    started: datetime
    status_code: int | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


async def attempt_log(db: asyncpg.Connection) -> dict[str, list[Attempt]]:
    """Every invocation's logged attempts, in the order GET .../attempts lists them."""
    rows = await db.fetch(
        "SELECT invocation_id, attempt, started, status_code, error FROM delivery_attempts "
        "ORDER BY attempt, id"
    )
    log: defaultdict[str, list[Attempt]] = defaultdict(list)
    for row in rows:
        log[row["invocation_id"]].append(
            Attempt(row["attempt"], row["started"], row["status_code"], row["error"])
        )
    return dict(log)


@dataclass
class Struck:
    """What the outage did to the fire-and-forget deliveries, by the attempt log."""

    invocations: set[str] = field(default_factory=set)  # with an attempt the outage failed
    refused: int = 0  # attempts failed with no answer (refused, or dropped as the server stopped)
    errors: Counter[str] = field(default_factory=Counter)  # ... by the error's name
    unavailable: int = 0  # attempts answered 503
    first_while_down: int = 0  # invocations whose first attempt was made while it was down
    # Invocations created while it was down but first tried only after it (held back, as a
    # circuit breaker would hold them).
    held: int = 0
    attempts: Counter[int] = field(default_factory=Counter)  # struck invocations by attempts
    last_completed: datetime = NEVER  # of every fire-and-forget invocation


@dataclass
class LogFlaws:
    """A flaw of the gateway's attempt log, seen only where the worker kill cut attempts off:
    tolerated there, and counted (see check_attempts)."""

    unlogged: set[str] = field(default_factory=set)  # the last attempt is missing


def check_attempts(
    statuses: list[dict[str, Any]], log: dict[str, list[Attempt]], kinds: dict[str, str], faults: Faults
) -> tuple[list[str], Struck, LogFlaws]:
    """Every problem in the attempt log, what the outage did, and the flaws tolerated.

    Each attempt counted in an invocation's ``attempts`` is logged, once: by the attempt
    itself, with its outcome, or by the sweep when a kill cut it off (an attempt given back
    unsent is uncounted as well as unlogged). A completed invocation's last logged attempt
    succeeded. An attempt failed only where a fault explains it: cut off by the worker kill,
    or a fire-and-forget attempt made during the outage, failed as its subscriber was down.

    The gateway falls short of "each attempt, once" where a kill cut attempts off, one way,
    tolerated for the invocations the worker kill cut off (and counted): a cut-off attempt
    never logged. The sweep logs one only if the invocation is still DISPATCHING when it
    finds it, and a callback may have completed it meanwhile (the subscriber got the
    delivery, and calls back though its sender died). It is the last. (Two sweeps at once
    never both log one: each logs only the deliveries its own UPDATE took back.)"""
    problems: list[str] = []
    struck = Struck()
    flaws = LogFlaws()
    outage = faults.outage
    edge = timedelta(seconds=OUTAGE_EDGE)
    # When an attempt may have failed for the outage, and when it must have.
    may_fail = (outage.going - edge, outage.back + edge)
    must_fail = {kind: (outage.down, outage.coming - edge) for kind in REFUSING}
    must_fail |= {kind: (outage.going, outage.coming - edge) for kind in UNAVAILABLE}
    for status in statuses:
        invocation_id = status["id"]
        logged = log.get(invocation_id, [])
        where = f"{invocation_id} ({status['triggerId']}, {status['status']})"
        cut_off = invocation_id in faults.cut_off
        numbers = sorted(attempt.attempt for attempt in logged)
        every = list(range(1, status["attempts"] + 1))
        if (
            every
            and numbers == every[:-1]
            and cut_off
            and REQUEST_RESPONSE.get(status["triggerId"]) in ("ASYNC", "DYNAMIC")
        ):
            flaws.unlogged.add(invocation_id)
        elif numbers != every:
            problems.append(f"{where}: attempts={status['attempts']}, but the attempt log has {logged}")
        elif status["status"] == "COMPLETED" and not (logged and logged[-1].succeeded):
            problems.append(f"{where} completed, but its last logged attempt did not succeed: {logged}")
        notify = status["triggerId"] == FIRE_AND_FORGET
        kind = kinds.get(status["subscriptionId"], "")
        down_from, down_until = must_fail.get(kind, (NEVER, NEVER))
        for attempt in logged:
            while_down = down_from <= attempt.started <= down_until
            if attempt.succeeded:
                if while_down:
                    problems.append(f"{where}: {attempt} succeeded while {kind} was down")
                continue
            if attempt.error == INTERRUPTED:
                if invocation_id not in faults.cut_off:
                    problems.append(f"{where}: {attempt} was cut off, but no worker kill cut it off")
                continue
            if not (notify and may_fail[0] <= attempt.started <= may_fail[1]):
                problems.append(f"{where}: {attempt} failed, and no fault explains it")
                continue
            if kind in UNAVAILABLE and attempt.status_code == 503:
                struck.unavailable += 1
            elif kind in REFUSING and attempt.status_code is None and attempt.error:
                struck.refused += 1
                struck.errors[attempt.error.rsplit(": ", 1)[-1]] += 1
            else:
                problems.append(f"{where}: {attempt} failed otherwise than {kind} down would fail it")
            struck.invocations.add(invocation_id)
        created = datetime.fromisoformat(status["created"])
        if notify and logged and outage.going <= created <= outage.coming <= logged[0].started:
            struck.held += 1
        if logged and down_from <= logged[0].started <= down_until:
            struck.first_while_down += 1
            # Its first attempt failed as the outage fails it, or was cut off by the worker kill.
            failed_first = invocation_id in struck.invocations or logged[0].error == INTERRUPTED
            if not failed_first or status["attempts"] < 2:
                problems.append(f"{where}: first delivered while {kind} was down, yet logged {logged}")
        if invocation_id in struck.invocations:
            struck.attempts[status["attempts"]] += 1
        if notify and status["completed"] is not None:
            completed = datetime.fromisoformat(status["completed"])
            struck.last_completed = max(struck.last_completed, completed)
    return problems, struck, flaws


async def listed_attempts(http: httpx.AsyncClient, api: str, ids: Sequence[str]) -> dict[str, list[Any]]:
    """GET /trigger-invocations/{id}/attempts of each of ``ids``."""
    limit = asyncio.Semaphore(8)

    async def attempts(invocation_id: str) -> tuple[str, list[Any]]:
        async with limit:
            response = await http.get(f"{api}/beta/trigger-invocations/{invocation_id}/attempts")
        assert response.status_code == 200, response.text
        return invocation_id, response.json()

    return dict(await asyncio.gather(*(attempts(invocation_id) for invocation_id in ids)))


@pytest.mark.xdist_group(LOADS_THE_MACHINE)
async def test_invocations_survive_killed_processes_and_a_lost_redis(tmp_path: Path) -> None:
    await require_services()
    began = time.monotonic()
    store = await distributed_store(tmp_path)
    cluster = Cluster(store, tmp_path)
    ports = [free_port(), free_port()]
    api_urls = [f"http://127.0.0.1:{port}" for port in ports]
    subscribers = Subscribers(api_urls)
    refusing = Restartable(subscribers.app())
    try:
        async with (
            serve(subscribers.app()) as subscriber_url,
            httpx.AsyncClient(timeout=30) as http,
        ):
            subscribers.url, subscribers.refusing_url = subscriber_url, refusing.url
            await refusing.start()
            await run(cluster, refusing, api_urls, ports, subscribers, http, began)
    finally:
        await refusing.close()
        await subscribers.close()
        await cluster.stop()
        await clean_up(store)


async def run(
    cluster: Cluster,
    refusing: Restartable,
    api_urls: list[str],
    ports: list[int],
    subscribers: Subscribers,
    http: httpx.AsyncClient,
    began: float,
) -> None:
    # All at once, as a deployment starts them (the API processes race to create the bootstrap
    # client). Each worker's callbackURLs point at a different API process.
    started = await asyncio.gather(
        cluster.api("api-a", ports[0], http),
        cluster.api("api-b", ports[1], http),
        cluster.worker("worker-1", api_urls[0]),
        cluster.worker("worker-2", api_urls[1]),
    )
    apis = dict(zip(api_urls, started[:2], strict=True))
    workers = list(started[2:])

    async with httpx.AsyncClient(base_url=api_urls[0], timeout=30) as admin_http:
        admin = GatewayClient(admin_http, cluster.processes[0].settings)
        await admin.login(CLIENT_ID, CLIENT_SECRET)
        for trigger_id, mode in REQUEST_RESPONSE.items():
            await admin.create_trigger(trigger_id, name=trigger_id)
            kind = trigger_id.split(":", 1)[1]
            await admin.subscribe(trigger_id, subscribers.endpoint(kind), mode, responseDeadline=DEADLINE)
        await admin.create_trigger(FIRE_AND_FORGET, name=FIRE_AND_FORGET, type="FIRE_AND_FORGET")
        kinds: dict[str, str] = {}  # the fire-and-forget subscriptions' endpoints, by id
        for kind in sorted(REFUSING | UNAVAILABLE):
            subscription = await admin.subscribe(
                FIRE_AND_FORGET, subscribers.endpoint(kind), "SYNC", responseDeadline=DEADLINE
            )
            kinds[subscription["id"]] = kind
        token = admin_http.headers["authorization"].removeprefix("Bearer ")
    http.headers["authorization"] = f"Bearer {token}"

    plan = [(t, n) for t in REQUEST_RESPONSE for n in range(STARTS_PER_TRIGGER)]
    plan += [(FIRE_AND_FORGET, n) for n in range(NOTIFY_STARTS)]
    random.Random(7).shuffle(plan)
    expected = len(REQUEST_RESPONSE) * STARTS_PER_TRIGGER + NOTIFY_STARTS * len(kinds)
    producer = Producer(api_urls, token)

    db = await asyncpg.connect(asyncpg_dsn(cluster.store))
    try:
        load_began = time.monotonic()
        async with asyncio.TaskGroup() as group:
            group.create_task(producer.run(plan))
            injected = group.create_task(
                inject_faults(cluster, refusing, apis, workers, producer, subscribers, db, http, len(plan))
            )
        faults = injected.result()
        load_ended = time.monotonic()  # and the faults' (the outage may outlast the starts)
        print(
            f"[load] {producer.acknowledged} starts acknowledged in {producer.finished - load_began:.1f} s "
            f"({producer.retries} retried), the faults over after {load_ended - load_began:.1f} s",
            flush=True,
        )
        final = await drain(db, workers, DRAIN_WITHIN)
        drained = time.monotonic()
        await subscribers.settle(within=CALLBACK_PATIENCE + 5)
        log = await attempt_log(db)
    finally:
        await db.close()

    statuses = await all_statuses(http, api_urls[1], [*REQUEST_RESPONSE, FIRE_AND_FORGET])
    problems, repeats = check(statuses, producer, subscribers, faults)
    attempt_problems, struck, flaws = check_attempts(statuses, log, kinds, faults)
    problems += attempt_problems
    # The API lists what the log holds.
    listed = await listed_attempts(http, api_urls[0], sorted(struck.invocations))
    for invocation_id, attempts in listed.items():
        api_view = [(a["attempt"], a["statusCode"], a["error"]) for a in attempts]
        db_view = [(a.attempt, a.status_code, a.error) for a in log[invocation_id]]
        if api_view != db_view:
            problems.append(f"{invocation_id}: GET .../attempts lists {api_view}, the log holds {db_view}")
    # Each 503 answered is logged, but one whose worker was killed before it recorded it.
    unlogged_503 = subscribers.unavailable_answers - struck.unavailable
    if not 0 <= unlogged_503 <= len(faults.cut_off):
        problems.append(
            f"{subscribers.unavailable_answers} deliveries answered 503, {struck.unavailable} logged"
        )
    for process in [*apis.values(), *workers]:
        if not process.alive and process not in faults.killed:
            problems.append(f"{process.name} died without being killed:\n{process.tail()}")
    if not faults.orphaned <= faults.cut_off:
        not_dispatching = faults.orphaned - faults.cut_off
        problems.append(f"deliveries cut off by the worker kill were not dispatching: {not_dispatching}")
    refused = sum(len(seen.refused) for seen in subscribers.seen.values())
    outage = faults.outage
    attempts_taken = ", ".join(f"{n} attempts {count}" for n, count in sorted(struck.attempts.items()))
    last_after = (struck.last_completed - outage.back).total_seconds()
    logged_cut_off = sum(a.error == INTERRUPTED for attempts in log.values() for a in attempts)
    explained = sum(n for invocation_id, n in repeats.items() if invocation_id in faults.cut_off)
    redelivered = sum(1 for invocation_id in faults.orphaned if invocation_id in repeats)
    summary = "\n".join(
        [
            f"fault test: {len(statuses)} invocations ({len(producer.ids)} acknowledged of {expected} "
            f"planned, {len(statuses) - len(producer.ids)} more created by starts whose answer was lost), "
            "2 API processes, 2 workers",
            f"  kill -9 a worker ({faults.worker_kills} strike(s)): {len(faults.orphaned)} deliveries "
            f"cut off of {faults.delivering_at_kill} of its own held open ({redelivered} delivered "
            f"again), {len(faults.cut_off)} invocations dispatching; {describe(faults.at_worker_kill)}",
            f"  kill -9 api-a ({faults.api_kills} strike(s)): {faults.starts_to_killed_api} starts and "
            f"{faults.callbacks_to_killed_api} callbacks in flight to it unanswered, back after "
            f"{faults.api_restarted_after:.1f} s; {describe(faults.at_api_kill)}",
            f"  Redis flushed ({faults.redis_flushes} time(s)): {faults.redis_jobs_lost} jobs and "
            f"{faults.redis_keys_lost} keys lost; {describe(faults.at_redis_flush)}",
            f"  fire-and-forget subscribers down {outage.back_at - outage.began_at:.1f} s from "
            f"{outage.began_at - load_began:.1f} s into the load: {struck.refused + struck.unavailable} "
            f"attempts failed ({struck.refused} with no answer: {dict(struck.errors)}; "
            f"{struck.unavailable} answered 503) of {len(struck.invocations)} invocations "
            f"({struck.first_while_down} first delivered while down), taking {attempts_taken}; "
            f"{struck.held} created while down were first tried after it; "
            f"circuits opened {cluster.log_lines('circuit open after')} times; "
            f"{outage.at_end.get('RETRYING', 0)} retrying when it ended, the last completed "
            f"{last_after:.1f} s after; {describe(outage.at_start)} -> {describe(outage.at_end)}",
            f"  final: {describe(final)}; repeats: {sum(repeats.values())} extra deliveries of "
            f"{len(repeats)} invocations, {explained} of them cut off by the worker kill",
            f"  attempt log: {sum(map(len, log.values()))} attempts, {logged_cut_off} logged as cut off; "
            f"{len(flaws.unlogged)} cut off and never logged (completed by their callback meanwhile)",
            f"  starts retried {producer.retries}, callbacks retried {subscribers.callback_retries}, "
            f"callbacks refused {refused}; 'Traceback' in gateway logs: {cluster.log_lines('Traceback')}",
            f"  load {producer.finished - load_began:.1f} s, faults over after "
            f"{load_ended - load_began:.1f} s; drained {drained - load_ended:.1f} s after that "
            f"and {drained - faults.last_fault:.1f} s after the last fault; "
            f"total {time.monotonic() - began:.1f} s",
        ]
    )
    print(summary, flush=True)
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40]) + f"\n{summary}"
    assert len(statuses) >= expected
    # Each fault hit work in flight (inject_faults strikes again until it does).
    assert faults.orphaned and faults.cut_off, summary
    assert faults.starts_to_killed_api > 0 and faults.callbacks_to_killed_api > 0, summary
    assert faults.redis_jobs_lost > 0, summary
    assert struck.refused > 0 and struck.unavailable > 0 and struck.first_while_down > 0, summary
    # At-least-once, not at-least-twice: repeats come only from the cut-off deliveries.
    assert sum(repeats.values()) <= len(faults.cut_off)
    assert sum(repeats.values()) < 0.1 * len(statuses)


# --- a Redis restart, connections and all -------------------------------------------------------


@dataclass
class Proxied:
    """One `gateway serve` process reaching Redis through a RedisProxy, with a SYNC
    subscriber that answers after half a second."""

    store: Store
    redis: RedisProxy
    cluster: Cluster
    gateway: GatewayClient
    api_url: str
    subscriber: Subscriber

    async def restart_redis(self, outage: float) -> None:
        """Connections dropped, `outage` seconds of refused connections, an empty memory."""
        self.redis.down()
        direct = Redis.from_url(self.store.redis_url)
        try:
            await flush_redis(direct, self.store)
        finally:
            await direct.aclose()
        await asyncio.sleep(outage)
        await self.redis.up()


async def answer_slowly(_: Received) -> Response:
    await asyncio.sleep(0.5)
    return JSONResponse({"approver": "ada"})


@asynccontextmanager
async def proxied_gateway(tmp_path: Path) -> AsyncIterator[Proxied]:
    await require_services()
    store = await distributed_store(tmp_path)
    redis = RedisProxy(store.redis_url)
    await redis.up()
    cluster = Cluster(replace(store, redis_url=redis.url), tmp_path)
    subscriber = Subscriber()
    try:
        async with serve(subscriber.app()) as subscriber_url, httpx.AsyncClient(timeout=30) as http:
            subscriber.url = subscriber_url
            port = free_port()
            api_url = f"http://127.0.0.1:{port}"
            await cluster.api("api", port, http)
            http.base_url = httpx.URL(api_url)
            gateway = GatewayClient(http, cluster.processes[0].settings)
            await gateway.login(CLIENT_ID, CLIENT_SECRET)
            await gateway.create_trigger()
            await gateway.subscribe("test:approver", subscriber.endpoint("slow", answer_slowly), "SYNC")
            yield Proxied(store, redis, cluster, gateway, api_url, subscriber)
    finally:
        await cluster.stop()
        redis.down()
        await clean_up(store)


async def long_poll(gateway: GatewayClient, worker: Process) -> float:
    """Seconds a long-poll on a new invocation takes to report it completed (its subscriber
    answers after 0.5 s): far less than its 20 s limit when the completion wakes it."""
    [invocation] = await gateway.start("test:approver", {})
    began = time.monotonic()
    status = await gateway.status(invocation["id"], wait=20)
    waited = time.monotonic() - began
    assert worker.alive, f"{worker.name} exited:\n{worker.tail(8)}"
    assert status["status"] == "COMPLETED", status
    return waited


async def test_a_worker_and_long_polls_outlive_a_redis_restart(tmp_path: Path) -> None:
    """A Redis outage longer than the notification listener's retry pause, the worker running
    throughout: the worker must reconnect by itself (no process restarts it) and deliver again,
    and the API process's listener must resubscribe, so that long-polls are woken."""
    async with proxied_gateway(tmp_path) as proxied:
        worker = await proxied.cluster.worker("worker", proxied.api_url)
        pid = worker.pid
        assert await long_poll(proxied.gateway, worker) < 10

        await proxied.restart_redis(outage=2.5)  # its health-check key is gone with the rest
        # The same process writes it again once it is back on Redis.
        assert worker.popen is not None
        await wait_until_healthy(worker.settings, worker.popen)
        delivered = len(proxied.subscriber.received)
        waited = await long_poll(proxied.gateway, worker)
        assert worker.pid == pid
        # Only this worker delivers: the second delivery is its own, after the restart.
        assert len(proxied.subscriber.received) == delivered + 1
        assert waited < 10, f"the long-poll was answered only when it timed out, after {waited:.1f} s"
