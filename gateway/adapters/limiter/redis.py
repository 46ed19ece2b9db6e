"""Distributed mode's limiter: atomic Lua scripts on Redis's clock, keys under the queue name
with a TTL, so every API process shares one budget."""

from __future__ import annotations

import asyncio
import logging
import math
import time

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

log = logging.getLogger("gateway.limits")


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
