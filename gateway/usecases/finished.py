"""What follows an invocation's final state, wherever it was reached (delivery, callback,
sweep): it is counted, long-polls on it wake, and its lane's next run may start."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.runtime import Runtime, best_effort
from gateway.telemetry import metrics
from gateway.usecases import runs


class Ended(Protocol):
    """An invocation row, or the ENDED_COLUMNS a final transition returns."""

    @property
    def id(self) -> str: ...
    @property
    def subscription_id(self) -> str: ...
    @property
    def tenant_id(self) -> str | None: ...
    @property
    def run_id(self) -> str | None: ...
    @property
    def trigger_id(self) -> str: ...
    @property
    def dispatch_mode(self) -> str: ...
    @property
    def status(self) -> str: ...


async def after_final(rt: Runtime, ended: Sequence[Ended]) -> None:
    if not ended:
        return
    for inv in ended:
        metrics.finished(inv, inv.status)
    await best_effort("waking long-polls", rt.notifier.notify([inv.id for inv in ended]))
    lanes = [runs.Lane(inv.subscription_id, inv.tenant_id) for inv in ended if inv.run_id is not None]
    await runs.promote_after(rt, lanes)
