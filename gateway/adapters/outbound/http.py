"""The outbound HTTP client: one delivery sent within its time limit, its answer read with a
bound, and only the addresses the target policy allows connected to.

Nothing here touches the database; usecases/deliver turns the Outcome into a state change.
"""

from __future__ import annotations

import asyncio
import socket
import zlib
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import aiohttp.abc
import httpx
from httpx_aiohttp import AiohttpTransport
from opentelemetry.trace import SpanKind, StatusCode

from gateway.adapters.outbound.target_policy import TargetPolicy, refusal_in
from gateway.domain.delivery import Delivery, Failure, Outcome, classify, failed
from gateway.telemetry import traces

IDLE_CONNECTION_SECONDS = 4.0
# How much of an answer the attempt log keeps (and of a fire-and-forget answer is read).
EXCERPT_BYTES = 1024
_IDENTITY = {"accept-encoding": "identity"}


class Outbound:
    """POSTs straight to an httpx transport. A delivery needs none of httpx.AsyncClient's
    layers (cookie jar, auth and redirect handling, a log line per request), and profiled
    they cost as much again as the transport itself. Redirects are never followed."""

    def __init__(self, transport: httpx.AsyncBaseTransport, policy: TargetPolicy) -> None:
        self._transport = transport
        self._policy = policy

    async def post(
        self, url: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """The answer, its body not yet read: close it with ``aclose()``."""
        # Only plain answers are asked for: a compressed one is decoded with a bound (_Body).
        request = httpx.Request("POST", url, content=body, headers={**(headers or {}), **_IDENTITY})
        self._policy.check_scheme(request.url.scheme)
        response = await self._transport.handle_async_request(request)
        response.request = request
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> Outbound:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def open_outbound(max_connections: int, policy: TargetPolicy) -> Outbound:
    """httpx's transport API on aiohttp's connection pool (httpx's own pool degrades badly
    with many requests in flight: encode/httpx#3215). No per-host limit, so one slow
    subscriber cannot take the connections another needs. Only ``policy``'s addresses are
    connected to."""

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            limit_per_host=0,
            # Idle connections are dropped before servers drop them (uvicorn and Node after
            # 5 s): reusing one as the server closes it failed healthy deliveries beside
            # 1,000 hanging ones in the benchmark (aiohttp keeps them 15 s by default).
            keepalive_timeout=IDLE_CONNECTION_SECONDS,
            resolver=_GuardedResolver(policy),
            socket_factory=_guarded_socket_factory(policy),
        )
        return aiohttp.ClientSession(connector=connector)

    # No timeout here: send() enforces one total limit (connect + response) itself.
    return Outbound(AiohttpTransport(client=session), policy)


class _GuardedResolver(aiohttp.abc.AbstractResolver):
    """Drops the addresses the policy refuses, and fails a name that has no other: the
    error then names the host. (aiohttp skips the resolver for IP literals; the socket
    factory below sees those.)"""

    def __init__(self, policy: TargetPolicy) -> None:
        # getaddrinfo in a thread, aiohttp's default without aiodns. It holds nothing to
        # release, which matters: a connector does not close a resolver it was given.
        self._resolver = aiohttp.ThreadedResolver()
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        allowed = set(self._policy.allowed_addresses(host, [r["host"] for r in results]))
        return [r for r in results if r["host"] in allowed]

    async def close(self) -> None:
        await self._resolver.close()


def _guarded_socket_factory(policy: TargetPolicy) -> aiohttp.SocketFactoryType:
    """The last word: every connection attempt, to a resolved name or an IP literal, passes
    here with the exact address it is about to connect to."""

    def factory(addr_info: aiohttp.AddrInfoType) -> socket.socket:
        family, type_, proto, _, address = addr_info
        policy.check_address(str(address[0]))
        return socket.socket(family, type_, proto)

    return factory


async def send(client: Outbound, delivery: Delivery, *, time_limit: float, max_bytes: int) -> Outcome:
    """POST the delivery in a client span, whose traceparent goes with it: a subscriber that
    traces joins the start's trace."""
    with traces.span("POST", kind=SpanKind.CLIENT) as span:
        span.set_attributes({"http.request.method": "POST", "url.full": redacted(delivery.url)})
        traces.inject(delivery.headers)
        outcome = await _send(client, delivery, time_limit=time_limit, max_bytes=max_bytes)
        if outcome.status_code is not None:
            span.set_attribute("http.response.status_code", outcome.status_code)
        if outcome.kind == "failed":
            span.set_status(StatusCode.ERROR, outcome.error)
    return outcome


