"""Wake-ups within one process (embedded mode, and each process of the distributed one)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager


class LocalNotifier:
    """Wakes the waiters of this process."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._catalog_listeners: list[Callable[[], None]] = []
        self._work_listeners: list[Callable[[], None]] = []

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

    async def notify(self, invocation_ids: Iterable[str]) -> None:
        self.wake(invocation_ids)

    def wake(self, invocation_ids: Iterable[str]) -> None:
        for invocation_id in invocation_ids:
            for event in self._waiters.get(invocation_id, ()):
                event.set()

    def on_catalog_change(self, listener: Callable[[], None]) -> None:
        self._catalog_listeners.append(listener)

    async def announce_catalog_change(self) -> None:
        self.catalog_changed()

    def catalog_changed(self) -> None:
        for listener in self._catalog_listeners:
            listener()

    def on_work_queued(self, listener: Callable[[], None]) -> None:
        self._work_listeners.append(listener)

    def work_queued(self) -> None:
        for listener in self._work_listeners:
            listener()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass
