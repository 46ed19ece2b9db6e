"""What `gateway serve` and `gateway worker` check before they start: the database reachable
(and, a server database, migrated), Redis reachable (waited for, unless told not to), the port
free. Each problem is a StartupFailure whose message is the one line cli.py prints before it
exits with code 2."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
from urllib.parse import urlsplit, urlunsplit

from gateway.settings import Settings

# How long one attempt to reach Redis may take, and the pauses between attempts while waiting.
REDIS_TIMEOUT = 2.0
FIRST_PAUSE = 1.0
LONGEST_PAUSE = 10.0


class StartupFailure(Exception):
    """Start-up cannot go on; the message is the line to print."""


async def check_database(settings: Settings) -> None:
    """The database answers and, unless it migrates itself (SQLite), its schema is at head."""
    from sqlalchemy import text

    from gateway.adapters.database import engine as db

    engine = db.create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        if not db.migrates_itself(engine):
            await db.check_schema(engine)
    except db.SchemaOutOfDate as exc:
        raise StartupFailure(str(exc)) from None
    except Exception as exc:
        raise StartupFailure(unreachable(settings.database_url, exc)) from None
    finally:
        await engine.dispose()


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


async def wait_for_redis(redis_url: str, *, wait: bool) -> None:
    """Return once Redis answers. Until then, one line per attempt and a growing pause; with
    ``wait`` False, the first failure ends the start. A refusal that waiting cannot mend (a
    wrong password, say) ends it too."""
    pause = FIRST_PAUSE
    while (reason := await _redis_problem(redis_url)) is not None:
        where = f"Redis at {masked(redis_url)}"
        if not wait:
            raise StartupFailure(
                f"GATEWAY_REDIS_URL: {where} is unreachable ({reason}); start it or fix the URL "
                "(without --no-wait, the gateway waits for it)"
            )
        print(
            f"gateway: {where} is unreachable ({reason}); retrying in {pause:g} s",
            file=sys.stderr,
            flush=True,
        )
        await asyncio.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE)


async def _redis_problem(redis_url: str) -> str | None:
    """Why Redis does not answer a PING, if it does not (StartupFailure if it never will)."""
    from redis.asyncio import Redis
    from redis.exceptions import AuthenticationError, ConnectionError, RedisError, ResponseError

    client = Redis.from_url(redis_url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
    try:
        await client.ping()
    except (AuthenticationError, ResponseError) as exc:  # answered, but refused us
        raise StartupFailure(
            f"GATEWAY_REDIS_URL: Redis at {masked(redis_url)} refused the connection ({exc}); "
            "check the URL's password and database"
        ) from None
    except (ConnectionError, TimeoutError, OSError, RedisError) as exc:
        return _socket_reason(exc)
    finally:
        await client.aclose()
    return None


def _socket_reason(exc: BaseException) -> str:
    """Why a connection failed, in words: redis-py wraps the socket's OSError (without
    chaining it as the cause) in a message full of numbers."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, OSError):
        cause = exc
    if isinstance(cause, OSError):
        if cause.errno is not None and cause.errno > 0:
            return os.strerror(cause.errno)
        if cause.strerror:
            return cause.strerror  # a resolver's error (socket.gaierror): negative numbers
    if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
        return f"no answer within {REDIS_TIMEOUT:g} s"
    return str(exc) or type(exc).__name__


def masked(url: str) -> str:
    """``url`` with its password, if any, replaced by ***: fit for a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port for uvicorn (which listens on it once the app has started),
    bound before anything is started or printed: a port in use ends the start in one line."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        problem = f"cannot listen on {host}:{port} ({_reason(exc)})"
        raise StartupFailure(f"{problem}; check --host (GATEWAY_HOST)") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            remedy = "stop what uses it, or choose another port with --port (GATEWAY_PORT)"
        else:
            remedy = "check --host (GATEWAY_HOST) and --port (GATEWAY_PORT)"
        raise StartupFailure(f"cannot listen on {host}:{port} ({_reason(exc)}); {remedy}") from None
    return sock


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
