"""Everything a use case needs, built once per process by bootstrap.open_runtime: the
settings, the database, the keys, and the ports (queue, notifier, limiter, outbound HTTP)
with the implementations of this process's mode."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from gateway.adapters.database.engine import Sessions
from gateway.adapters.database.invocation_store import InvocationStore
from gateway.adapters.limiter import Limiter
from gateway.adapters.notifier import Notifier
from gateway.adapters.outbound.http import Outbound
from gateway.adapters.outbound.target_policy import TargetPolicy
from gateway.adapters.queue import DispatchQueue
from gateway.domain.keys import Keys
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.usecases.api_clients import KnownClients
    from gateway.usecases.catalog import Catalog


@dataclass
class Runtime:
    settings: Settings
    sessions: Sessions
    # The invocation statements of every start, delivery and status read.
    invocations: InvocationStore
    keys: Keys
    queue: DispatchQueue
    notifier: Notifier
    http: Outbound
    limiter: Limiter
    # Which subscriber addresses may be called (the SSRF guard).
    targets: TargetPolicy
    # Whether the API client an access token names still exists (cached for a second).
    known_clients: KnownClients
    # The triggers and subscriptions starts and deliveries read (usecases/catalog.py).
    catalog: Catalog
    # Distributed mode's Redis (its queue, notifier and limiter use it), for health checks.
    redis: Redis | None = None


log = logging.getLogger("gateway")


async def best_effort(what: str, action: Awaitable[object]) -> None:
    """Queueing, wake-ups and starting the next run only make things prompt (the database
    and the sweep are the truth), so once a change is committed their failure must not fail
    the request. An outage (Redis gone, say) is logged once when it starts, in one line, and
    once when it ends: not a traceback per request (that is at DEBUG)."""
    try:
        await action
    except Exception as exc:
        failures = _failing.get(what, 0)
        _failing[what] = failures + 1
        if failures == 0:
            log.warning(
                "%s failed (%s: %s); the sweep will catch up. Not logged again until it works",
                what,
                type(exc).__name__,
                exc,
            )
        log.debug("%s failed", what, exc_info=True)
        return
    failures = _failing.pop(what, 0)
    if failures:
        log.warning("%s works again, after %d failure(s)", what, failures)


# What best_effort has seen failing, and how often since it last worked (per process).
_failing: dict[str, int] = {}
