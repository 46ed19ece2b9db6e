"""The records the gateway keeps, and the names of their states.

The records are SQLModel tables: the same classes carry the fields the use cases read and
the columns the database stores. Nothing here opens a session or runs a statement (that is
adapters/database); the database is the source of truth for every invocation.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

from sqlalchemy import JSON, Column, DateTime, Index, TypeDecorator, text
from sqlalchemy import false as sa_false
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=True))


class TriggerType(enum.StrEnum):
    REQUEST_RESPONSE = "REQUEST_RESPONSE"
    FIRE_AND_FORGET = "FIRE_AND_FORGET"


class AuthType(enum.StrEnum):
    NO_AUTH = "NO_AUTH"
    BASIC_AUTH = "BASIC_AUTH"
    BEARER_TOKEN = "BEARER_TOKEN"


class DispatchMode(enum.StrEnum):
    """How a subscriber answers (httpConfig.httpDispatchMode)."""

    SYNC = "SYNC"
    ASYNC = "ASYNC"
    DYNAMIC = "DYNAMIC"


class InvocationType(enum.StrEnum):
    TEST = "TEST"
    REAL_TIME = "REAL_TIME"


class Status(enum.StrEnum):
    # A trigger for a debounced subscription whose tenant has a run in flight: it waits to
    # be bundled into the tenant's next run.
    WAITING = "WAITING"
    # Its subscription has httpConfig.maxConcurrency deliveries in flight: it waits its turn.
    QUEUED = "QUEUED"
    PENDING = "PENDING"
    DISPATCHING = "DISPATCHING"
    # An attempt failed in a way worth trying again: the next one is due at next_attempt.
    RETRYING = "RETRYING"
    AWAITING_CALLBACK = "AWAITING_CALLBACK"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    # Carried by another invocation's run (its run_id); not delivered on its own.
    BUNDLED = "BUNDLED"
    # Raised by a subscriber's own action (the loop guard): recorded, never delivered.
    SUPPRESSED = "SUPPRESSED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.EXPIRED, Status.BUNDLED, Status.SUPPRESSED})
# The outcomes of a run, as a later run of the same subscription and tenant sees them.
RUN_PHASES = {Status.COMPLETED: "succeeded", Status.FAILED: "failed", Status.EXPIRED: "timedOut"}
IN_FLIGHT = frozenset(
    {Status.QUEUED, Status.PENDING, Status.DISPATCHING, Status.RETRYING, Status.AWAITING_CALLBACK}
)
# What a replay may deliver again (COMPLETED only for fire-and-forget: a request-response
# invocation's output was accepted, and a second one would contradict it).
REPLAYABLE = frozenset({Status.FAILED, Status.EXPIRED, Status.COMPLETED})


# The trigger option that takes every option, and the starts that name none.
ANY_OPTION = "ANY"


class Source(enum.StrEnum):
    """How an invocation was raised."""

    API = "api"
    WEBHOOK = "webhook"
    CRON = "cron"
    MANUAL = "manual"


class Trigger(SQLModel, table=True):
    __tablename__ = "triggers"

    id: str = Field(primary_key=True, max_length=255)
    name: str = Field(max_length=255)
    type: str = Field(max_length=32)
    description: str | None = None
    input_schema: dict[str, Any] | None = _json()
    example_input: dict[str, Any] | None = _json()
    output_schema: dict[str, Any] | None = _json()
    example_output: dict[str, Any] | None = _json()
    # Trigger options (e.g. resource types) a producer names on start and subscriptions pick.
    options: list[str] | None = _json()
    # JSONPath into the input that gives an invocation's tenant when start names none.
    tenant_id_path: str | None = Field(default=None, max_length=1024)
    # Named schedules [{name, cron, timezone}] a subscription may pick.
    schedules: list[dict[str, str]] | None = _json()
    custom_schedules: bool = False
    schedules_paused_by_default: bool = False
    # REQUEST_RESPONSE: the output an invocation completes with when it fails or expires
    # (fail-open); None: it fails (fail-closed).
    fallback_output: Any = _json()
    created: datetime = _time()


class Subscription(SQLModel, table=True):
    __tablename__ = "subscriptions"

    id: str = Field(primary_key=True, max_length=64)
    trigger_id: str = Field(index=True, max_length=255)
    name: str = Field(max_length=255)
    type: str = Field(default="HTTP", max_length=16)
    description: str | None = None
    enabled: bool = True
    response_deadline: str = Field(default="PT1H", max_length=64)
    filter: str | None = None
    # The URL as shown, its query values masked; the query itself, encrypted, in url_query.
    url: str
    url_query: str | None = None
    dispatch_mode: str = Field(max_length=16)
    auth_type: str = Field(default=AuthType.NO_AUTH, max_length=16)
    # Most deliveries in flight to it at once (httpConfig.maxConcurrency); None: no limit.
    max_concurrency: int | None = None
    basic_user: str | None = None
    # Password or bearer token, encrypted with a key derived from GATEWAY_SECRET_KEY.
    credential: str | None = None
    # Standard Webhooks signing secrets, encrypted like the credential. After a rotation the
    # previous one keeps signing until its expiry, so subscribers can switch without a gap.
    signing_secret: str | None = None
    previous_signing_secret: str | None = None
    previous_signing_secret_expires: datetime | None = _time(nullable=True)
    # The trigger options wanted, or ["ANY"].
    options: list[str] | None = _json()
    # One run at a time per tenant; what arrives meanwhile is bundled into the next run.
    debounce: bool = False
    # The schedule: a trigger's named option (its cron and time zone copied here) or a custom
    # cron. next_fire_at is the next tick, NULL while paused; firing moves it on atomically.
    schedule_name: str | None = Field(default=None, max_length=255)
    schedule_cron: str | None = Field(default=None, max_length=255)
    schedule_timezone: str | None = Field(default=None, max_length=64)
    schedule_tenant_id: str | None = Field(default=None, max_length=255)
    schedule_paused: bool = False
    next_fire_at: datetime | None = _time(nullable=True, index=True)
    # The inbound webhook URL's token is signed over the id and this nonce: a new nonce
    # revokes the old URL, none means no webhook. The nonce alone forges nothing.
    webhook_nonce: str | None = Field(default=None, max_length=64)
    # Why the gateway disabled it (the subscriber answered 410 Gone), and when; cleared when
    # it is enabled again.
    disabled_reason: str | None = None
    # The circuit breaker (domain/circuit.py): consecutive failed deliveries and since when
    # they fail; whether the circuit is open, since when (or closed since when), and when the
    # next probe delivery may go.
    consecutive_failures: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    failing_since: datetime | None = _time(nullable=True)
    circuit_open: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    circuit_since: datetime | None = _time(nullable=True)
    probe_at: datetime | None = _time(nullable=True)
    created: datetime = _time()
    modified: datetime = _time()


def _partial(name: str, columns: list[str], where: str) -> Index:
    """An index of only the rows that meet ``where`` (SQLite and PostgreSQL alike)."""
    return Index(name, *columns, sqlite_where=text(where), postgresql_where=text(where))


class Invocation(SQLModel, table=True):
    __tablename__ = "invocations"
    __table_args__ = (
        # Partial indexes: each holds only the invocations in one state (or unfinished, or
        # finished), so a delivery's insert, claim and record touch few of them. The queries
        # that use them say the state as adapters/database/states.py writes it.
        _partial("ix_invocations_awaiting", ["deadline"], "status = 'AWAITING_CALLBACK'"),
        _partial("ix_invocations_pending", ["queued_at"], "status = 'PENDING'"),
        _partial("ix_invocations_dispatching", ["dispatched_at"], "status = 'DISPATCHING'"),
        _partial("ix_invocations_retrying", ["next_attempt"], "status = 'RETRYING'"),
        _partial("ix_invocations_queued", ["subscription_id", "created", "id"], "status = 'QUEUED'"),
        _partial("ix_invocations_waiting", ["subscription_id", "tenant_id"], "status = 'WAITING'"),
        # A subscription's deliveries by state (concurrency limits, the circuit).
        _partial("ix_invocations_open", ["subscription_id", "status"], "completed IS NULL"),
        # What retention deletes: of each final state, finished longest ago. (Not by completion
        # alone: each purge would read every finished row of the other states in its range.)
        _partial("ix_invocations_finished", ["status", "completed"], "completed IS NOT NULL"),
        # A subscription's runs per tenant: the one in flight, the last one, the waiting ones.
        Index("ix_invocations_lane", "subscription_id", "tenant_id", "completed"),
        # A subscription's invocations by age (replay).
        Index("ix_invocations_subscription", "subscription_id", "created"),
    )

    id: str = Field(primary_key=True, max_length=64)
    trigger_id: str = Field(index=True, max_length=255)
    trigger_type: str = Field(max_length=32)
    subscription_id: str = Field(max_length=64)
    subscription_name: str = Field(max_length=255)
    # Snapshot of the subscription's mode when the trigger was raised.
    dispatch_mode: str = Field(max_length=16)
    type: str = Field(max_length=16)
    status: str = Field(max_length=32)
    input: dict[str, Any] | None = _json()
    content_json: dict[str, Any] | None = _json()
    output: Any = _json()
    error: str | None = None
    # Digest of the accepted completion, so a repeat of it is recognised.
    completion_digest: str | None = Field(default=None, max_length=64)
    attempts: int = 0
    # ``attempts`` when it was last replayed: the retry schedule counts from there.
    attempts_at_replay: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # RETRYING: when the next attempt is due.
    next_attempt: datetime | None = _time(nullable=True)
    # The subscriber's last heartbeat note (AWAITING_CALLBACK), at most 1 KiB.
    progress: str | None = None
    # Completed with its trigger's fallbackOutput, because it failed or expired (error says why).
    fallback: bool = Field(default=False, sa_column_kwargs={"server_default": sa_false()})
    source: str = Field(default=Source.API, max_length=16)
    tenant_id: str | None = Field(default=None, max_length=255)
    option: str | None = Field(default=None, max_length=255)
    # A webhook's request headers, credentials removed.
    headers: dict[str, str] | None = _json()
    # The invocations whose deliveries led to this one, oldest first (the loop guard).
    chain: list[str] | None = _json()
    # The run that carries this trigger (its own id when it leads the run).
    run_id: str | None = Field(default=None, max_length=64, index=True)
    # The trackingId of the request that raised it: its delivery's log lines name it. And
    # the W3C traceparent of the start's span: its delivery's span joins that trace.
    tracking_id: str | None = Field(default=None, max_length=128)
    traceparent: str | None = Field(default=None, max_length=64)
    created: datetime = _time(index=True)
    deadline: datetime = _time()
    queued_at: datetime = _time()
    dispatched_at: datetime | None = _time(nullable=True)
    completed: datetime | None = _time(nullable=True)


class NewInvocation(TypedDict):
    """An invocation as raised, before it is inserted (a plain INSERT of these rows: building
    ORM objects and flushing them took 1.6 times as long, and nothing reads them back)."""

    id: str
    trigger_id: str
    trigger_type: str
    subscription_id: str
    subscription_name: str
    dispatch_mode: str
    type: InvocationType
    status: Status
    input: dict[str, Any]
    content_json: dict[str, Any]
    attempts: int
    created: datetime
    deadline: datetime
    queued_at: datetime
    source: Source
    tenant_id: str | None
    option: str | None
    headers: dict[str, str] | None
    chain: list[str] | None
    tracking_id: str | None
    traceparent: str | None
    # Set only on an invocation that ends as it is raised (SUPPRESSED by the loop guard).
    completed: NotRequired[datetime]
    error: NotRequired[str]


class DeliveryAttempt(SQLModel, table=True):
    """One attempt to deliver an invocation, as the attempt log shows it."""

    __tablename__ = "delivery_attempts"

    id: int | None = Field(default=None, primary_key=True)
    invocation_id: str = Field(index=True, max_length=64)
    attempt: int  # 1-based, the invocation's attempts when it was made
    started: datetime = _time()
    # None for an attempt cut off by a crash: its end was never seen.
    duration_ms: int | None = None
    status_code: int | None = None
    error: str | None = None
    response_excerpt: str | None = None


class IdempotencyKey(SQLModel, table=True):
    """A start's Idempotency-Key, for as long as GATEWAY_IDEMPOTENCY_TTL: a repeat of the
    request is answered with what the first one created."""

    __tablename__ = "idempotency_keys"

    client_id: str = Field(primary_key=True, max_length=128)
    key: str = Field(primary_key=True, max_length=255)
    # sha256 of what was asked (the endpoint and the body): the same key for another request
    # is refused.
    fingerprint: str = Field(max_length=64)
    # The invocations the first request created, in its answer's order; None while it is
    # being handled. Ids only: their callback secrets are derived again, never stored.
    invocation_ids: list[str] | None = Field(default=None, sa_column=Column(JSON(none_as_null=True)))
    created: datetime = _time()
    expires: datetime = _time(index=True)


class ApiClient(SQLModel, table=True):
    __tablename__ = "api_clients"

    client_id: str = Field(primary_key=True, max_length=128)
    secret_hash: str
    # After a rotation the previous secret still works until its expiry.
    previous_secret_hash: str | None = None
    previous_secret_expires: datetime | None = _time(nullable=True)
    scopes: str
    created: datetime = _time()
