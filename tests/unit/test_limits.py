"""The limiter algorithms: GCRA and attempt counting, in memory (a fake clock) and on Redis."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.adapters import limiter as limits
from gateway.adapters.limiter.memory import MemoryLimiter
from gateway.adapters.limiter.redis import RedisLimiter
from tests.services import REDIS, require_services


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def memory(clock: Clock) -> MemoryLimiter:
    return MemoryLimiter(clock)


# --- throttle (GCRA) -----------------------------------------------------------------------------


async def test_a_burst_then_the_sustained_rate(memory: MemoryLimiter, clock: Clock) -> None:
    assert [await memory.throttle("k", 10, 5) for _ in range(5)] == [0.0] * 5
    assert await memory.throttle("k", 10, 5) == pytest.approx(0.1)
    clock.now += 0.05
    assert await memory.throttle("k", 10, 5) == pytest.approx(0.05)
    clock.now += 0.05
    assert await memory.throttle("k", 10, 5) == 0.0
    assert await memory.throttle("k", 10, 5) == pytest.approx(0.1)


async def test_a_refused_request_spends_nothing(memory: MemoryLimiter, clock: Clock) -> None:
    for _ in range(3):
        await memory.throttle("k", 1, 3)
    for _ in range(10):
        assert await memory.throttle("k", 1, 3) == pytest.approx(1.0)
    clock.now += 1.0
    assert await memory.throttle("k", 1, 3) == 0.0


async def test_an_idle_budget_refills_to_the_burst_and_no_more(memory: MemoryLimiter, clock: Clock) -> None:
    await memory.throttle("k", 2, 4)
    clock.now += 3600
    allowed = [await memory.throttle("k", 2, 4) == 0.0 for _ in range(10)]
    assert allowed == [True] * 4 + [False] * 6


async def test_keys_have_budgets_of_their_own(memory: MemoryLimiter) -> None:
    assert await memory.throttle("a", 1, 1) == 0.0
    assert await memory.throttle("a", 1, 1) > 0
    assert await memory.throttle("b", 1, 1) == 0.0


async def test_rate_0_is_no_limit(memory: MemoryLimiter) -> None:
    assert all([await memory.throttle("k", 0, 1) == 0.0 for _ in range(1000)])
    assert len(memory) == 0


# --- attempts and lockouts -----------------------------------------------------------------------


async def test_attempts_lock_until_the_window_ends(memory: MemoryLimiter, clock: Clock) -> None:
    assert [await memory.attempt("k", 3, 10) for _ in range(3)] == [0.0] * 3
    clock.now += 4
    assert await memory.attempt("k", 3, 10) == pytest.approx(6)
    clock.now += 5
    assert await memory.attempt("k", 3, 10) == pytest.approx(1)  # refused attempts do not extend it
    clock.now += 1
    assert await memory.attempt("k", 3, 10) == 0.0  # a new window


async def test_a_forgiven_attempt_is_not_counted(memory: MemoryLimiter) -> None:
    for _ in range(3):
        assert await memory.attempt("k", 3, 10) == 0.0
        await memory.forgive("k")
    assert len(memory) == 0  # back to nothing: no window left open
    await memory.forgive("k")  # nothing to forgive: harmless
    assert [await memory.attempt("k", 2, 10) for _ in range(3)][2] > 0


async def test_attempt_limit_0_is_no_limit(memory: MemoryLimiter) -> None:
    assert all([await memory.attempt("k", 0, 10) == 0.0 for _ in range(100)])


async def test_attempt_all_counts_against_every_key_or_none(memory: MemoryLimiter) -> None:
    assert await memory.attempt("address", 1, 10) == 0.0
    assert await limits.attempt_all(memory, [("client", 5), ("address", 1)], 10) > 0
    # The refused attempt was not left counted against the client.
    assert [await memory.attempt("client", 5, 10) for _ in range(5)] == [0.0] * 5


async def test_spent_entries_are_pruned(memory: MemoryLimiter, clock: Clock) -> None:
    for i in range(10_000):
        await memory.attempt(f"guess-{i}", 5, 1)
        await memory.throttle(f"client-{i}", 100, 1)
        clock.now += 0.01
    assert len(memory) < 2 * MemoryLimiter._PRUNE_FLOOR


def test_keys_of_caller_supplied_values_are_bounded() -> None:
    assert limits.key("callback", "0b9c2c7e-7d2f-4f55-8f3c-3c1f4c0e6a11").endswith("6a11")
    assert limits.key("token-address", "::1") == "token-address:::1"
    long = limits.key("token-client", "x" * 1_000_000)
    odd = limits.key("token-client", "a b\nc")
    assert len(long) < 64 and long != odd
    assert limits.key("token-client", "x" * 1_000_000) == long  # stable


# --- on Redis --------------------------------------------------------------------------------------


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    await require_services()
    client = Redis.from_url(REDIS)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def shared(redis: Redis) -> AsyncIterator[tuple[RedisLimiter, RedisLimiter, str]]:
    """Two limiters on one Redis, as two API processes have."""
    prefix = f"gw-test-{uuid.uuid4().hex[:12]}:limits:"
    other = Redis.from_url(REDIS)
    try:
        yield RedisLimiter(redis, prefix), RedisLimiter(other, prefix), prefix
    finally:
        await other.aclose()
        keys = [k async for k in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)


async def test_redis_throttle_is_one_budget_for_every_process(
    shared: tuple[RedisLimiter, RedisLimiter, str], redis: Redis
) -> None:
    a, b, prefix = shared
    # One request a second: the budget refills only a second after the burst began, so the
    # seven round trips below fit however slowly a busy machine runs them.
    allowed = [await (a if i % 2 else b).throttle("rate:c", 1, 4) == 0.0 for i in range(6)]
    assert allowed == [True] * 4 + [False] * 2
    wait = await a.throttle("rate:c", 1, 4)
    assert 0 < wait <= 1.0
    ttl = await redis.pttl(prefix + "rate:c")
    assert 0 < ttl <= 4000  # the key lasts only while it matters: burst x interval
    await asyncio.sleep(wait)
    assert await b.throttle("rate:c", 1, 4) == 0.0


async def test_redis_throttle_keeps_fractional_and_extreme_rates(
    shared: tuple[RedisLimiter, RedisLimiter, str],
) -> None:
    a, _, _ = shared
    assert await a.throttle("rate:slow", 0.3, 1) == 0.0
    assert await a.throttle("rate:slow", 0.3, 1) == pytest.approx(1 / 0.3, abs=0.05)
    # Intervals below Redis's clock resolution still leave a key with a valid TTL.
    assert [await a.throttle("rate:fast", 1e9, 1) for _ in range(3)] == [0.0] * 3


async def test_redis_attempts_lock_and_forgive(
    shared: tuple[RedisLimiter, RedisLimiter, str], redis: Redis
) -> None:
    a, b, prefix = shared
    assert await a.attempt("callback:x", 2, 5) == 0.0
    await b.forgive("callback:x")
    assert not await redis.exists(prefix + "callback:x")  # nothing counted, nothing kept
    await b.forgive("callback:x")
    assert not await redis.exists(prefix + "callback:x")  # and no negative count either
    results = await asyncio.gather(*(limiter.attempt("callback:x", 2, 5) for limiter in (a, b) * 10))
    assert sum(wait == 0.0 for wait in results) == 2
    assert all(4 < wait <= 5 for wait in results if wait)
    assert 4000 < await redis.pttl(prefix + "callback:x") <= 5000


async def test_redis_limits_fail_open_when_redis_is_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    limiter = RedisLimiter(unreachable, "gw-test:")
    try:
        assert await limiter.throttle("rate:c", 1, 1) == 0.0
        assert await limiter.throttle("rate:c", 1, 1) == 0.0
        assert await limiter.attempt("callback:x", 1, 10) == 0.0
        await limiter.forgive("callback:x")
    finally:
        await unreachable.aclose()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "gateway.limits"]
    assert len(warnings) == 1  # once, not once per request


async def test_redis_limits_fail_open_when_redis_does_not_answer() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept, read, never answer

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hung = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    limiter = RedisLimiter(hung, "gw-test:")
    limiter.TIMEOUT = 0.2
    try:
        async with asyncio.timeout(2):
            assert await limiter.throttle("rate:c", 1, 1) == 0.0
    finally:
        await hung.aclose()
        server.close()
        await server.wait_closed()
