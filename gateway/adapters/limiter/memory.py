"""Embedded mode's limiter: one process, so plain dictionaries (no awaits inside: atomic)."""

from __future__ import annotations

import time
from collections.abc import Callable

_ROUNDING = 1e-9  # seconds: sums of float intervals must not refuse the last of a burst


class MemoryLimiter:
    """Rates and lockouts kept in this process."""

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
