"""The six measurements of BENCHMARKS.md. Each takes a running stack and returns rows."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from bench.load import closed_loop, percentile
from bench.stack import Gateway, Store, run_gateway
from gateway.adapters.database import engine as db
from gateway.domain.model import Invocation, Status

INPUT = {"requestedFor": "ed", "items": [{"role": "admin", "reason": "benchmark"}]}
FANOUT_SUBSCRIPTIONS = 50  # the most a fire-and-forget trigger may have
HANG_PER_TRIGGER = 50


@dataclass(frozen=True)
class Profile:
    """How long and how big: the full run, or the smoke run CI makes."""

    name: str
    seconds: float  # measured time per load level
    warmup: float
    levels: tuple[int, ...]  # concurrent callers
    fanout_levels: tuple[int, ...]
    waiting: int  # invocations awaiting callbacks
    waiting_spread: float  # their deadlines spread over this many seconds
    hanging: int  # subscribers that never answer
    response_timeout: float  # the gateway's time limit for this run
    scheduled: int = 200  # subscriptions on a schedule of every second
    schedule_seconds: float = 10.0  # how long they run

    def gateway_settings(self) -> dict[str, str]:
        # No retries: the slow-subscribers table times one attempt of each hanging delivery
        # (every other table's subscribers answer).
        return {"GATEWAY_RESPONSE_TIMEOUT": f"{self.response_timeout:g}", "GATEWAY_RETRY_SCHEDULE": ""}


FULL = Profile("full", 5.0, 1.0, (1, 8, 32), (1, 4, 16), 100_000, 30.0, 1000, 10.0)
SMOKE = Profile("smoke", 0.5, 0.2, (2,), (1,), 300, 1.0, 20, 3.0, scheduled=5, schedule_seconds=2.5)


@dataclass
class Row:
    scenario: str
    setup: str  # embedded | distributed, N workers
    load: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class Context:
    profile: Profile
    setup: str
    gateway: Gateway
    subscriber: str  # base URL
    forwarder: str
    http: aiohttp.ClientSession  # no credentials: for the subscriber and the forwarder


def ms(value: float) -> str:
    return f"{value:.1f}"


def rate(value: float) -> str:
    return f"{value:,.0f}"


async def post_json(http: aiohttp.ClientSession, url: str, body: Any) -> Any:
    async with http.post(url, json=body) as response:
        if response.status != 200:
            raise RuntimeError(f"POST {url}: HTTP {response.status}")
        return await response.json()


async def subscriber_stats(ctx: Context, reset: bool = False) -> dict[str, Any]:
    async with ctx.http.request("DELETE" if reset else "GET", ctx.subscriber + "/stats") as response:
        return await response.json() if response.status == 200 else {}


async def define(
    gw: Gateway, trigger_id: str, type_: str, url: str, mode: str, subscriptions: int = 1
) -> None:
    await gw.call("POST", "/beta/triggers", {"id": trigger_id, "name": trigger_id, "type": type_}, expect=201)
    for i in range(subscriptions):
        body = {
            "triggerId": trigger_id,
            "name": f"{trigger_id} {i}",
            "httpConfig": {"url": url, "httpDispatchMode": mode},
        }
        await gw.call("POST", "/beta/trigger-subscriptions", body, expect=201)


def round_trip(gw: Gateway, trigger_id: str) -> Callable[[], Awaitable[None]]:
    """A producer's whole exchange: start the trigger, long-poll until its output is there."""

    async def operation() -> None:
        started = await gw.call(
            "POST", "/beta/trigger-invocations/start", {"triggerId": trigger_id, "input": INPUT}
        )
        status = await gw.call("GET", f"/beta/trigger-invocations/{started[0]['id']}/status?waitSeconds=30")
        if status["status"] != "COMPLETED":
            raise RuntimeError(f"invocation ended {status['status']}: {status['completeInvocationInput']}")

    return operation


