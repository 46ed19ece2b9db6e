"""`gateway serve`: the API (and, embedded, the deliveries, the sweep and the schedules) in
this process.

A start goes in this order: the checks (startup.py: the database, Redis, the port bound), the
runtime opened (which refuses a key that does not decrypt what is stored), uvicorn serving on
the bound socket; only then `serving on` and, on a database without any API client, the
generated admin client's credentials are printed. So a start that fails has printed nothing
untrue and used up nothing: the credentials are created and shown in the same step, after
the port is bound.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import uvicorn

from gateway import startup
from gateway.api.app import create_app
from gateway.api.server import uvicorn_options
from gateway.bootstrap import open_runtime
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.usecases import api_clients


def run(settings: Settings, host: str, port: int, *, wait: bool) -> None:
    """Serve until stopped; StartupFailure (or the runtime's own error) if start-up fails."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(settings, host, port, wait=wait))


async def _serve(settings: Settings, host: str, port: int, *, wait: bool) -> None:
    await startup.check_database(settings)
    if settings.redis_url:
        await startup.wait_for_redis(settings.redis_url, wait=wait)
    sock = startup.listen(host, port)
    async with AsyncExitStack() as stack:
        stack.callback(sock.close)
        rt = await stack.enter_async_context(open_runtime(settings, "api"))
        config = uvicorn.Config(
            create_app(settings, rt),
            log_level="warning",
            log_config=None,  # uvicorn's records go to the root logger, formatted as the gateway's
            access_log=False,
            lifespan="on",
            **uvicorn_options(settings),
        )
        await _Server(config, stack, lambda: _announce(rt, host, port)).serve(sockets=[sock])


class _Server(uvicorn.Server):
    """uvicorn's server, which announces the start once it listens, and closes the runtime as
    it shuts down: uvicorn re-raises a stop signal as soon as `serve` returns, which would end
    the process before deliveries in flight had recorded their outcome."""

    def __init__(
        self, config: uvicorn.Config, runtime: AsyncExitStack, announce: Callable[[], Awaitable[None]]
    ) -> None:
        super().__init__(config)
        self._runtime = runtime
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            await self._announce()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        await self._runtime.aclose()


async def _announce(rt: Runtime, host: str, port: int) -> None:
    print(f"gateway: serving on http://{host}:{port} ({where(rt.settings)})", file=sys.stderr, flush=True)
    created = await api_clients.create_first_admin(rt)
    if created is not None:
        client_id, client_secret = created
        # Printed once, never logged and never stored: only its hash is kept.
        print(
            "\nCreated the admin API client (shown only this once; store it now):\n"
            f"  client_id:     {client_id}\n  client_secret: {client_secret}\n"
            "Set GATEWAY_BOOTSTRAP_CLIENT_ID / GATEWAY_BOOTSTRAP_CLIENT_SECRET to choose your own.\n",
            file=sys.stderr,
            flush=True,
        )


def where(settings: Settings) -> str:
    """The state this process uses, with absolute paths: the relative defaults (./gateway.db,
    .gateway-secret-key) depend on the directory it was started from."""
    from sqlalchemy import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        database = str(Path(url.database).resolve())
    else:
        database = url.render_as_string(hide_password=True)
    if settings.secret_key.strip():
        return f"database {database}"
    return f"database {database}, key file {Path(settings.secret_key_file).resolve()}"


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed, as uvicorn.run would choose."""
    try:
        import uvloop
    except ImportError:  # not on Windows
        return None
    return uvloop.new_event_loop
