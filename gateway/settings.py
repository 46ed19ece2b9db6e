"""One Settings object, read from ``GATEWAY_*`` environment variables."""

from __future__ import annotations

import functools
import math
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.adapters.outbound.target_policy import parse_networks
from gateway.domain.clock import parse_deadline, parse_duration

PREFIX = "GATEWAY_"
MIN_KEY_LENGTH = 32
# The database URLs the gateway can drive (SQLAlchemy's async drivers).
DATABASE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
# A retry schedule's bounds: a week between two attempts, 50 attempts in all.
MAX_RETRY_DELAY = 7 * 86400.0
MAX_RETRIES = 50
BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


class SettingsError(ValueError):
    """A setting has a value the gateway cannot use; the message names it."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///./gateway.db"
    # Total time a subscriber has to answer a delivery (connect + response), in seconds.
    response_timeout: float = 10.0
    # Base URL subscribers use to reach this gateway; callbackURL is built from it.
    public_url: str = "http://127.0.0.1:8080"
    # Signs callback secrets and access tokens. Comma-separated: the first signs, all verify.
    secret_key: str = ""
    secret_key_file: str = ".gateway-secret-key"
    max_body_bytes: int = 1024 * 1024
    # Largest answer body read from a subscriber; bigger answers fail the invocation.
    max_response_bytes: int = 1024 * 1024
    max_response_deadline: str = "P30D"
    # SSRF guard: subscribers must be at public addresses, except in these networks
    # (comma-separated CIDR, e.g. "10.0.0.0/8,fd00::/8"); and, if set, reached over https.
    allowed_target_networks: str = ""
    require_https: bool = False
    # Deliveries in flight at once. A subscriber that never answers holds one until the time
    # limit, so this is set well above how many may hang at once (each costs a socket).
    dispatch_concurrency: int = 4096
    # How long a stop waits for the deliveries in flight to end and record their outcome, in
    # seconds (the time limit, and a little for recording); what is still running after it is
    # cut off and delivered again after the restart. Keep it under the orchestrator's kill
    # timeout (docker-compose.yml gives 15 s).
    stop_grace: float = 12.0
    # How often the sweep looks for passed deadlines and stranded deliveries, in seconds.
    sweep_interval: float = 0.5
    # The sweep's patience, in seconds: a PENDING invocation not claimed this long after it was
    # queued (its message lost) is queued again; a DISPATCHING one older than the time limit
    # plus stranded_grace (room to record its outcome) was cut off by a crash and is delivered
    # again. Too small: work merely waiting its turn is queued twice, a live delivery sent twice.
    requeue_after: float = 5.0
    stranded_grace: float = 5.0
    # Access tokens are short-lived: a deleted or rotated client's tokens die within this.
    token_ttl: int = 900
    # How long a rotated-out signing secret or client secret keeps working, in seconds.
    rotation_grace: int = 86400
    # Abuse limits (0 = no limit). Requests per second each API client may make, sustained,
    # and how many it may make at once on top of an idle budget.
    rate_limit: float = 300.0
    rate_burst: int = 600
    # The same for each subscription's webhook URL, which takes calls without an access token.
    webhook_rate_limit: float = 100.0
    webhook_rate_burst: int = 200
    # Wrong secrets accepted within failure_window seconds, then 429 until the window ends:
    # per invocation's callback from one address (IPv6: one /64), and from all addresses;
    # at POST /oauth/token per client id from one address, per client id from all addresses,
    # and per address. The ceilings over all addresses are high, so that an anonymous flood
    # naming a client id or an invocation cannot lock its owner out.
    callback_failure_limit: int = 10
    callback_invocation_failure_limit: int = 1000
    token_failure_limit: int = 10
    token_client_failure_limit: int = 1000
    token_address_failure_limit: int = 100
    failure_window: float = 300.0
    # Loop guard: how many deliveries deep a start may be raised by a subscriber's own action
    # (it sends back the X-Invocation-Id header it was delivered). 0: none; the rest are
    # recorded as SUPPRESSED.
    max_trigger_depth: int = 0
    # Most triggers one debounced run carries, and most bytes of their payloads and headers
    # (a first trigger goes whatever its size); the rest go into the run after it.
    max_bundle: int = 100
    max_bundle_bytes: int = 4 * 1024 * 1024
    # Fire-and-forget deliveries that failed for a reason worth trying again (no connection,
    # no answer in time, 408, 429, 5xx) are tried again after each of these delays in turn,
    # in seconds after the attempt before (Svix's schedule: 8 attempts over 27 hours), each
    # within plus or minus retry_jitter of itself (0: exactly). Empty: one attempt only.
    # Request-response deliveries are tried again only when nothing was sent, and only
    # before their deadline. A Retry-After on a 429 or 503 delays the next attempt to at
    # least that time, at most retry_after_max seconds away.
    retry_schedule: str = "5,300,1800,7200,18000,36000,36000"
    retry_jitter: float = 0.2
    retry_after_max: float = 3600.0
    # How long finished invocations (and their attempt logs) are kept, as ISO-8601 durations:
    # completed ones, and failed or expired ones. P0D keeps them forever.
    retention_completed: str = "P7D"
    retention_failed: str = "P30D"
    # Circuit breaking: after breaker_failures consecutive failed deliveries (no connection, no
    # answer in time, 5xx) a subscription's circuit opens: deliveries wait (fire-and-forget)
    # or fail at once (request-response) until, breaker_cooldown seconds on, one probe
    # delivery goes. 0 failures: never opens. After disable_after (ISO-8601) of failures
    # without a success, the subscription is disabled (P0D: never).
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0
    disable_after: str = "P5D"
    # How long a start's Idempotency-Key is remembered, in seconds.
    idempotency_ttl: int = 86400
    bootstrap_client_id: str = ""
    bootstrap_client_secret: str = ""
    triggers_file: str = ""
    # Distributed mode: with a Redis URL, API processes enqueue and `gateway worker` delivers.
    redis_url: str = ""
    queue_name: str = "gateway"
    # The shortest spacing of a busy worker's polls of Redis for jobs, in seconds. An idle
    # worker polls when told that work was queued, and every worker.IDLE_POLL otherwise.
    worker_poll_delay: float = 0.005
    log_level: str = "INFO"
    # "text" (one human line per record) or "json" (one JSON object per line, for collectors).
    log_format: str = "text"
    # GET /metrics: readable with a token carrying metrics:read, or by anyone when public.
    metrics_public: bool = False
    # Where `gateway worker` serves its metrics (0: nowhere); --metrics-port overrides.
    worker_metrics_port: int = 0
    host: str = "127.0.0.1"
    port: int = 8080
    # How long a request's headers may take to arrive (from the connection for its first
    # request, from its first byte for later ones) and its body (from its headers), in seconds;
    # slower ones get 408 and are closed. Past max_connections open connections (or requests
    # in progress) per process, requests get 503.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 4096

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _convert(f.name, f.type, raw)
        values.update(overrides)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        self._check_database()
        if self.log_level.upper() not in LOG_LEVELS:
            raise SettingsError(
                f"GATEWAY_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {self.log_level!r}"
            )
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(f"GATEWAY_LOG_FORMAT must be text or json, not {self.log_format!r}")
        if not 0 <= self.worker_metrics_port <= 65535:
            raise SettingsError("GATEWAY_WORKER_METRICS_PORT must be a port number (0: no metrics server)")
        try:
            parse_deadline(self.max_response_deadline)
        except ValueError:
            raise SettingsError(
                f"GATEWAY_MAX_RESPONSE_DEADLINE must be an ISO-8601 duration such as P30D, "
                f"not {self.max_response_deadline!r}"
            ) from None
        if self.triggers_file and not Path(self.triggers_file).is_file():
            raise SettingsError(
                f"GATEWAY_TRIGGERS_FILE names {self.triggers_file!r}, which is not a file here "
                f"(working directory {os.getcwd()}); give its path, or unset it"
            )
        if self.response_timeout <= 0:
            raise SettingsError("GATEWAY_RESPONSE_TIMEOUT must be a positive number of seconds")
        if self.max_body_bytes < 1024:
            raise SettingsError("GATEWAY_MAX_BODY_BYTES must be at least 1024")
        if self.dispatch_concurrency < 1:
            raise SettingsError("GATEWAY_DISPATCH_CONCURRENCY must be at least 1")
        self.retention  # noqa: B018 (raises SettingsError for a duration it cannot parse)
        self.disabled_after  # noqa: B018 (likewise)
        if self.breaker_failures < 0:
            raise SettingsError("GATEWAY_BREAKER_FAILURES must be 0 (never open) or more failures")
        if not math.isfinite(self.breaker_cooldown) or self.breaker_cooldown <= 0:
            raise SettingsError("GATEWAY_BREAKER_COOLDOWN must be a positive number of seconds")
        if self.idempotency_ttl < 1:
            raise SettingsError("GATEWAY_IDEMPOTENCY_TTL must be at least 1 second")
        if self.token_ttl < 1:
            raise SettingsError("GATEWAY_TOKEN_TTL must be at least 1 second")
        if self.rotation_grace < 0:
            raise SettingsError("GATEWAY_ROTATION_GRACE must be 0 or more seconds")
        self._check_limits()
        try:
            parse_networks(self.allowed_target_networks)
        except ValueError as exc:
            raise SettingsError(f"GATEWAY_ALLOWED_TARGET_NETWORKS: {exc}") from None
        for name in ("header_timeout", "body_timeout", "sweep_interval", "requeue_after", "stranded_grace"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be a positive number of seconds")
        if self.max_connections < 1:
            raise SettingsError("GATEWAY_MAX_CONNECTIONS must be at least 1")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("GATEWAY_REDIS_URL must be a redis:// or rediss:// URL")
        if self.worker_poll_delay <= 0:
            raise SettingsError("GATEWAY_WORKER_POLL_DELAY must be a positive number of seconds")
        if not self.public_url.startswith(("http://", "https://")):
            raise SettingsError("GATEWAY_PUBLIC_URL must start with http:// or https://")
        if any(len(key.strip()) < MIN_KEY_LENGTH for key in self.secret_key.split(",") if key.strip()):
            raise SettingsError(
                f"every GATEWAY_SECRET_KEY must be at least {MIN_KEY_LENGTH} characters; "
                "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        if self.redis_url and not self.secret_key.strip():
            raise SettingsError(
                "set GATEWAY_SECRET_KEY when GATEWAY_REDIS_URL is set: every API process and "
                "worker must share the same key to verify each other's callback secrets"
            )
        if self.database_url.startswith("sqlite") and self.redis_url:
            raise SettingsError(
                "GATEWAY_REDIS_URL needs a shared database: with SQLite the workers would not see the "
                "API's invocations; set GATEWAY_DATABASE_URL to postgresql+asyncpg://..., or unset "
                "GATEWAY_REDIS_URL"
            )
        if bool(self.bootstrap_client_id) != bool(self.bootstrap_client_secret):
            raise SettingsError(
                "set both GATEWAY_BOOTSTRAP_CLIENT_ID and GATEWAY_BOOTSTRAP_CLIENT_SECRET, or neither"
            )

    def _check_limits(self) -> None:
        if not math.isfinite(self.rate_limit) or self.rate_limit < 0:
            raise SettingsError("GATEWAY_RATE_LIMIT must be 0 (no limit) or more requests per second")
        if self.rate_limit > 0 and self.rate_burst < 1:
            raise SettingsError("GATEWAY_RATE_BURST must be at least 1 request")
        if not math.isfinite(self.webhook_rate_limit) or self.webhook_rate_limit < 0:
            raise SettingsError("GATEWAY_WEBHOOK_RATE_LIMIT must be 0 (no limit) or more requests per second")
        if self.webhook_rate_limit > 0 and self.webhook_rate_burst < 1:
            raise SettingsError("GATEWAY_WEBHOOK_RATE_BURST must be at least 1 request")
        if not math.isfinite(self.stop_grace) or self.stop_grace < 0:
            raise SettingsError("GATEWAY_STOP_GRACE must be 0 (cut deliveries off at once) or more seconds")
        if self.max_trigger_depth < 0:
            raise SettingsError("GATEWAY_MAX_TRIGGER_DEPTH must be 0 (no triggers from deliveries) or more")
        if not 1 <= self.max_bundle <= 1000:
            raise SettingsError("GATEWAY_MAX_BUNDLE must be from 1 to 1000 triggers")
        if self.max_bundle_bytes < 1024:
            raise SettingsError("GATEWAY_MAX_BUNDLE_BYTES must be at least 1024")
        for name in (
            "callback_failure_limit",
            "callback_invocation_failure_limit",
            "token_failure_limit",
            "token_client_failure_limit",
            "token_address_failure_limit",
        ):
            if getattr(self, name) < 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be 0 (no limit) or more failures")
        if not math.isfinite(self.failure_window) or self.failure_window <= 0:
            raise SettingsError("GATEWAY_FAILURE_WINDOW must be a positive number of seconds")
        self.retry_delays  # noqa: B018 (raises SettingsError for a schedule it cannot parse)
        if not (math.isfinite(self.retry_jitter) and 0 <= self.retry_jitter < 1):
            raise SettingsError(
                "GATEWAY_RETRY_JITTER must be from 0 (none) to less than 1 (a fraction of each delay)"
            )
        if not math.isfinite(self.retry_after_max) or self.retry_after_max < 0:
            raise SettingsError("GATEWAY_RETRY_AFTER_MAX must be 0 or more seconds")

    def _check_database(self) -> None:
        scheme, separator, rest = self.database_url.partition("://")
        if not separator or not rest:
            raise SettingsError(
                "GATEWAY_DATABASE_URL must be a URL such as sqlite+aiosqlite:///./gateway.db or "
                "postgresql+asyncpg://user@host/db"
            )
        if scheme not in DATABASE_SCHEMES:
            driver = {
                "sqlite": "sqlite+aiosqlite",
                "postgresql": "postgresql+asyncpg",
                "postgres": "postgresql+asyncpg",
            }
            hint = f"write {driver[scheme]}:// for {scheme}://" if scheme in driver else "use one of them"
            raise SettingsError(
                f"GATEWAY_DATABASE_URL must start with {' or '.join(s + '://' for s in DATABASE_SCHEMES)} "
                f"(the async drivers), not {scheme}://; {hint}"
            )

    @functools.cached_property
    def disabled_after(self) -> timedelta | None:
        """How long a subscription may fail without a success before it is disabled."""
        try:
            return parse_duration(self.disable_after, "GATEWAY_DISABLE_AFTER") or None
        except ValueError as exc:
            raise SettingsError(f"{exc}; P0D never disables") from None

    @functools.cached_property
    def retention(self) -> tuple[timedelta | None, timedelta | None]:
        """How long completed, and failed or expired, invocations are kept (None: forever)."""
        kept = []
        for name in ("retention_completed", "retention_failed"):
            try:
                value = parse_duration(getattr(self, name), PREFIX + name.upper())
            except ValueError as exc:
                raise SettingsError(f"{exc}; P0D keeps them forever") from None
            kept.append(value or None)
        return kept[0], kept[1]

    @functools.cached_property
    def retry_delays(self) -> tuple[float, ...]:
        """GATEWAY_RETRY_SCHEDULE's delays, in seconds."""
        parts = [part.strip() for part in self.retry_schedule.split(",")]
        if parts == [""]:
            return ()
        try:
            delays = tuple(float(part) for part in parts)
        except ValueError:
            delays = ()
        if len(delays) != len(parts) or not all(
            math.isfinite(d) and 0 <= d <= MAX_RETRY_DELAY for d in delays
        ):
            raise SettingsError(
                "GATEWAY_RETRY_SCHEDULE must be comma-separated delays in seconds, each from 0 to "
                f"{MAX_RETRY_DELAY:g} (e.g. 5,300,1800), or empty for no retries; "
                f"got {self.retry_schedule[:80]!r}"
            )
        if len(delays) > MAX_RETRIES:
            raise SettingsError(f"GATEWAY_RETRY_SCHEDULE may hold at most {MAX_RETRIES} delays")
        return delays

    @property
    def signing_keys(self) -> list[str]:
        """Keys for itsdangerous, oldest first (itsdangerous signs with the last one)."""
        keys = [k.strip() for k in self.secret_key.split(",") if k.strip()]
        if not keys:
            keys = [_key_from_file(Path(self.secret_key_file))]
        return list(reversed(keys))


