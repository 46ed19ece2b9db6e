"""Circuit breaking: each subscription's consecutive failed deliveries are counted in the
database (every process sees them); past GATEWAY_BREAKER_FAILURES its circuit opens, and
deliveries wait or fail at once until, GATEWAY_BREAKER_COOLDOWN on, one probe goes. The
catalog's cached subscription carries the circuit (it is forgotten when the circuit opens or
closes, and when failures start or stop), so a healthy delivery costs nothing here."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, or_, update
from sqlmodel import col

from gateway.adapters.database.states import open_in_state
from gateway.domain import circuit
from gateway.domain.clock import timestamp
from gateway.domain.delivery import Outcome
from gateway.domain.model import Invocation, Status, Subscription
from gateway.runtime import Runtime
from gateway.usecases import catalog, subscriptions

log = logging.getLogger("gateway.circuit")

# The shortest wait of a delivery held by an open circuit (when the cached circuit is about
# to be replaced by a newer one, its times may already have passed).
MIN_WAIT = timedelta(seconds=1)


async def admit(rt: Runtime, sub: Subscription, now: datetime) -> datetime | None:
    """None: deliver now (the circuit is closed, or this delivery is its probe); else the
    circuit is open, and a delivery should wait until then."""
    state = circuit.state(sub.circuit_open, sub.probe_at, now)
    if state == circuit.State.CLOSED:
        return None
    if state == circuit.State.HALF_OPEN and await _probe(rt, sub.id, now):
        log.info("subscription=%s circuit half-open: this delivery probes it", sub.id)
        return None
    # Until the cooldown ends; past it (another delivery probes, or just did and closed the
    # circuit), look again shortly rather than wait out the probe's time limit.
    cooldown_ends = (sub.circuit_since or now) + timedelta(seconds=rt.settings.breaker_cooldown)
    return max(min(sub.probe_at or now, cooldown_ends), now + MIN_WAIT)


async def observe(rt: Runtime, sub: Subscription, outcome: Outcome, now: datetime) -> None:
    """Count a delivery's outcome for its subscription's circuit."""
    broken = circuit.broken(outcome)
    if broken:
        await _failed(rt, sub.id, outcome, now)
    elif broken is False and (sub.consecutive_failures or sub.circuit_open):
        await _succeeded(rt, sub, now)


async def _probe(rt: Runtime, subscription_id: str, now: datetime) -> bool:
    """Take the half-open circuit's one probe; the next may go only after this one's time limit."""
    settings = rt.settings
    next_probe = now + timedelta(seconds=settings.response_timeout + settings.stranded_grace)
    async with rt.sessions() as session:
        result = await session.execute(
            update(Subscription)
            .where(col(Subscription.id) == subscription_id, col(Subscription.circuit_open))
            .where(col(Subscription.probe_at) <= now)
            .values(probe_at=next_probe)
        )
        await session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def _failed(rt: Runtime, subscription_id: str, outcome: Outcome, now: datetime) -> None:
    settings = rt.settings
    count = col(Subscription.consecutive_failures)
    async with rt.sessions() as session:
        counted = (
            await session.execute(
                update(Subscription)
                .where(col(Subscription.id) == subscription_id)
                .values(
                    consecutive_failures=count + 1,
                    failing_since=func.coalesce(Subscription.failing_since, now),
                )
                .returning(count, col(Subscription.failing_since), col(Subscription.enabled))
            )
        ).one_or_none()
        if counted is None:  # deleted meanwhile
            return
        failures, failing_since, enabled = counted
        opened = False
        if settings.breaker_failures and failures >= settings.breaker_failures:
            # Trips a closed circuit, or re-opens one whose cooldown had passed (its probe, or a
            # delivery after it, failed). Deliveries that were in flight when it opened and
            # fail during its cooldown do not push the probe back.
            cooldown = timedelta(seconds=settings.breaker_cooldown)
            probe_at = now + cooldown
            trips = or_(~col(Subscription.circuit_open), col(Subscription.circuit_since) <= now - cooldown)
            result = await session.execute(
                update(Subscription)
                .where(col(Subscription.id) == subscription_id, trips)
                .values(circuit_open=True, circuit_since=now, probe_at=probe_at)
            )
            opened = bool(result.rowcount)  # type: ignore[attr-defined]
        await session.commit()
    if opened:
        log.warning(
            "subscription=%s circuit open after %d consecutive failed deliveries (last: %s); probe at %s",
            subscription_id,
            failures,
            outcome.error,
            timestamp(now + timedelta(seconds=settings.breaker_cooldown)),
        )
    if opened or failures == 1:
        await catalog.changed(rt)
    limit = settings.disabled_after
    if enabled and limit is not None and failing_since is not None and now - failing_since >= limit:
        reason = (
            f"its deliveries have failed since {timestamp(failing_since)} without a success "
            f"(GATEWAY_DISABLE_AFTER {settings.disable_after}); the last: {outcome.error}"
        )
        await subscriptions.disable(rt, subscription_id, reason)


async def _succeeded(rt: Runtime, sub: Subscription, now: datetime) -> None:
    """The subscriber answered: its failures are forgotten and its circuit closes, and what
    waited for the circuit is due at once (the sweep queues it, oldest first)."""
    async with rt.sessions() as session:
        result = await session.execute(
            update(Subscription)
            .where(col(Subscription.id) == sub.id)
            .where(or_(col(Subscription.consecutive_failures) > 0, col(Subscription.circuit_open)))
            .values(consecutive_failures=0, failing_since=None, circuit_open=False, probe_at=None)
            .returning(col(Subscription.id))
        )
        closed = result.one_or_none() is not None
        if closed and sub.circuit_open:
            await session.execute(
                update(Subscription).where(col(Subscription.id) == sub.id).values(circuit_since=now)
            )
            await session.execute(
                update(Invocation)
                .where(open_in_state(sub.id, Status.RETRYING))
                .where(col(Invocation.next_attempt) > now)
                .values(next_attempt=now)
            )
        await session.commit()
    if closed:
        if sub.circuit_open:
            log.info("subscription=%s circuit closed: its probe delivery succeeded", sub.id)
        await catalog.changed(rt)
