"""Database tables. The database is the source of truth for every invocation."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


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


class InvocationType(enum.StrEnum):
    TEST = "TEST"
    REAL_TIME = "REAL_TIME"


class Status(enum.StrEnum):
    PENDING = "PENDING"
    DISPATCHING = "DISPATCHING"
    AWAITING_CALLBACK = "AWAITING_CALLBACK"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.EXPIRED})


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
    url: str
    dispatch_mode: str = Field(max_length=16)
    auth_type: str = Field(default=AuthType.NO_AUTH, max_length=16)
    basic_user: str | None = None
    # Password or bearer token, encrypted with a key derived from GATEWAY_SECRET_KEY.
    credential: str | None = None
    # Standard Webhooks signing secrets, encrypted like the credential. After a rotation the
    # previous one keeps signing until its expiry, so subscribers can switch without a gap.
    signing_secret: str | None = None
    previous_signing_secret: str | None = None
    previous_signing_secret_expires: datetime | None = _time(nullable=True)
    created: datetime = _time()
    modified: datetime = _time()


class Invocation(SQLModel, table=True):
    __tablename__ = "invocations"
    __table_args__ = (
        Index("ix_invocations_status_deadline", "status", "deadline"),
        Index("ix_invocations_status_queued", "status", "queued_at"),
    )

    id: str = Field(primary_key=True, max_length=64)
    trigger_id: str = Field(index=True, max_length=255)
    trigger_type: str = Field(max_length=32)
    subscription_id: str = Field(index=True, max_length=64)
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
    created: datetime = _time(index=True)
    deadline: datetime = _time()
    queued_at: datetime = _time()
    dispatched_at: datetime | None = _time(nullable=True)
    completed: datetime | None = _time(nullable=True)


class ApiClient(SQLModel, table=True):
    __tablename__ = "api_clients"

    client_id: str = Field(primary_key=True, max_length=128)
    secret_hash: str
    # After a rotation the previous secret still works until its expiry.
    previous_secret_hash: str | None = None
    previous_secret_expires: datetime | None = _time(nullable=True)
    scopes: str
    created: datetime = _time()
