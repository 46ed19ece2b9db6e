"""Real HTTP servers on loopback for the tests: the gateway itself and subscriber apps."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp


def bound_socket() -> socket.socket:
    # IPPROTO_TCP explicitly, or asyncio leaves Nagle on and responses stall ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serve(app: ASGIApp, sock: socket.socket | None = None, **options: Any) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on loopback (with uvicorn.Config ``options``); yield its base URL."""
    sock = sock or bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1, **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # startup failed: raise its error here
            raise RuntimeError("server exited during startup")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes  # the body as sent, for checking signatures
    arrived: float = field(default_factory=time.time)


Behaviour = Callable[[Received], Awaitable[Response]]


def answer(
    status: int, body: Any = None, raw: bytes | None = None, headers: dict[str, str] | None = None
) -> Behaviour:
    async def respond(_: Received) -> Response:
        if status in (204, 304):  # no body: uvicorn cuts the connection over one
            return Response(status_code=status, headers=headers)
        if raw is not None:
            return Response(raw, status_code=status, media_type="application/json", headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    return respond


def hang(seconds: float) -> Behaviour:
    async def respond(_: Received) -> Response:
        await asyncio.sleep(seconds)
        return JSONResponse({})

    return respond


@dataclass
class Subscriber:
    """A subscriber app: POST /{name} runs behaviours[name] and records what arrived."""

    url: str = ""
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def endpoint(self, name: str, behaviour: Behaviour) -> str:
        self.behaviours[name] = behaviour
        return f"{self.url}/{name}"

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            name = request.path_params["name"]
            raw = await request.body()
            received = Received(request.url.path, dict(request.headers), json.loads(raw), raw)
            self.received.append(received)
            self.arrived.set()
            return await self.behaviours[name](received)

        return Starlette(routes=[Route("/{name}", handle, methods=["POST"])])

    async def wait_for(self, count: int, within: float = 5.0, path: str | None = None) -> list[Received]:
        """Wait until ``count`` deliveries have arrived (at ``path``, if given); all of them."""
        async with asyncio.timeout(within):
            while self.count(path) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received

    def count(self, path: str | None = None) -> int:
        return len(self.received) if path is None else sum(1 for r in self.received if r.path == path)
