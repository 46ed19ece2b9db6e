"""`gateway demo`: an embedded gateway on a temporary database, sample subscribers beside it,
and a walk-through of each way a trigger is answered, printed as it happens.

Everything runs in this process: the gateway (as `gateway serve` runs it), and one Starlette
app on another loopback port that plays the subscribers. The walk-through goes through the
HTTP API, as a producer would. With `--exit` it ends after one walk-through; otherwise the
gateway keeps serving (and the console shows what happened) until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway import startup
from gateway.api.app import create_app
from gateway.bootstrap import open_runtime
from gateway.settings import Settings

CLIENT_ID = "demo"
CALLBACK_AFTER = 1.0  # seconds the ASYNC subscriber takes to "decide"
WAIT_FOR_EACH = 30.0  # seconds a walk-through step may take at most


class Step(NamedTuple):
    """One trigger of the walk-through: its subscriptions as (name, path, mode), and the
    inputs it is started with, one start each."""

    trigger_id: str
    name: str
    type: str
    subscriptions: tuple[tuple[str, str, str], ...]
    inputs: tuple[dict[str, Any], ...]


WALK_THROUGH = (
    Step(
        "demo:sync", "SYNC approval", "REQUEST_RESPONSE", (("approver", "/sync", "SYNC"),), ({"amount": 40},)
    ),
    Step(
        "demo:async",
        "ASYNC approval",
        "REQUEST_RESPONSE",
        (("human", "/async", "ASYNC"),),
        ({"amount": 900},),
    ),
    Step(
        "demo:dynamic",
        "DYNAMIC approval (200 with the output when it can, else 202 and a callback)",
        "REQUEST_RESPONSE",
        (("either", "/dynamic", "DYNAMIC"),),
        ({"amount": 70, "urgent": True}, {"amount": 5000, "urgent": False}),
    ),
    Step(
        "demo:notify",
        "Fire-and-forget notice to three subscribers",
        "FIRE_AND_FORGET",
        tuple((f"listener {n}", f"/notify/{n}", "SYNC") for n in (1, 2, 3)),
        ({"event": "account-created"},),
    ),
    Step(
        "demo:flaky",
        "A delivery retried (503 first, then 200)",
        "FIRE_AND_FORGET",
        (("flaky", "/flaky", "SYNC"),),
        ({"event": "retry-me"},),
    ),
)


def run(port: int, *, exit_after: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as folder:
        return asyncio.run(_demo(Path(folder), port, exit_after=exit_after))


async def _demo(folder: Path, port: int, *, exit_after: bool) -> int:
    gateway_socket = startup.listen("127.0.0.1", port)
    subscriber_socket = startup.listen("127.0.0.1", 0)
    base = f"http://127.0.0.1:{gateway_socket.getsockname()[1]}"
    subscribers = f"http://127.0.0.1:{subscriber_socket.getsockname()[1]}"
    client_secret = secrets.token_urlsafe(24)
    settings = _settings(folder, base, client_secret)
    async with AsyncExitStack() as stack:
        rt = await stack.enter_async_context(open_runtime(settings, "api"))
        app = create_app(settings, rt)
        await _serve(stack, app, gateway_socket)
        await _serve(stack, sample_subscribers(), subscriber_socket)
        print(f"gateway demo: serving on {base} (a temporary database in {folder})", flush=True)
        async with httpx.AsyncClient(base_url=base, timeout=WAIT_FOR_EACH + 5) as http:
            await _sign_in(http, client_secret)
            await _set_up(http, subscribers)
            for step in WALK_THROUGH:
                for input in step.inputs:
                    await _walk(http, step, input)
        _print_where(app, base, client_secret)
        if not exit_after:
            print("Ctrl-C to stop.", flush=True)
            await asyncio.Event().wait()
    return 0


def _settings(folder: Path, base: str, client_secret: str) -> Settings:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'demo.db'}",
        secret_key=secrets.token_urlsafe(32),
        public_url=base,
        bootstrap_client_id=CLIENT_ID,
        bootstrap_client_secret=client_secret,
        allowed_target_networks="127.0.0.0/8",  # the sample subscribers are on loopback
        retry_schedule="1",  # the flaky subscriber's second attempt a second after its first
        retry_jitter=0.0,
        log_level="WARNING",
    )
    settings.check()
    return settings


async def _serve(stack: AsyncExitStack, app: Any, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until the stack closes; return once it listens."""
    config = uvicorn.Config(app, log_level="warning", log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))

    async def stop() -> None:
        server.should_exit = True
        await task

    stack.push_async_callback(stop)
    while not server.started:
        if task.done():
            task.result()  # its error, if it failed to start
        await asyncio.sleep(0.01)


async def _sign_in(http: httpx.AsyncClient, client_secret: str) -> None:
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": client_secret}
    token = (await _call(http.post("/oauth/token", data=form)))["access_token"]
    http.headers["authorization"] = f"Bearer {token}"


async def _set_up(http: httpx.AsyncClient, subscribers: str) -> None:
    for step in WALK_THROUGH:
        trigger = {
            "id": step.trigger_id,
            "name": step.name,
            "type": step.type,
            "exampleInput": step.inputs[0],
        }
        await _call(http.post("/triggers", json=trigger))
        for name, path, mode in step.subscriptions:
            config = {"url": subscribers + path, "httpDispatchMode": mode}
            body = {
                "triggerId": step.trigger_id,
                "name": name,
                "httpConfig": config,
                "responseDeadline": "PT1M",
            }
            await _call(http.post("/trigger-subscriptions", json=body))


