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
from dataclasses import fields

from gateway.settings import PREFIX, Settings, SettingsError

# A worker's health key (arq's, refreshed every 5 s), and how long `worker --check` waits for Redis.
HEALTH_KEY_SUFFIX = ":health-check"
CHECK_TIMEOUT = 0.5
# GATEWAY_* variables that are not settings: the test suite's own.
NOT_SETTINGS = frozenset({"GATEWAY_REQUIRE_SERVICES", "GATEWAY_TEST_POSTGRES", "GATEWAY_TEST_REDIS"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Request-response trigger gateway")
    parser.add_argument("--version", action="version", version=f"gateway {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API and the in-process dispatcher")
    serve.add_argument("--host", help="address to listen on (default: GATEWAY_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: GATEWAY_PORT or 8080)")
    commands.add_parser("migrate", help="create or upgrade the database schema (Alembic)")
    worker = commands.add_parser(
        "worker", help="run an arq worker that delivers invocations (needs GATEWAY_REDIS_URL)"
    )
    worker.add_argument(
        "--check", action="store_true", help="exit 0 if a worker on this queue is healthy, else 1"
    )
    example = commands.add_parser(
        "example-subscriber", help="run a demo subscriber that approves every delivery (SYNC)"
    )
    example.add_argument("--host", default="127.0.0.1")
    example.add_argument("--port", type=int, default=9000)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "example-subscriber":
        import uvicorn

        from gateway.example_subscriber import create_example_subscriber

        logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s %(message)s")
        print(f"example subscriber: answering POSTs on http://{args.host}:{args.port}/", file=sys.stderr)
        uvicorn.run(create_example_subscriber(), host=args.host, port=args.port, log_level="warning")
        return 0

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    for warning in unknown_settings(os.environ):
        print(f"gateway: warning: {warning}", file=sys.stderr)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if args.command == "migrate":
        return asyncio.run(run_migrate(settings))
    if args.command == "worker" and args.check:
        return check_worker(settings)
    problem = asyncio.run(schema_problem(settings))
    if problem:
        print(f"gateway: {problem}", file=sys.stderr)
        return 2
    if args.command == "worker":
        return run_worker(settings)
    import uvicorn
    from sqlalchemy import make_url

    from gateway.api.app import create_app
    from gateway.api.server import uvicorn_options

    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    print(f"gateway: serving on http://{host}:{port} (database {database})", file=sys.stderr)
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, **uvicorn_options(settings))
    return 0


async def schema_problem(settings: Settings) -> str | None:
    """Why this database cannot be served yet (unreachable, or a server database not
    migrated), if so, in one line."""
    from sqlalchemy import text

    from gateway.adapters.database import engine as db

    engine = db.create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        if not db.migrates_itself(engine):
            await db.check_schema(engine)
    except db.SchemaOutOfDate as exc:
        return str(exc)
    except Exception as exc:
        return unreachable(settings.database_url, exc)
    finally:
        await engine.dispose()
    return None


def unreachable(database_url: str, exc: Exception) -> str:
    """What a failed first connection to the database means, and what to do."""
    from sqlalchemy import make_url

    url = make_url(database_url)
    cause = _root(exc)
    name = type(cause).__name__
    if url.get_backend_name() == "sqlite":
        return (
            f"GATEWAY_DATABASE_URL: cannot open the SQLite file {url.database!r} ({cause}); check that "
            "its directory exists and is writable"
        )
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    if getattr(cause, "sqlstate", None) == "3D000":  # invalid_catalog_name
        missing = f"there is no database {url.database!r} on {where}"
        return f"GATEWAY_DATABASE_URL: {missing}; create it or fix the URL"
    if isinstance(cause, OSError):
        reason = cause.strerror or name
        return f"GATEWAY_DATABASE_URL: cannot reach PostgreSQL at {where} ({reason}); is it running?"
    return f"GATEWAY_DATABASE_URL: PostgreSQL at {where} refused the connection ({name}: {cause})"


def _root(exc: BaseException) -> BaseException:
    """The driver's own error under SQLAlchemy's wrappers."""
    while True:
        inner = exc.__cause__ or getattr(exc, "orig", None)
        if not isinstance(inner, BaseException) or inner is exc:
            return exc
        exc = inner


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


def run_worker(settings: Settings) -> int:
    if not settings.redis_url:
        print(
            "gateway: the worker needs GATEWAY_REDIS_URL (e.g. redis://127.0.0.1:6379); "
            "without it, `gateway serve` delivers in-process",
            file=sys.stderr,
        )
        return 2
    from gateway import worker

    worker.run(settings)
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
