"""Closed-loop load: ``concurrency`` callers, each starting its next operation as soon as the
last one ends, for a fixed time; every operation's latency is kept."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

Operation = Callable[[], Awaitable[None]]


@dataclass
class Run:
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    # CPU the measured processes used over the whole run (warm-up included), if asked for.
    cpu_seconds: float = 0.0
    operations: int = 0  # every operation, warm-up included

    @property
    def cpu_ms_per_operation(self) -> float:
        return self.cpu_seconds * 1000 / self.operations if self.operations else math.nan

    @property
    def per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (q in 0-100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


async def closed_loop(
    operation: Operation,
    concurrency: int,
    seconds: float,
    warmup: float = 0.0,
    cpu: Callable[[], float] | None = None,
) -> Run:
    """Run ``operation`` from ``concurrency`` callers; latencies of operations that start in
    the first ``warmup`` seconds are not kept (connections opening, caches filling). Each
    caller goes on past the end until it has measured one operation, so that a run on a
    machine too busy for the window still has a latency to report.
    ``cpu`` reads the CPU seconds of the processes under test, to divide by operations."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    measure_from = started + warmup
    stop_at = measure_from + seconds
    run = Run(seconds)
    cpu_before = cpu() if cpu else 0.0

    async def caller() -> None:
        measured = failed = 0
        while (begun := loop.time()) < stop_at or (not measured and failed < 3):
            t0 = time.perf_counter()
            try:
                await operation()
            except Exception as exc:  # counted, and the first one shown: a benchmark must not hide errors
                run.errors += 1
                run.first_error = run.first_error or f"{type(exc).__name__}: {exc}"
                failed += 1
                continue
            run.operations += 1
            if begun >= measure_from:
                run.latencies_ms.append((time.perf_counter() - t0) * 1000)
                measured += 1

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    # The operations in flight at stop_at finish after it: count the time they took.
    run.seconds = max(loop.time() - measure_from, 1e-9)
    run.cpu_seconds = cpu() - cpu_before if cpu else 0.0
    return run