def _convert(name: str, type_name: object, raw: str) -> object:
    if type_name in ("bool", bool):
        # Also what str() makes of a bool ("True"/"False"), as tests pass settings on.
        value = BOOLEANS.get(raw.strip().lower())
        if value is None:
            raise SettingsError(f"{PREFIX}{name.upper()} must be true or false (or 1/0, yes/no), got {raw!r}")
        return value
    try:
        if type_name in ("int", int):
            return int(raw)
        if type_name in ("float", float):
            return float(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name.upper()} must be a number, got {raw!r}") from None
    return raw


def _key_from_file(path: Path) -> str:
    """Without GATEWAY_SECRET_KEY, keep a generated key in a private file so restarts
    keep callbacks and tokens valid."""
    try:
        return _read_or_create_key(path)
    except OSError as exc:
        raise SettingsError(
            f"GATEWAY_SECRET_KEY is not set and its key file {path.resolve()} cannot be read or "
            f"created ({exc.strerror or type(exc).__name__}); set GATEWAY_SECRET_KEY, or "
            "GATEWAY_SECRET_KEY_FILE to a file in a writable directory"
        ) from None


def _read_or_create_key(path: Path) -> str:
    if not path.exists():
        # Written whole to a private temporary file, then linked into place: a crash or a
        # second process starting at the same time never sees a partial key.
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won; use its key
        finally:
            temporary.unlink()
    key = path.read_text().strip()
    if len(key) < MIN_KEY_LENGTH:
        raise SettingsError(f"{path} holds no usable key; delete it to have a new one generated")
    return key
