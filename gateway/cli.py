"""The ``gateway`` command: serve, worker, migrate, example-subscriber."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import uvicorn
from sqlalchemy import make_url

from gateway.adapters.database import engine as db
from gateway.api.app import create_app
from gateway.api.server import uvicorn_options
from gateway.example_subscriber import create_example_subscriber
from gateway.settings import Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Request-response trigger gateway")
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
        logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s %(message)s")
        print(f"example subscriber: answering POSTs on http://{args.host}:{args.port}/", file=sys.stderr)
        uvicorn.run(create_example_subscriber(), host=args.host, port=args.port, log_level="warning")
        return 0

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if args.command == "migrate":
        return asyncio.run(run_migrate(settings))
    if not (args.command == "worker" and args.check):
        problem = asyncio.run(schema_problem(settings))
        if problem:
            print(f"gateway: {problem}", file=sys.stderr)
            return 2
    if args.command == "worker":
        return run_worker(settings, check_only=args.check)
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    print(f"gateway: serving on http://{host}:{port} (database {database})", file=sys.stderr)
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, **uvicorn_options(settings))
    return 0


async def schema_problem(settings: Settings) -> str | None:
    """Why this database cannot be served yet (a server database not migrated), if so."""
    engine = db.create_engine(settings.database_url)
    try:
        if not db.migrates_itself(engine):
            await db.check_schema(engine)
    except db.SchemaOutOfDate as exc:
        return str(exc)
    finally:
        await engine.dispose()
    return None


async def run_migrate(settings: Settings) -> int:
    engine = db.create_engine(settings.database_url)
    try:
        await db.migrate(engine)
    finally:
        await engine.dispose()
    print("gateway: the database schema is up to date", file=sys.stderr)
    return 0


def run_worker(settings: Settings, *, check_only: bool) -> int:
    if not settings.redis_url:
        print(
            "gateway: the worker needs GATEWAY_REDIS_URL (e.g. redis://127.0.0.1:6379); "
            "without it, `gateway serve` delivers in-process",
            file=sys.stderr,
        )
        return 2
    from gateway import worker

    if check_only:
        return worker.check(settings)
    worker.run(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