async def _walk(http: httpx.AsyncClient, step: Step, input: dict[str, Any]) -> None:
    """Start the trigger, then follow each invocation to its end, printing its journey."""
    start = {"triggerId": step.trigger_id, "input": input}
    started = await _call(http.post("/trigger-invocations/start", json=start))
    print(f"\n{step.name}\n  started {step.trigger_id} with {json.dumps(input)}", flush=True)
    # Which answer means "later": ASYNC's 200 {} and DYNAMIC's 202 (fire-and-forget: none).
    later = {"ASYNC": 200, "DYNAMIC": 202} if step.type == "REQUEST_RESPONSE" else {}
    acknowledging = {name: later.get(mode) for name, _, mode in step.subscriptions}
    journeys = await asyncio.gather(*(_journey(http, i["id"], acknowledging) for i in started))
    for lines in journeys:
        for line in lines:
            print(line, flush=True)


async def _journey(
    http: httpx.AsyncClient, invocation_id: str, acknowledging: dict[str, int | None]
) -> list[str]:
    status = await _final(http, invocation_id)
    attempts = await _call(http.get(f"/trigger-invocations/{invocation_id}/attempts"))
    lines = [f"  invocation {invocation_id[:8]} to {status.get('subscriptionName', '?')!r}:"]
    for attempt in attempts:
        answer = attempt.get("statusCode") or attempt.get("error")
        lines.append(f"    attempt {attempt['attempt']}: answered {answer} in {attempt['durationMs']} ms")
    acknowledgement = acknowledging.get(status.get("subscriptionName", ""))
    if attempts and acknowledgement is not None and attempts[-1].get("statusCode") == acknowledgement:
        lines.append(f"    acknowledged; its callback came {_took(status):.1f} s after the start")
    outcome = status["status"]
    result = status.get("completeInvocationInput") or {}
    output = result.get("output")
    lines.append(f"    {outcome}" + (f": {json.dumps(output)}" if output is not None else ""))
    return lines


def _took(status: dict[str, Any]) -> float:
    """Seconds from an invocation's creation to its completion."""
    created, completed = (datetime.fromisoformat(status[name]) for name in ("created", "completed"))
    return (completed - created).total_seconds()


async def _final(http: httpx.AsyncClient, invocation_id: str) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_FOR_EACH):
        while True:
            path = f"/trigger-invocations/{invocation_id}/status"
            status: dict[str, Any] = await _call(http.get(path, params={"waitSeconds": 5}))
            if status["status"] in ("COMPLETED", "FAILED", "EXPIRED"):
                return status


async def _call(request: Awaitable[httpx.Response]) -> Any:
    response = await request
    if response.is_error:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: {response.text}")
    return response.json()


def _print_where(app: Starlette, base: str, client_secret: str) -> None:
    print(f"\nAPI docs: {base}/docs", flush=True)
    if any(getattr(route, "path", "") == "/console" for route in app.routes):
        print(f"Console:  {base}/console (client id {CLIENT_ID}, secret {client_secret})", flush=True)
    else:
        print(f"API client: id {CLIENT_ID}, secret {client_secret}", flush=True)


# --- the sample subscribers -------------------------------------------------------------------


def sample_subscribers() -> Starlette:
    """One app answering each demo subscription at its own path."""
    tried: set[str] = set()

    async def sync(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"approved": body.get("amount", 0) < 1000, "by": "demo approver"})

    async def acknowledge(request: Request) -> JSONResponse:
        body = await request.json()
        later = BackgroundTask(_call_back, body["_metadata"], {"approved": True, "by": "demo human"})
        return JSONResponse({}, background=later)

    async def dynamic(request: Request) -> JSONResponse:
        body = await request.json()
        if body.get("urgent"):
            return JSONResponse({"approved": True, "by": "demo rule"})
        later = BackgroundTask(_call_back, body["_metadata"], {"approved": False, "by": "demo human"})
        return JSONResponse({}, status_code=202, background=later)

    async def notify(request: Request) -> JSONResponse:
        return JSONResponse({})

    async def flaky(request: Request) -> JSONResponse:
        invocation_id = request.headers.get("x-invocation-id", "")
        if invocation_id not in tried:
            tried.add(invocation_id)
            return JSONResponse({"error": "not now"}, status_code=503)
        return JSONResponse({})

    handlers: dict[str, Callable[[Request], Awaitable[JSONResponse]]] = {
        "/sync": sync,
        "/async": acknowledge,
        "/dynamic": dynamic,
        "/notify/{n}": notify,
        "/flaky": flaky,
    }
    return Starlette(routes=[Route(path, handler, methods=["POST"]) for path, handler in handlers.items()])


async def _call_back(metadata: dict[str, Any], output: dict[str, Any]) -> None:
    """The ASYNC answer: the output, a moment later, to the invocation's callback URL."""
    await asyncio.sleep(CALLBACK_AFTER)
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            metadata["callbackURL"], json={"secret": metadata["secret"], "output": output}
        )
    if response.is_error:
        print(f"demo subscriber: the callback was refused: {response.text}", file=sys.stderr, flush=True)
