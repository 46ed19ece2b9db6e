"""Everything a use-case needs, built once per process."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass

from gateway.db import Sessions
from gateway.dispatch import Outbound
from gateway.limits import Limiter
from gateway.notify import Notifier
from gateway.queue import DispatchQueue
from gateway.security import Keys
from gateway.settings import Settings
from gateway.targets import TargetPolicy


@dataclass
class Runtime:
    settings: Settings
    sessions: Sessions
    keys: Keys
    queue: DispatchQueue
    notifier: Notifier
    http: Outbound
    limiter: Limiter
    # Which subscriber addresses may be called (the SSRF guard).
    targets: TargetPolicy


log = logging.getLogger("gateway")


async def best_effort(what: str, action: Awaitable[object]) -> None:
    """Queueing, wake-ups and starting the next run only make things prompt (the database
    and the sweep are the truth), so once a change is committed their failure must not fail
    the request."""
    try:
        await action
    except Exception:
        log.warning("%s failed; the sweep will catch up", what, exc_info=True)
