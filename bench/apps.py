"""The benchmark's other processes: a subscriber, and the forwarder that is the stack's floor.

Run as ``python -m bench.apps subscriber|forwarder --port N [--target URL]``, under the same
uvicorn settings as ``gateway serve`` (see ``serve``), so that the three differ only in what
their handlers do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.adapters.outbound.http import Outbound, open_outbound
from gateway.adapters.outbound.target_policy import TargetPolicy, parse_networks

OUTPUT = {"approver": "ada", "reason": "benchmark"}
# The callbacks an ASYNC delivery asks for are sent at most this many at a time.
CALLBACKS_IN_FLIGHT = 64


class SubscriberState:
    """Counts what arrived, and times the callbacks it sends for ASYNC deliveries."""

    def __init__(self) -> None:
        self.received: dict[str, int] = {}
        self.callback_ms: list[float] = []
        self.callback_failures = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.http: httpx.AsyncClient | None = None
        self.slots = asyncio.Semaphore(CALLBACKS_IN_FLIGHT)

    def count(self, name: str) -> None:
        self.received[name] = self.received.get(name, 0) + 1

    async def call_back(self, metadata: dict[str, Any]) -> None:
        assert self.http is not None
        async with self.slots:
            started = time.perf_counter()
            response = await self.http.post(
                metadata["callbackURL"], json={"secret": metadata["secret"], "output": OUTPUT}
            )
            if response.status_code == 204:
                self.callback_ms.append((time.perf_counter() - started) * 1000)
            else:
                self.callback_failures += 1


def create_subscriber() -> Starlette:
    state = SubscriberState()

    async def deliver(request: Request) -> Response:
        name = request.path_params["name"]
        body = json.loads(await request.body())
        state.count(name)
        if name == "sync":
            return JSONResponse(OUTPUT)
        if name == "async":
            task = asyncio.create_task(state.call_back(body["_metadata"]))
            state.tasks.add(task)
            task.add_done_callback(state.tasks.discard)
            return JSONResponse({})
        if name == "hang":
            await asyncio.sleep(3600)
        return Response(status_code=200)  # notify: fire-and-forget

    async def direct(request: Request) -> Response:
        """The same subscriber work as /sync, called directly: the latency floor."""
        await request.body()
        return JSONResponse(OUTPUT)

    async def stats(request: Request) -> Response:
        return JSONResponse(
            {
                "received": state.received,
                "callbackMs": state.callback_ms,
                "callbackFailures": state.callback_failures,
            }
        )

    async def reset(request: Request) -> Response:
        state.received.clear()
        state.callback_ms.clear()
        state.callback_failures = 0
        return Response(status_code=204)

    async def lifespan(app: Starlette) -> Any:
        async with httpx.AsyncClient(timeout=30) as http:
            state.http = http
            yield

    return Starlette(
        routes=[
            Route("/direct", direct, methods=["POST"]),
            Route("/stats", stats, methods=["GET"]),
            Route("/stats", reset, methods=["DELETE"]),
            Route("/deliver/{name}", deliver, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def create_forwarder(target: str) -> Starlette:
    """The floor of this stack: take a request, POST it on with the gateway's own outbound
    client (httpx's transport on aiohttp), return the answer."""
    client: dict[str, Outbound] = {}

    async def forward(request: Request) -> Response:
        answer = await client["http"].post(target, await request.body(), {"content-type": "application/json"})
        try:
            body = await answer.aread()
        finally:
            await answer.aclose()
        return Response(body, status_code=answer.status_code, media_type="application/json")

    async def lifespan(app: Starlette) -> Any:
        policy = TargetPolicy(parse_networks("127.0.0.0/8"), require_https=False)
        async with open_outbound(512, policy) as http:
            client["http"] = http
            yield

    return Starlette(routes=[Route("/forward", forward, methods=["POST"])], lifespan=lifespan)


def serve(app: Starlette, port: int) -> None:
    """The uvicorn settings `gateway serve` uses; a short shutdown, as /hang never ends."""
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=1
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.apps")
    parser.add_argument("app", choices=["subscriber", "forwarder"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", help="forwarder: the URL to forward to")
    args = parser.parse_args()
    if args.app == "subscriber":
        serve(create_subscriber(), args.port)
    else:
        serve(create_forwarder(args.target), args.port)


if __name__ == "__main__":
    main()
