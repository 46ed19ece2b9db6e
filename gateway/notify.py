"""Wake long-polling status requests when an invocation reaches a terminal state."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class Notifier:
    """In-process: every transition made by this process wakes this process's waiters."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @contextmanager
    def watch(self, invocation_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiters.setdefault(invocation_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(invocation_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[invocation_id]

    def notify(self, invocation_ids: Iterable[str]) -> None:
        for invocation_id in invocation_ids:
            for event in self._waiters.get(invocation_id, ()):
                event.set()