def one_request(gw: Gateway, trigger_id: str) -> Callable[[], Awaitable[None]]:
    """The same exchange in one request: a start with ``Prefer: wait=30``."""

    async def operation() -> None:
        body = {"triggerId": trigger_id, "input": INPUT}
        [status] = await gw.call(
            "POST", "/beta/trigger-invocations/start", body, headers={"Prefer": "wait=30"}
        )
        if status["status"] != "COMPLETED":
            raise RuntimeError(f"invocation ended {status['status']}: {status['completeInvocationInput']}")

    return operation


async def sync_round_trip(ctx: Context) -> list[Row]:
    p, gw = ctx.profile, ctx.gateway
    await define(gw, "bench:sync", "REQUEST_RESPONSE", ctx.subscriber + "/deliver/sync", "SYNC")
    gateway_op, one_op = round_trip(gw, "bench:sync"), one_request(gw, "bench:sync")

    async def direct_op() -> None:
        await post_json(ctx.http, ctx.subscriber + "/direct", INPUT)

    async def forward_op() -> None:
        await post_json(ctx.http, ctx.forwarder + "/forward", INPUT)

    rows = []
    for level in p.levels:
        direct = await closed_loop(direct_op, level, p.seconds, p.warmup)
        forward = await closed_loop(forward_op, level, p.seconds, p.warmup)
        for how, operation in (("start + long-poll", gateway_op), ("one request, Prefer: wait", one_op)):
            gateway = await closed_loop(operation, level, p.seconds, p.warmup, gw.cpu_seconds)
            rows.append(
                Row(
                    "sync",
                    ctx.setup,
                    f"{level} callers, {how}",
                    {
                        "gateway /s": rate(gateway.per_second),
                        "forwarder /s": rate(forward.per_second),
                        "gateway ÷ forwarder": f"{gateway.per_second / forward.per_second:.0%}",
                        "gateway CPU ms per round trip": f"{gateway.cpu_ms_per_operation:.2f}",
                        "gateway p50 ms": ms(gateway.p(50)),
                        "gateway p99 ms": ms(gateway.p(99)),
                        "direct p50 ms": ms(direct.p(50)),
                        "added p50 ms": ms(gateway.p(50) - direct.p(50)),
                        "added p99 ms": ms(gateway.p(99) - direct.p(99)),
                        "errors": str(gateway.errors + forward.errors + direct.errors),
                    },
                )
            )
            report_errors("sync", gateway, forward, direct)
    return rows


def report_errors(scenario: str, *runs: Any) -> None:
    for run in runs:
        if run.errors:
            print(f"  {scenario}: {run.errors} error(s), the first: {run.first_error}")


async def async_callbacks(ctx: Context) -> list[Row]:
    p, gw = ctx.profile, ctx.gateway
    await define(gw, "bench:async", "REQUEST_RESPONSE", ctx.subscriber + "/deliver/async", "ASYNC")
    operation = round_trip(gw, "bench:async")
    rows = []
    for level in p.levels:
        await subscriber_stats(ctx, reset=True)
        run = await closed_loop(operation, level, p.seconds, p.warmup, gw.cpu_seconds)
        stats = await subscriber_stats(ctx)
        callbacks = stats.get("callbackMs", [])
        rows.append(
            Row(
                "async",
                ctx.setup,
                f"{level} callers",
                {
                    "completed /s": rate(run.per_second),
                    "gateway CPU ms per invocation": f"{run.cpu_ms_per_operation:.2f}",
                    "round trip p50 ms": ms(run.p(50)),
                    "round trip p99 ms": ms(run.p(99)),
                    "callback p50 ms": ms(percentile(callbacks, 50)),
                    "callback p99 ms": ms(percentile(callbacks, 99)),
                    "errors": str(run.errors + stats.get("callbackFailures", 0)),
                },
            )
        )
        report_errors("async", run)
    return rows


async def fan_out(ctx: Context) -> list[Row]:
    p, gw = ctx.profile, ctx.gateway
    url = ctx.subscriber + "/deliver/notify"
    await define(gw, "bench:fanout", "FIRE_AND_FORGET", url, "SYNC", subscriptions=FANOUT_SUBSCRIPTIONS)
    starts = 0

    async def operation() -> None:
        nonlocal starts
        await gw.call(
            "POST", "/beta/trigger-invocations/start", {"triggerId": "bench:fanout", "input": INPUT}
        )
        starts += 1

    rows = []
    for level in p.fanout_levels:
        await subscriber_stats(ctx, reset=True)
        starts = 0
        began = time.perf_counter()
        cpu_before = gw.cpu_seconds()
        run = await closed_loop(operation, level, p.seconds)
        # Deliveries per second: every delivery of those starts, until the last one arrived.
        expected = starts * FANOUT_SUBSCRIPTIONS
        received = 0
        async with asyncio.timeout(120):
            # Until every delivery arrived, or every invocation ended (failed ones never arrive).
            while received < expected and await unfinished(gw.store.database_url, "bench:fanout"):
                received = (await subscriber_stats(ctx)).get("received", {}).get("notify", 0)
                await asyncio.sleep(0.02)
        received = (await subscriber_stats(ctx)).get("received", {}).get("notify", 0)
        elapsed = time.perf_counter() - began
        cpu_per_delivery = (gw.cpu_seconds() - cpu_before) * 1000 / max(received, 1)
        rows.append(
            Row(
                "fanout",
                ctx.setup,
                f"{level} producers",
                {
                    "deliveries /s": rate(received / elapsed),
                    "gateway CPU ms per delivery": f"{cpu_per_delivery:.2f}",
                    "starts /s": rate(starts / elapsed),
                    "start p50 ms": ms(run.p(50)),
                    "start p99 ms": ms(run.p(99)),
                    "errors": str(run.errors + expected - received),
                },
            )
        )
        report_errors("fanout", run)
        if received < expected:
            print(f"  fanout: {expected - received} of {expected} deliveries failed")
    return rows