async def _send(client: Outbound, delivery: Delivery, *, time_limit: float, max_bytes: int) -> Outcome:
    target = redacted(delivery.url)
    # A fire-and-forget answer's body is never used: only a failure's start is read, for the log.
    limit = EXCERPT_BYTES if delivery.fire_and_forget else max_bytes
    try:
        async with asyncio.timeout(time_limit):
            answer = await _post(client, delivery, limit, truncate=delivery.fire_and_forget)
    except TimeoutError:
        return failed(f"no answer from {target} within {time_limit:g} s", Failure.TRANSIENT)
    except _TooLarge:
        return failed(f"the subscriber's answer is larger than {max_bytes} bytes")
    except _Undecodable as exc:
        return failed(
            f"the subscriber's answer is encoded as {exc.encoding!r}, which the gateway does not "
            "decode; answer without Content-Encoding (deliveries ask for identity)"
        )
    except zlib.error:
        return failed("the subscriber's answer is not the compressed data its Content-Encoding says")
    except Exception as exc:
        refused = refusal_in(exc)
        if refused is not None:
            return failed(f"refused to deliver to {target}: {refused}")
        # Refused connections, DNS failures, and answers that are not HTTP at all (the
        # transport lets some aiohttp errors through unmapped): all end the delivery. The
        # transport's own error names mislead (a dropped connection is a ConnectTimeout),
        # so name aiohttp's.
        cause = exc.__cause__ or exc
        # No connection made: nothing was sent, so even a request-response may go again.
        unsent = isinstance(cause, aiohttp.ClientConnectorError)
        failure = Failure.UNSENT if unsent else Failure.TRANSIENT
        return failed(f"could not deliver to {target}: {type(cause).__name__}", failure)
    outcome = classify(delivery, answer.status, answer.body)
    retry_after = answer.retry_after if answer.status in (429, 503) else None
    excerpt = answer.body[:EXCERPT_BYTES].decode("utf-8", "replace") if answer.body else None
    return replace(outcome, status_code=answer.status, excerpt=excerpt, retry_after=retry_after)


def redacted(url: str) -> str:
    """The URL without query, fragment or user info, which may carry credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class _TooLarge(Exception):
    pass


class _Undecodable(Exception):
    def __init__(self, encoding: str) -> None:
        self.encoding = encoding


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    retry_after: str | None


async def _post(client: Outbound, delivery: Delivery, max_bytes: int, *, truncate: bool) -> _Answer:
    """The answer, its body read up to ``max_bytes``: more is an error (_TooLarge), or with
    ``truncate`` the first ``max_bytes`` only (the rest is not read)."""
    response = await client.post(delivery.url, delivery.body, delivery.headers)
    try:
        if truncate and 200 <= response.status_code < 300:
            # A fire-and-forget success needs nothing from its body: not even to wait for it.
            return _Answer(response.status_code, b"", None)
        body = _Body(response.headers.get("content-encoding", ""), max_bytes)
        # Raw bytes, decoded here with a bound: httpx's own decoding has none (a 987-byte
        # gzip bomb took a gateway from 150 MB to 1.19 GB).
        try:
            async for chunk in response.aiter_raw():
                body.feed(chunk)
            content = body.finish()
        except (_TooLarge, _Undecodable, zlib.error):
            if not truncate:
                raise
            content = body.kept()  # an excerpt: what was decoded before the bound
        return _Answer(response.status_code, content, response.headers.get("retry-after"))
    finally:
        await response.aclose()


class _Body:
    """An answer's body decoded as its Content-Encoding says (gzip or deflate, chained too),
    never holding more than ``limit`` bytes at any stage of the decoding."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        self._limit = limit
        encodings = [e.strip().lower() for e in content_encoding.split(",") if e.strip()]
        # Applied in the order listed: undone in reverse.
        self._stages = [_stage(e) for e in reversed(encodings) if e != "identity"]
        self._chunks: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        for stage in self._stages:
            chunk = self._bounded(stage, chunk)
        self._keep(chunk)

    def finish(self) -> bytes:
        tail = b""
        for stage in self._stages:
            tail = self._bounded(stage, tail) + stage.flush()
        self._keep(tail)
        return b"".join(self._chunks)

    def kept(self) -> bytes:
        return b"".join(self._chunks)

    def _bounded(self, stage: Any, data: bytes) -> bytes:
        out: bytes = stage.decompress(data, self._limit + 1)
        if stage.unconsumed_tail or len(out) > self._limit:
            raise _TooLarge
        return out

    def _keep(self, chunk: bytes) -> None:
        room = self._limit - self._size
        self._size += len(chunk)
        self._chunks.append(chunk[: max(room, 0)])
        if self._size > self._limit:
            raise _TooLarge


def _stage(encoding: str) -> Any:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return _Deflate()
    raise _Undecodable(encoding)


class _Deflate:
    """HTTP's deflate is zlib-wrapped, though some servers send it raw: told apart by its
    first bytes, as browsers do."""

    def __init__(self) -> None:
        self._stage: Any = None

    @property
    def unconsumed_tail(self) -> bytes:
        return b"" if self._stage is None else bytes(self._stage.unconsumed_tail)

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._stage is None:
            if not data:
                return b""
            wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._stage = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        return bytes(self._stage.decompress(data, max_length))

    def flush(self) -> bytes:
        return b"" if self._stage is None else bytes(self._stage.flush())
