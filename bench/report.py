"""The results as Markdown tables, one per measurement, written into BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.scenarios import Row

BEGIN, END = "<!-- bench:results -->", "<!-- /bench:results -->"
TITLES = {
    "sync": "1. SYNC round trip (start + long-poll, or a start with `Prefer: wait`; the subscriber answers)",
    "async": "2. ASYNC callbacks (acknowledged, then completed by the subscriber's callback)",
    "fanout": "3. Fan-out (a fire-and-forget trigger with 50 subscriptions)",
    "waiting": (
        "4. Many waiting (invocations awaiting callbacks expire at staggered deadlines; memory is "
        "the sum over the gateway's processes)"
    ),
    "slow": "5. Slow subscribers (deliveries that never get an answer, beside healthy SYNC traffic)",
    "schedules": "6. Schedules (subscriptions each on a cron of every second; ms are from the tick)",
}


def tables(rows: Sequence[Row]) -> str:
    out = []
    for scenario, title in TITLES.items():
        mine = [r for r in rows if r.scenario == scenario]
        if not mine:
            continue
        columns = list(mine[0].values)
        out.append(f"### {title}\n")
        out.append("| setup | load | " + " | ".join(columns) + " |")
        out.append("|---|---|" + "---:|" * len(columns))
        for r in mine:
            out.append(f"| {r.setup} | {r.load} | " + " | ".join(r.values.get(c, "") for c in columns) + " |")
        out.append("")
    return "\n".join(out)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    python = f"Python {platform.python_version()}"
    return f"{cpu}, {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}, {python}"


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def section(rows: Sequence[Row], profile: str) -> str:
    command = "python -m bench" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"Produced by `{command}` ({profile} profile) on {when}, commit `{commit()}`.\n"
        f"Machine: {machine()}. Every process (load generator, subscriber, forwarder, gateway, "
        "PostgreSQL, Redis) shares these cores, so compare figures within one run.\n"
    )
    return f"{BEGIN}\n{header}\n{tables(rows)}\n{END}"


def write(path: Path, rows: Sequence[Row], profile: str) -> None:
    """Replace the results between the markers, keeping the rest (the optimisation notes)."""
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    path.write_text(before + section(rows, profile) + after)
