"""Log records: one line each, as text for people or as JSON for collectors
(GATEWAY_LOG_FORMAT), carrying what they are about: the request's tracking id and, where
known, the invocation, its trigger and its subscription.

What a record is about is kept in a context variable, so that a use case's log line names it
without passing it down: the API binds each request's tracking id, a delivery binds its
invocation's (the tracking id of the start that created it, stored with the invocation, so a
worker's lines carry it too)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

# The fields a record may carry, as JSON names them.
FIELDS = ("trackingId", "invocationId", "triggerId", "subscriptionId")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# An incoming X-Request-Id is used as the tracking id only if it is this safe to log.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

_about: ContextVar[dict[str, str]] = ContextVar("gateway_log_context", default={})  # noqa: B039 (never mutated)


@contextmanager
def about(**fields: str | None) -> Iterator[None]:
    """Records logged within name these fields (those given, not None) too."""
    token = _about.set({**_about.get(), **{name: value for name, value in fields.items() if value}})
    try:
        yield
    finally:
        _about.reset(token)


def tracking_id() -> str | None:
    return _about.get().get("trackingId")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_about.get(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The message, then the tracking id it is about unless the message names it."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tracking = tracking_id()
        named = f"trackingId={tracking}"
        return line if tracking is None or named in line else f"{line} {named}"


def configure(level: str, log_format: str) -> None:
    """The root logger writes every record (the gateway's, uvicorn's, arq's) to stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
