"""How the API listens: uvicorn with httptools, with the bounds uvicorn leaves out.

uvicorn's httptools protocol limits neither a request's headers nor the time they and the
body take to arrive: idle, slow-header and slow-body connections stayed open 95 s, and a
64 MiB header was answered. Here a request whose headers pass MAX_HEADER_BYTES gets 431; one
whose headers are not complete within GATEWAY_HEADER_TIMEOUT of the connection (its first
request) or of its first byte (later ones), or whose body is not within GATEWAY_BODY_TIMEOUT of
its headers, gets 408 and is closed; and past GATEWAY_MAX_CONNECTIONS connections (or
requests in progress) uvicorn answers 503. The checks run per read, not per byte.

uvicorn also lower-cases every response header name; SailPoint's SDKs read X-Total-Count from
a case-sensitive dict, so that one is sent spelled as SailPoint spells it.
"""

from __future__ import annotations

import asyncio
import http
import json
import uuid
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.api.errors import error_body
from gateway.settings import Settings

MAX_HEADER_BYTES = 16 * 1024

# Response header names sent with SailPoint's spelling rather than uvicorn's lower case.
SPELLED = {b"\r\nx-total-count:": b"\r\nX-Total-Count:"}


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.Config's options for serving the gateway's app."""

    class BoundedHttpTools(_BoundedHttpTools):
        header_timeout = settings.header_timeout
        body_timeout = settings.body_timeout

    return {"http": BoundedHttpTools, "limit_concurrency": settings.max_connections}


class _BoundedHttpTools(HttpToolsProtocol):
    header_timeout = 10.0
    body_timeout = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Raw bytes received since the last request's headers (or end) while the next
        # request's headers are incomplete: what httptools buffers for them. Counted per read,
        # so the bound is MAX_HEADER_BYTES plus at most one read.
        self._unparsed = 0
        self._header_bytes = 0  # the request line and headers parsed so far
        self._reading_headers = True
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None
        self._arm(self.header_timeout)  # a connection that never sends anything

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._reading_headers:
            self._unparsed += len(data)
            if self._deadline is None:
                self._arm(self.header_timeout)
        super().data_received(data)
        if self._reading_headers and self._unparsed > MAX_HEADER_BYTES and not self._refused:
            self._refuse(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            super().on_url(url)
            self._header_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._refused:
            super().on_header(name, value)
            self._header_bytes += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._unparsed = 0
        self._disarm()
        if self._header_bytes > MAX_HEADER_BYTES:  # complete within one large read
            self._refuse(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            return
        self._arm(self.body_timeout)
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = cast(asyncio.Transport, _SpellingHeaders(self.transport))

    def on_body(self, body: bytes) -> None:
        if not self._refused:  # httptools goes on parsing the read that was refused
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._disarm()
        self._reading_headers = True  # what follows is the next request's headers
        self._unparsed = 0
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            self._refuse(http.HTTPStatus.REQUEST_TIMEOUT)
        else:
            self.transport.close()

    def _refuse(self, status: http.HTTPStatus) -> None:
        """Answer ``status`` in the API's error format, if nothing was answered yet, and close."""
        self._refused = True
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app, if it started, gets http.disconnect
            self.cycle.message_event.set()
        tracking = uuid.uuid4().hex
        body = json.dumps(error_body(status.value, tracking, self._why(status))).encode()
        head = f"HTTP/1.1 {status.value} {status.phrase}\r\ncontent-type: application/json\r\n"
        head += f"x-tracking-id: {tracking}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
        self.transport.write(head.encode() + body)
        self.transport.close()

    def _why(self, status: http.HTTPStatus) -> str:
        if status == http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE:
            limit = MAX_HEADER_BYTES // 1024
            return f"the request line and headers are over {limit} KiB; send a shorter URL or fewer headers"
        return (
            f"the request was too slow: send its headers within {self.header_timeout:g} s "
            f"and its body within {self.body_timeout:g} s"
        )


class _SpellingHeaders:
    """A request's transport that rewrites the names in SPELLED in its response's head (the
    write that starts with the status line: JSON and chunked bodies never do)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        if data.startswith(b"HTTP/1.1 "):
            head, separator, body = data.partition(b"\r\n\r\n")
            for lower, spelled in SPELLED.items():
                head = head.replace(lower, spelled)
            data = head + separator + body
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
