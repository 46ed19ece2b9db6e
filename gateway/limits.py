"""Abuse limits: a request rate per API client, and lockouts after repeated wrong secrets.

Two primitives, each answering "go ahead" (0.0) or how many seconds to wait:

- ``throttle(key, rate, burst)``: GCRA, a token bucket kept as one timestamp (the
  theoretical arrival time): ``burst`` requests at once, then ``rate`` per second.
- ``attempt(key, limit, window)``: counts an attempt at a secret; once ``limit`` are counted,
  refuses until the window that the first one opened has passed. An attempt is counted
  before the secret is checked, so concurrent guesses cannot overshoot the limit, and
  ``forgive(key)`` takes it back when the secret turned out right (or was never checked).

A limit of 0 means no limit. Embedded, the state lives in this process; distributed, in
Redis (atomic Lua scripts, Redis's clock, keys under the queue name with a TTL), so every
API process shares one budget.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

log = logging.getLogger("gateway.limits")


class Limiter(Protocol):
    async def throttle(self, key: str, rate: float, burst: int) -> float:
        """Spend one request of ``key``'s budget; 0.0, or seconds until one is available."""
        ...

    async def attempt(self, key: str, limit: int, window: float) -> float:
        """Count one attempt; 0.0, or seconds until ``key`` may try again (nothing counted)."""
        ...

    async def forgive(self, key: str) -> None:
        """Take back one attempt counted against ``key``."""
        ...


_PLAIN = re.compile(r"[A-Za-z0-9._:@-]{1,64}")


def key(kind: str, value: str) -> str:
    """A limiter key for a caller-supplied value: as is when short and plain, else hashed
    (marked with a character no plain value has), so that nobody can make the limiter keep
    megabyte-long keys."""
    if not _PLAIN.fullmatch(value):
        value = "#" + hashlib.sha256(value.encode(errors="replace")).hexdigest()[:32]
    return f"{kind}:{value}"


async def attempt_all(limiter: Limiter, limits: Sequence[tuple[str, int]], window: float) -> float:
    """Count one attempt against every key, or (when one is locked) against none."""
    counted: list[str] = []
    for name, limit in limits:
        wait = await limiter.attempt(name, limit, window)
        if wait > 0:
            await forgive_all(limiter, counted)
            return wait
        counted.append(name)
    return 0.0


async def forgive_all(limiter: Limiter, keys: Sequence[str]) -> None:
    for name in keys:
        await limiter.forgive(name)


_ROUNDING = 1e-9  # seconds: sums of float intervals must not refuse the last of a burst


class MemoryLimiter:
    """Embedded mode: one process, so plain dictionaries (no awaits inside: atomic)."""

    _PRUNE_FLOOR = 1024

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._arrivals: dict[str, float] = {}  # key -> theoretical arrival time
        self._attempts: dict[str, tuple[int, float]] = {}  # key -> (count, window ends)
        self._prune_above = self._PRUNE_FLOOR

    async def throttle(self, key: str, rate: float, burst: int) -> float:
        if rate <= 0:
            return 0.0
        now = self._clock()
        interval = 1.0 / rate
        arrival = max(self._arrivals.get(key, now), now)
        wait = arrival - (burst - 1) * interval - now
        if wait > _ROUNDING:
            return wait
        self._arrivals[key] = arrival + interval
        self._prune(now)
        return 0.0

    async def attempt(self, key: str, limit: int, window: float) -> float:
        if limit <= 0:
            return 0.0
        now = self._clock()
        count, ends = self._attempts.get(key, (0, now + window))
        if ends <= now:
            count, ends = 0, now + window
        if count >= limit:
            return ends - now
        self._attempts[key] = (count + 1, ends)
        self._prune(now)
        return 0.0

    async def forgive(self, key: str) -> None:
        count, ends = self._attempts.get(key, (0, 0.0))
        if count <= 1 or ends <= self._clock():
            self._attempts.pop(key, None)
        else:
            self._attempts[key] = (count - 1, ends)

    def _prune(self, now: float) -> None:
        """Drop spent entries whenever the tables have doubled: callers choose the keys."""
        if len(self._arrivals) + len(self._attempts) <= self._prune_above:
            return
        self._arrivals = {k: t for k, t in self._arrivals.items() if t > now}
        self._attempts = {k: v for k, v in self._attempts.items() if v[1] > now}
        self._prune_above = max(self._PRUNE_FLOOR, 2 * (len(self._arrivals) + len(self._attempts)))

    def __len__(self) -> int:
        return len(self._arrivals) + len(self._attempts)


# GCRA in microseconds of Redis's clock (one clock for every API process). Returns the wait
# in microseconds, 0 when allowed (less than 1 us is rounding). Times are stored with %.0f:
# Lua 5.1's default number format keeps only 14 digits.
_THROTTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local arrival = tonumber(redis.call('GET', KEYS[1]) or now)
if arrival < now then arrival = now end
local wait = arrival - interval * (tonumber(ARGV[2]) - 1) - now
if wait >= 1 then return math.ceil(wait) end
arrival = arrival + interval
local ttl = math.max(1, math.ceil((arrival - now) / 1000))
redis.call('SET', KEYS[1], string.format('%.0f', arrival), 'PX', ttl)
return 0
"""

# Returns the lock's remaining milliseconds, 0 when the attempt was counted.
_ATTEMPT = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then return ttl end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(ARGV[2])
end
redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_FORGIVE = """
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('DECR', KEYS[1]) <= 0 then
  redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLimiter:
    """Distributed mode: the budget is shared by every API process through Redis.

    Redis only protects; it does not decide anything the database holds. While it cannot be
    reached, or does not answer within TIMEOUT, the limits are not enforced (fail open, with
    a warning) rather than every request failing or hanging.
    """

    TIMEOUT = 1.0  # seconds
    WARN_EVERY = 10.0  # seconds between warnings while Redis is unreachable

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = prefix
        self._throttle = redis.register_script(_THROTTLE)
        self._attempt = redis.register_script(_ATTEMPT)
        self._forgive = redis.register_script(_FORGIVE)
        self._warned_at = -math.inf

    async def throttle(self, key: str, rate: float, burst: int) -> float:
        if rate <= 0:
            return 0.0
        wait = await self._run(self._throttle, key, [1_000_000 / rate, burst])
        return wait / 1_000_000

    async def attempt(self, key: str, limit: int, window: float) -> float:
        if limit <= 0:
            return 0.0
        wait = await self._run(self._attempt, key, [limit, max(1, math.ceil(window * 1000))])
        return wait / 1000

    async def forgive(self, key: str) -> None:
        await self._run(self._forgive, key, [])

    async def _run(self, script: AsyncScript, key: str, args: list[float | int]) -> int:
        try:
            async with asyncio.timeout(self.TIMEOUT):
                result = await script(keys=[self._prefix + key], args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            now = time.monotonic()
            if now - self._warned_at >= self.WARN_EVERY:
                self._warned_at = now
                log.warning(
                    "rate and lockout limits are not enforced: Redis failed (%s: %s)", type(exc).__name__, exc
                )
            return 0
        return int(result)
