"""Everything a use-case needs, built once per process."""

from __future__ import annotations

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
