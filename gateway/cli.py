"""The ``gateway`` command: serve, worker, migrate, example-subscriber."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import importlib.metadata
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import fields, replace

from gateway import startup
from gateway.client import commands as client_commands
from gateway.client import config as client_config
from gateway.settings import PREFIX, Settings, SettingsError
from gateway.startup import StartupFailure
from gateway.telemetry import logs

# A worker's health key (arq's, refreshed every 5 s), and how long `worker --check` waits for Redis.
HEALTH_KEY_SUFFIX = ":health-check"
CHECK_TIMEOUT = 0.5
# GATEWAY_* variables that are not settings: the test suite's own, and the client commands'.
NOT_SETTINGS = (
    frozenset({"GATEWAY_REQUIRE_SERVICES", "GATEWAY_TEST_POSTGRES", "GATEWAY_TEST_REDIS"})
    | client_config.ENVIRONMENT
)
NO_WAIT_HELP = "exit (code 2) if Redis is unreachable at start, rather than wait for it"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Request-response trigger gateway")
    parser.add_argument("--version", action="version", version=f"gateway {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API and the in-process dispatcher")
    serve.add_argument("--host", help="address to listen on (default: GATEWAY_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: GATEWAY_PORT or 8080)")
    serve.add_argument("--no-wait", action="store_true", help=NO_WAIT_HELP)
    commands.add_parser("migrate", help="create or upgrade the database schema (Alembic)")
    worker = commands.add_parser(
        "worker", help="run an arq worker that delivers invocations (needs GATEWAY_REDIS_URL)"
    )
    worker.add_argument(
        "--check", action="store_true", help="exit 0 if a worker on this queue is healthy, else 1"
    )
    worker.add_argument("--no-wait", action="store_true", help=NO_WAIT_HELP)
    worker.add_argument(
        "--metrics-port",
        type=int,
        help="serve this worker's metrics at /metrics on GATEWAY_HOST:PORT "
        "(default: GATEWAY_WORKER_METRICS_PORT; 0: none)",
    )
    client_commands.add_parsers(commands)  # login, triggers, invoke, ...: clients of a running gateway
    example = commands.add_parser(
        "example-subscriber", help="run a demo subscriber that approves every delivery, checking signatures"
    )
    example.add_argument("--host", default="127.0.0.1")
    example.add_argument("--port", type=int, default=9000)
    example.add_argument(
        "--mode",
        choices=["sync", "async", "dynamic"],
        default="sync",
        help="answer at once, by a callback a moment later, or later only if the input has "
        '"later": true (default: sync)',
    )
    example.add_argument(
        "--secret",
        action="append",
        help="the subscription's signingSecret (whsec_...), "
        "shown when it is created; repeat it during a rotation (default: $WEBHOOK_SECRET)",
    )
    example.add_argument("--no-verify", action="store_true", help="accept unsigned deliveries")
    demo = commands.add_parser(
        "demo", help="a walk-through: a gateway on a temporary database with sample subscribers"
    )
    demo.add_argument("--port", type=int, default=8080, help="where the gateway listens (0: any free port)")
    demo.add_argument("--exit", action="store_true", help="end after one walk-through")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in client_commands.COMMANDS:  # clients of the API: no server settings
        return client_commands.run(args)
    if args.command == "example-subscriber":
        from gateway.example_subscriber import handler
        from gateway.subscriber.serving import MissingSecret, serve, signing_secrets

        try:
            secrets = signing_secrets(args.secret, args.no_verify)
        except MissingSecret as exc:
            print(f"gateway: {exc}", file=sys.stderr)
            return 2
        logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s %(message)s")
        serve(handler(args.mode), host=args.host, port=args.port, secrets=secrets, name="example subscriber")
        return 0
    if args.command == "demo":
        return run_demo(args.port, exit_after=args.exit)

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    for warning in unknown_settings(os.environ):
        print(f"gateway: warning: {warning}", file=sys.stderr)
    if getattr(args, "metrics_port", None) is not None:
        try:
            settings = replace(settings, worker_metrics_port=args.metrics_port)
            settings.check()
        except SettingsError as exc:
            print(f"gateway: --metrics-port: {exc}", file=sys.stderr)
            return 2
    logs.configure(settings.log_level, settings.log_format)
    if args.command == "migrate":
        return asyncio.run(run_migrate(settings))
    if args.command == "worker" and args.check:
        return check_worker(settings)
    try:
        return start(args, settings)
    except KeyboardInterrupt:  # Ctrl-C while waiting for Redis, say: stopped, not failed
        print("gateway: stopped", file=sys.stderr)
        return 130
    except (SettingsError, StartupFailure) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # one line, as every start-up problem; where it came from at DEBUG
        logging.getLogger("gateway").debug("start-up failed", exc_info=True)
        print(f"gateway: {type(exc).__name__}: {exc} (GATEWAY_LOG_LEVEL=DEBUG shows where)", file=sys.stderr)
        return 2


def start(args: argparse.Namespace, settings: Settings) -> int:
    """`serve` or `worker`, after their checks (a StartupFailure or SettingsError if one fails)."""
    if args.command == "worker" and not settings.redis_url:
        print(
            "gateway: the worker needs GATEWAY_REDIS_URL (e.g. redis://127.0.0.1:6379); "
            "without it, `gateway serve` delivers in-process",
            file=sys.stderr,
        )
        return 2
    settings.signing_keys  # noqa: B018 (reads, or creates, the key file: a SettingsError first)
    from gateway.telemetry import traces  # here: `worker --check` must start fast

    traces.configure(args.command)
    from gateway.usecases.secret_keys import WrongKey  # here: `worker --check` must start fast

    try:
        if args.command == "serve":
            from gateway import serve

            host = args.host or settings.host
            port = args.port if args.port is not None else settings.port
            serve.run(settings, host, port, wait=not args.no_wait)
        else:
            from gateway import worker

            asyncio.run(_worker_checks(settings, wait=not args.no_wait))
            worker.run(settings)
    except WrongKey as exc:
        raise StartupFailure(str(exc)) from None
    return 0


async def _worker_checks(settings: Settings, *, wait: bool) -> None:
    await startup.check_database(settings)
    await startup.wait_for_redis(settings.redis_url, wait=wait)


def run_demo(port: int, *, exit_after: bool) -> int:
    from gateway import demo

    logs.configure("WARNING", "text")
    try:
        return demo.run(port, exit_after=exit_after)
    except StartupFailure as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


def unknown_settings(environ: Mapping[str, str]) -> list[str]:
    """A warning for each GATEWAY_* variable that is no setting (a misspelt one is ignored)."""
    known = {PREFIX + f.name.upper() for f in fields(Settings)}
    warnings = []
    for name in sorted(environ):
        if name.startswith(PREFIX) and name not in known and name not in NOT_SETTINGS:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            warnings.append(f"{name} is not a setting and is ignored{hint}")
    return warnings


def _version() -> str:
    try:
        return importlib.metadata.version("trigger-gateway")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


async def run_migrate(settings: Settings) -> int:
    from gateway.adapters.database import engine as db

    engine = db.create_engine(settings.database_url)
    try:
        await db.migrate(engine)
    finally:
        await engine.dispose()
    print("gateway: the database schema is up to date", file=sys.stderr)
    return 0


def check_worker(settings: Settings) -> int:
    """`gateway worker --check`: 0 if a worker on this queue reported in the last few seconds.
    One line either way, within a second even when Redis does not answer (the compose health
    check allows 5 s); it imports only what it needs."""
    if not settings.redis_url:
        print("gateway: no worker to check: GATEWAY_REDIS_URL is not set", file=sys.stderr)
        return 2
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    async def reported() -> bytes | None:
        client = Redis.from_url(
            settings.redis_url, socket_connect_timeout=CHECK_TIMEOUT, socket_timeout=CHECK_TIMEOUT
        )
        try:
            value: bytes | None = await client.get(settings.queue_name + HEALTH_KEY_SUFFIX)
        finally:
            await client.aclose()
        return value

    queue = settings.queue_name
    try:
        value = asyncio.run(reported())
    except (RedisError, OSError) as exc:
        print(
            f"gateway: Redis does not answer ({type(exc).__name__}); no worker can be seen", file=sys.stderr
        )
        return 1
    if value is None:
        print(f"gateway: no worker has reported on queue {queue!r} in the last 6 s", file=sys.stderr)
        return 1
    print(f"gateway: a worker is healthy on queue {queue!r} ({value.decode(errors='replace')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