async def slow_subscribers(ctx: Context) -> list[Row]:
    """Healthy SYNC traffic alone, then beside ``hanging`` deliveries that never get an answer."""
    p, gw = ctx.profile, ctx.gateway
    triggers = max(1, p.hanging // HANG_PER_TRIGGER)
    per_trigger = min(p.hanging, HANG_PER_TRIGGER)
    for t in range(triggers):
        await define(
            gw, f"bench:hang-{t}", "FIRE_AND_FORGET", ctx.subscriber + "/deliver/hang", "SYNC", per_trigger
        )
    healthy = round_trip(gw, "bench:sync")  # defined by sync_round_trip
    level = 8
    alone = await closed_loop(healthy, level, p.seconds, p.warmup)

    starts = [
        gw.call("POST", "/beta/trigger-invocations/start", {"triggerId": f"bench:hang-{t}", "input": INPUT})
        for t in range(triggers)
    ]
    hanging_ids = [inv["id"] for started in await asyncio.gather(*starts) for inv in started]
    beside = await closed_loop(healthy, level, p.response_timeout)

    async def wait_until_failed(invocation_id: str) -> None:
        status = await gw.call("GET", f"/beta/trigger-invocations/{invocation_id}/status?waitSeconds=30")
        if status["status"] != "FAILED":
            raise RuntimeError(f"a hanging delivery ended {status['status']}")

    await asyncio.gather(*(wait_until_failed(i) for i in hanging_ids))
    rows = await invocation_times(gw.store.database_url, hanging_ids)
    from_post = [(completed - dispatched).total_seconds() for _, dispatched, completed in rows]
    from_start = [(completed - created).total_seconds() for created, _, completed in rows]
    report_errors("slow", alone, beside)
    return [
        Row(
            "slow",
            ctx.setup,
            f"{len(hanging_ids)} hanging + {level} callers",
            {
                "time limit s": f"{p.response_timeout:g}",
                "failed after its POST p50 s": f"{percentile(from_post, 50):.2f}",
                "after its POST max s": f"{max(from_post):.2f}",
                "after its start p50 s": f"{percentile(from_start, 50):.2f}",
                "after its start max s": f"{max(from_start):.2f}",
                "healthy p99 alone ms": ms(alone.p(99)),
                "healthy p99 beside ms": ms(beside.p(99)),
                "ratio": f"{beside.p(99) / alone.p(99):.2f}",
                "healthy /s alone": rate(alone.per_second),
                "healthy /s beside": rate(beside.per_second),
                "errors": str(alone.errors + beside.errors),
            },
        )
    ]


async def schedules(ctx: Context) -> list[Row]:
    """Many subscriptions on a schedule of every second: how late ticks fire and arrive, and
    whether any fires twice or is skipped."""
    p, gw = ctx.profile, ctx.gateway
    url = ctx.subscriber + "/deliver/notify"
    subscription_ids = []
    for t in range(0, p.scheduled, FANOUT_SUBSCRIPTIONS):  # at most 50 per fire-and-forget trigger
        trigger_id = f"bench:cron:{t}"
        trigger = {"id": trigger_id, "name": trigger_id, "type": "FIRE_AND_FORGET", "customSchedules": True}
        await gw.call("POST", "/beta/triggers", trigger, expect=201)
        for i in range(t, min(t + FANOUT_SUBSCRIPTIONS, p.scheduled)):
            body = {
                "triggerId": trigger_id,
                "name": f"every second {i}",
                "httpConfig": {"url": url},
                "schedule": {"cron": "* * * * * *"},
            }
            subscription_ids.append(
                (await gw.call("POST", "/beta/trigger-subscriptions", body, expect=201))["id"]
            )
    await asyncio.sleep(p.schedule_seconds)
    for subscription_id in subscription_ids:
        await gw.call("DELETE", f"/beta/trigger-subscriptions/{subscription_id}", expect=204)
    await asyncio.sleep(1.0)  # let the last deliveries finish
    fired, duplicates, skipped, late_fire, late_arrival = await tick_times(gw.store.database_url)
    return [
        Row(
            "schedules",
            ctx.setup,
            f"{p.scheduled} subscriptions, every second",
            {
                "ticks fired": rate(fired),
                "fired twice": str(duplicates),
                "skipped (collapsed into a late one)": str(skipped),
                "fired p50 ms after the tick": ms(percentile(late_fire, 50)),
                "fired p99 ms": ms(percentile(late_fire, 99)),
                "answered p50 ms after the tick": ms(percentile(late_arrival, 50)),
                "answered p99 ms": ms(percentile(late_arrival, 99)),
                "errors": str(duplicates),
            },
        )
    ]


async def tick_times(database_url: str) -> tuple[int, int, int, list[float], list[float]]:
    """From the cron invocations: how many fired, how many ticks fired twice, how many were
    skipped between a subscription's first and last, and ms from tick to recorded and to answered."""
    query = select(
        col(Invocation.subscription_id),
        col(Invocation.input),
        col(Invocation.created),
        col(Invocation.completed),
    ).where(col(Invocation.source) == "cron")
    async with connected(database_url) as conn:
        rows = (await conn.execute(query)).all()
    ticks: dict[str, list[datetime]] = {}
    late_fire, late_arrival = [], []
    for subscription_id, input, created, completed in rows:
        tick = datetime.fromisoformat(input["scheduledFor"])
        ticks.setdefault(subscription_id, []).append(tick)
        late_fire.append((created - tick).total_seconds() * 1000)
        if completed is not None:
            late_arrival.append((completed - tick).total_seconds() * 1000)
    duplicates = sum(len(fired) - len(set(fired)) for fired in ticks.values())
    skipped = sum(
        int((max(fired) - min(fired)).total_seconds()) + 1 - len(set(fired)) for fired in ticks.values()
    )
    return len(rows), duplicates, skipped, late_fire, late_arrival


@asynccontextmanager
async def connected(database_url: str) -> AsyncIterator[AsyncConnection]:
    """The benchmark's own connection to the gateway's database, in one transaction."""
    engine = db.create_engine(database_url)
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        await engine.dispose()


async def unfinished(database_url: str, trigger_id: str) -> int:
    """How many of the trigger's invocations have not ended yet."""
    query = select(func.count()).where(
        col(Invocation.trigger_id) == trigger_id, col(Invocation.completed).is_(None)
    )
    async with connected(database_url) as conn:
        return int((await conn.execute(query)).scalar_one())


async def invocation_times(database_url: str, ids: list[str]) -> list[tuple[datetime, datetime, datetime]]:
    """(created, dispatched_at, completed) of each invocation, from the database: the status
    API does not show when the delivery was sent, which is when its time limit starts."""
    query = select(col(Invocation.created), col(Invocation.dispatched_at), col(Invocation.completed))
    async with connected(database_url) as conn:
        rows = (await conn.execute(query.where(col(Invocation.id).in_(ids)))).all()
    return [(c, d, e) for c, d, e in rows if d is not None and e is not None]


async def seed_waiting(database_url: str, count: int, first: datetime, spread: float) -> list[str]:
    """``count`` invocations already delivered and awaiting callbacks, deadlines staggered
    evenly over ``spread`` seconds from ``first``: written straight to the database, as if
    the gateway had dispatched them (seeding 100,000 through the API would take minutes)."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    now = datetime.now(UTC)
    rows = [
        {
            "id": invocation_id,
            "trigger_id": "bench:waiting",
            "trigger_type": "REQUEST_RESPONSE",
            "subscription_id": "bench-waiting",
            "subscription_name": "waiting",
            "dispatch_mode": "ASYNC",
            "type": "REAL_TIME",
            "status": Status.AWAITING_CALLBACK,
            "input": INPUT,
            "content_json": {},
            "attempts": 1,
            "created": now,
            "queued_at": now,
            "dispatched_at": now,
            "deadline": first + timedelta(seconds=spread * i / count),
        }
        for i, invocation_id in enumerate(ids)
    ]
    async with connected(database_url) as conn:
        for offset in range(0, count, 5000):
            await conn.execute(insert(Invocation), rows[offset : offset + 5000])
    return ids


async def expiry_lateness(database_url: str) -> tuple[list[float], int]:
    """Seconds from each deadline to its expiry, and how many never expired."""
    query = select(col(Invocation.status), col(Invocation.deadline), col(Invocation.completed))
    async with connected(database_url) as conn:
        rows = (await conn.execute(query)).all()
    late = [
        (completed - deadline).total_seconds()
        for status, deadline, completed in rows
        if status == Status.EXPIRED and completed is not None
    ]
    return late, len(rows) - len(late)


async def many_waiting(profile: Profile, setup: str, store: Store, workdir: Path, workers: int) -> list[Row]:
    async with run_gateway(store, workdir, workers=workers, settings=profile.gateway_settings()) as gw:
        at_start = gw.rss_mb()
        # Seeded while the gateway runs, with a head start for the seeding itself.
        first = datetime.now(UTC) + timedelta(seconds=1 + profile.waiting / 20_000)
        ids = await seed_waiting(store.database_url, profile.waiting, first, profile.waiting_spread)

        async def read_status() -> None:
            await gw.call("GET", f"/beta/trigger-invocations/{random.choice(ids)}/status")

        until_last = (first - datetime.now(UTC)).total_seconds() + profile.waiting_spread + 1.5
        api = await closed_loop(read_status, 4, max(until_last, 0.5))
    # The kernel's high-water mark of each process (VmHWM), read as it stopped.
    peak = sum(p.peak_rss_mb for p in gw.processes)
    late, missing = await expiry_lateness(store.database_url)
    report_errors("waiting", api)
    late_ms = [s * 1000 for s in late]
    return [
        Row(
            "waiting",
            setup,
            f"{profile.waiting:,} awaiting, deadlines over {profile.waiting_spread:g} s",
            {
                "memory at start MB": f"{at_start:.0f}",
                "peak memory MB": f"{peak:.0f}",
                "expiry late p50 ms": ms(percentile(late_ms, 50)),
                "expiry late p99 ms": ms(percentile(late_ms, 99)),
                "expiry late max ms": ms(max(late_ms, default=float("nan"))),
                "not expired": str(missing),
                "API p50 ms": ms(api.p(50)),
                "API p99 ms": ms(api.p(99)),
                "API /s": rate(api.per_second),
                "errors": str(api.errors),
            },
        )
    ]
