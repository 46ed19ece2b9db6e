"""``python -m bench``: run every measurement on every setup, print the tables, write them
into BENCHMARKS.md. ``--smoke`` is the few-second version CI runs."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path

import aiohttp

from bench import report, scenarios, stack
from bench.scenarios import Context, Profile, Row

SETUPS = {
    "embedded": ("embedded", 0),
    "distributed-1": ("distributed", 1),
    "distributed-2": ("distributed", 2),
}
SHARED: dict[str, Callable[[Context], Awaitable[list[Row]]]] = {
    "sync": scenarios.sync_round_trip,
    "async": scenarios.async_callbacks,
    "fanout": scenarios.fan_out,
    "slow": scenarios.slow_subscribers,  # after sync: it reuses its trigger
    "schedules": scenarios.schedules,
}
ALL = [*SHARED, "waiting"]


def setup_name(mode: str, workers: int) -> str:
    return "embedded (SQLite)" if mode == "embedded" else f"PostgreSQL + Redis, {workers} worker(s)"


async def run_setup(profile: Profile, key: str, only: list[str]) -> list[Row]:
    mode, workers = SETUPS[key]
    name = setup_name(mode, workers)
    rows: list[Row] = []
    with stack.workspace() as tmp:
        workdir = Path(tmp)
        shared = [s for s in SHARED if s in only]
        if "slow" in shared and "sync" not in shared:
            shared.insert(0, "sync")
        if shared:
            async with stack.open_store(mode, workdir / "shared") as store, AsyncExitStack() as running:
                # Started side by side: each takes a second or so to import and listen.
                subscriber_port = stack.free_port()
                subscriber_url = f"http://127.0.0.1:{subscriber_port}"
                subscriber, forwarder, gw = await asyncio.gather(
                    running.enter_async_context(stack.run_app("subscriber", workdir, subscriber_port)),
                    running.enter_async_context(
                        stack.run_app(
                            "forwarder", workdir, stack.free_port(), "--target", subscriber_url + "/direct"
                        )
                    ),
                    running.enter_async_context(
                        stack.run_gateway(
                            store, workdir, workers=workers, settings=profile.gateway_settings()
                        )
                    ),
                )
                http = await running.enter_async_context(
                    aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
                )
                ctx = Context(profile, name, gw, subscriber, forwarder, http)
                for scenario in shared:
                    with progress(name, scenario):
                        rows += await SHARED[scenario](ctx)
        if "waiting" in only:
            with progress(name, "waiting"):
                async with stack.open_store(mode, workdir / "waiting") as store:
                    rows += await scenarios.many_waiting(profile, name, store, workdir / "waiting", workers)
    return rows


@contextmanager
def progress(setup: str, scenario: str) -> Iterator[None]:
    print(f"{setup}: {scenario} …", end="", file=sys.stderr, flush=True)
    started = time.perf_counter()
    yield
    print(f" {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


async def run(profile: Profile, setups: list[str], only: list[str]) -> list[Row]:
    rows: list[Row] = []
    for key in setups:
        if SETUPS[key][0] == "distributed":
            missing = await stack.services_missing()
            if missing:
                print(f"skipping {key}: {missing}", file=sys.stderr)
                continue
        rows += await run_setup(profile, key, only)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a few seconds per setup, tiny sizes (for CI)")
    parser.add_argument(
        "--setups", help=f"comma-separated, of {', '.join(SETUPS)} (default: all; with --smoke, two)"
    )
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated, of {', '.join(ALL)}")
    parser.add_argument(
        "--out", default="BENCHMARKS.md", help="the file whose results section is rewritten ('-': none)"
    )
    args = parser.parse_args(argv)
    default_setups = "embedded,distributed-1" if args.smoke else ",".join(SETUPS)
    setups, only = (args.setups or default_setups).split(","), args.only.split(",")
    unknown = [s for s in setups if s not in SETUPS] + [o for o in only if o not in ALL]
    if unknown:
        parser.error(f"unknown: {', '.join(unknown)}")
    profile = scenarios.SMOKE if args.smoke else scenarios.FULL
    rows = asyncio.run(run(profile, setups, only))
    print(report.tables(rows))
    if args.out != "-":
        report.write(Path(args.out), rows, profile.name)
        print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
