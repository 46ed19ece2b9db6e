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

import hashlib
import ipaddress
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol


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


def address(host: str) -> str:
    """The part of a caller's address its attempts are counted under: an IPv4 address, or an
    IPv6 address's /64 (one host is usually given a whole /64: 2^64 addresses to rotate through)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host  # "unknown", or a name a proxy gave
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


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


@asynccontextmanager
async def counted_attempts(
    limiter: Limiter, limits: Sequence[tuple[str, int]], window: float, wrong: type[Exception]
) -> AsyncIterator[float]:
    """Count one attempt at a secret against every key before it is checked; yield 0.0, or
    the seconds to wait when a key is locked (nothing is then counted and the caller must
    refuse without checking). Only an attempt that ends in ``wrong`` (the secret was wrong)
    stays counted: every other ending forgives it."""
    wait = await attempt_all(limiter, limits, window)
    if wait > 0:
        yield wait
        return
    keep = False
    try:
        yield 0.0
    except wrong:
        keep = True
        raise
    finally:
        if not keep:
            await forgive_all(limiter, [name for name, _ in limits])
