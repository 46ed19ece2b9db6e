"""The wire format: request bodies (validated with pydantic) and response documents.

Field names follow the SailPoint Event Trigger Service beta API exactly. The request models
are also what the use cases take (a subscription's PATCH is applied to its document here).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from gateway.domain import circuit, strict_json
from gateway.domain.clock import timestamp, utcnow
from gateway.domain.model import (
    ANY_OPTION,
    ApiClient,
    AuthType,
    DeliveryAttempt,
    Invocation,
    Status,
    Subscription,
    Trigger,
    TriggerType,
)

Name = Field(min_length=1, max_length=255)
JsonObject = dict[str, Any]


def _schema_as_object(value: object) -> object:
    # SailPoint sends schemas as JSON strings; accept those and plain objects alike.
    if isinstance(value, str):
        try:
            value = strict_json.loads(value)
        except ValueError as exc:
            raise ValueError(f"not a JSON document: {exc}") from None
        if not isinstance(value, dict):
            raise ValueError("a JSON Schema must be a JSON object")
    return value


JsonSchema = Annotated[
    JsonObject | None,
    BeforeValidator(_schema_as_object, json_schema_input_type=JsonObject | str | None),
]


class WireModel(BaseModel):
    # Clients (SailPoint SDKs among them) send back whole documents with read-only fields.
    model_config = ConfigDict(extra="ignore")


OptionName = Annotated[str, Field(min_length=1, max_length=255)]
TenantId = Annotated[str, Field(min_length=1, max_length=255)]
MAX_OPTIONS = 100
MAX_CONCURRENCY = 1000
MAX_SCHEDULES = 50


class ScheduleOption(WireModel):
    """A schedule a trigger offers its subscriptions, e.g. every 5 minutes."""

    name: OptionName
    cron: str = Field(min_length=1, max_length=255)
    timezone: str = Field(default="UTC", min_length=1, max_length=64)


# SailPoint's 2.x SDK calls /triggers/v1, /trigger-subscriptions/v1/{id}...: that segment is
# the API's version, never an id (api/routes.py serves those paths).
API_VERSION = "v1"


# What a trigger's id may hold: a start that names anything else names no trigger.
TRIGGER_ID = re.compile(r"[A-Za-z0-9:._\-]{1,255}")


class TriggerIn(WireModel):
    id: str = Field(min_length=1, max_length=255, pattern=f"^{TRIGGER_ID.pattern}$")
    name: str = Name
    type: TriggerType
    description: str | None = Field(default=None, max_length=4000)
    inputSchema: JsonSchema = None
    exampleInput: JsonObject | None = None
    outputSchema: JsonSchema = None
    exampleOutput: JsonObject | None = None
    # Extensions: trigger options, the tenant of an input, schedules.
    options: list[OptionName] | None = Field(default=None, max_length=MAX_OPTIONS)
    tenantIdPath: str | None = Field(default=None, min_length=1, max_length=1024)
    schedules: list[ScheduleOption] | None = Field(default=None, max_length=MAX_SCHEDULES)
    customSchedules: bool = False
    schedulesPausedByDefault: bool = False
    # Extension: what an invocation completes with when it fails or expires (fail-open).
    fallbackOutput: Any = None

    @field_validator("id")
    @classmethod
    def _not_the_version(cls, value: str) -> str:
        if value == API_VERSION:
            raise ValueError(
                f"{API_VERSION!r} is reserved: /triggers/{API_VERSION} is the SailPoint v1 trigger list"
            )
        return value


class BasicAuthConfig(WireModel):
    userName: str = Field(min_length=1, max_length=255)
    password: str | None = Field(default=None, max_length=4096)


class BearerTokenAuthConfig(WireModel):
    bearerToken: str | None = Field(default=None, max_length=8192)


class HttpConfig(WireModel):
    url: str = Field(min_length=1, max_length=2048)
    httpDispatchMode: Literal["SYNC", "ASYNC", "DYNAMIC"] = "SYNC"
    httpAuthenticationType: Literal["NO_AUTH", "BASIC_AUTH", "BEARER_TOKEN"] = "NO_AUTH"
    basicAuthConfig: BasicAuthConfig | None = None
    bearerTokenAuthConfig: BearerTokenAuthConfig | None = None
    # Extension: most deliveries in flight to the subscriber at once; the rest wait in turn.
    maxConcurrency: int | None = Field(default=None, ge=1, le=MAX_CONCURRENCY)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "must not carry user info; use httpAuthenticationType BASIC_AUTH for credentials"
            )
        return value


class ScheduleIn(WireModel):
    """A subscription's schedule: one of its trigger's options, or a custom cron where the
    trigger allows it. ``paused`` left out keeps the current state (new: the trigger's default)."""

    option: OptionName | None = None
    cron: str | None = Field(default=None, min_length=1, max_length=255)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    tenantId: TenantId | None = None
    paused: bool | None = None


class SubscriptionIn(WireModel):
    """Body of PUT (and, with triggerId, of POST)."""

    triggerId: str | None = Field(default=None, min_length=1, max_length=255)
    name: str = Name
    description: str | None = Field(default=None, max_length=4000)
    type: Literal["HTTP"] = "HTTP"
    enabled: bool = True
    responseDeadline: str = Field(default="PT1H", max_length=64)
    filter: str | None = Field(default=None, max_length=4096)
    httpConfig: HttpConfig
    # Extensions: the trigger options wanted, per-tenant debounce, a schedule.
    options: list[OptionName] = Field(
        default_factory=lambda: [ANY_OPTION], min_length=1, max_length=MAX_OPTIONS
    )
    debounce: bool = False
    schedule: ScheduleIn | None = None


class StartInvocationIn(WireModel):
    triggerId: str = Field(min_length=1, max_length=255)
    input: JsonObject
    contentJson: JsonObject = Field(default_factory=dict)
    # Extensions: the tenant (else the trigger's tenantIdPath finds it) and trigger option.
    tenantId: TenantId | None = None
    option: OptionName | None = None


class RunIn(WireModel):
    """A manual run of one subscription: the "sync now" button."""

    payload: JsonObject | None = None
    tenantId: TenantId | None = None


class TestInvocationIn(WireModel):
    triggerId: str = Field(min_length=1, max_length=255)
    input: JsonObject | None = None
    contentJson: JsonObject = Field(default_factory=dict)
    subscriptionIds: list[str] | None = Field(default=None, max_length=50)


class CompleteInvocationIn(WireModel):
    secret: str = Field(min_length=1, max_length=512)
    output: Any = None
    error: str | None = Field(default=None, max_length=4000)


class HeartbeatIn(WireModel):
    secret: str = Field(min_length=1, max_length=512)
    extendBy: str | None = Field(default=None, min_length=1, max_length=64)
    progress: str | None = Field(default=None, max_length=1024)


ReplayableStatus = Literal["FAILED", "EXPIRED", "COMPLETED"]


def _failures() -> list[ReplayableStatus]:
    return ["FAILED", "EXPIRED"]


class ReplayIn(WireModel):
    """Which invocations of a subscription to deliver again."""

    since: AwareDatetime
    statuses: list[ReplayableStatus] = Field(default_factory=_failures, min_length=1, max_length=3)


Scope = Literal["triggers:manage", "invocations:start", "invocations:read", "clients:manage", "metrics:read"]


class ApiClientIn(WireModel):
    clientId: str | None = Field(default=None, min_length=3, max_length=128, pattern=r"^[A-Za-z0-9._\-]+$")
    scopes: list[Scope] = Field(min_length=1, max_length=5)


class ValidateFilterIn(WireModel):
    input: JsonObject
    filter: str = Field(min_length=1, max_length=4096)


def trigger_out(trigger: Trigger) -> JsonObject:
    return {
        "id": trigger.id,
        "name": trigger.name,
        "type": trigger.type,
        "description": trigger.description,
        # SDK clients expect the schemas as JSON strings, and SailPoint's 2.x Trigger model
        # requires an input schema: a trigger without one accepts anything, which {} says.
        "inputSchema": _schema_string(trigger.input_schema) or "{}",
        "exampleInput": trigger.example_input,
        "outputSchema": _schema_string(trigger.output_schema),
        "exampleOutput": trigger.example_output,
        "options": trigger.options,
        "tenantIdPath": trigger.tenant_id_path,
        "schedules": trigger.schedules,
        "customSchedules": trigger.custom_schedules,
        "schedulesPausedByDefault": trigger.schedules_paused_by_default,
        "fallbackOutput": trigger.fallback_output,
    }


def _schema_string(schema: JsonObject | None) -> str | None:
    return None if schema is None else json.dumps(schema, separators=(",", ":"))


def subscription_out(sub: Subscription, trigger_name: str | None) -> JsonObject:
    http_config: JsonObject = {
        "url": sub.url,
        "httpDispatchMode": sub.dispatch_mode,
        "httpAuthenticationType": sub.auth_type,
        "basicAuthConfig": None,
        "bearerTokenAuthConfig": None,
        "maxConcurrency": sub.max_concurrency,
    }
    # Credentials are write-only: the user name is shown, secrets never are.
    if sub.auth_type == AuthType.BASIC_AUTH:
        http_config["basicAuthConfig"] = {"userName": sub.basic_user, "password": None}
    elif sub.auth_type == AuthType.BEARER_TOKEN:
        http_config["bearerTokenAuthConfig"] = {"bearerToken": None}
    return {
        "id": sub.id,
        "triggerId": sub.trigger_id,
        "triggerName": trigger_name,
        "type": "HTTP",
        "name": sub.name,
        "description": sub.description,
        "enabled": sub.enabled,
        # Extensions: why the gateway disabled it (a 410 Gone), and when; its circuit breaker.
        "disabledReason": sub.disabled_reason,
        "circuit": {
            "state": circuit.state(sub.circuit_open, sub.probe_at, utcnow()).value,
            "since": timestamp(sub.circuit_since),
            "consecutiveFailures": sub.consecutive_failures,
        },
        "responseDeadline": sub.response_deadline,
        "filter": sub.filter,
        "httpConfig": http_config,
        "options": sub.options or [ANY_OPTION],
        "debounce": sub.debounce,
        "schedule": _schedule_out(sub),
        # The webhook URL itself is shown only when it is issued.
        "webhookEnabled": sub.webhook_nonce is not None,
        "created": timestamp(sub.created),
        "modified": timestamp(sub.modified),
    }


def _schedule_out(sub: Subscription) -> JsonObject | None:
    if sub.schedule_cron is None:
        return None
    return {
        "option": sub.schedule_name,
        "cron": sub.schedule_cron,
        "timezone": sub.schedule_timezone,
        "tenantId": sub.schedule_tenant_id,
        "paused": sub.schedule_paused,
        "nextRunAt": timestamp(sub.next_fire_at),
    }


class Raised(Protocol):
    """An invocation as its producer is told of it (an Invocation row has these too)."""

    @property
    def id(self) -> str: ...
    @property
    def trigger_id(self) -> str: ...
    @property
    def content_json(self) -> dict[str, Any] | None: ...


def invocation_out(inv: Raised, secret: str | None) -> JsonObject:
    return {
        "id": inv.id,
        "triggerId": inv.trigger_id,
        "secret": secret,
        "contentJson": inv.content_json or {},
    }


def status_out(inv: Invocation) -> JsonObject:
    status = Status(inv.status)
    complete: JsonObject | None = None
    if status.terminal:
        error = {"locale": "en-US", "message": inv.error} if inv.error else None
        complete = {"localizedError": error, "output": inv.output}
    return {
        "id": inv.id,
        "triggerId": inv.trigger_id,
        "subscriptionId": inv.subscription_id,
        "subscriptionName": inv.subscription_name,
        "type": inv.type,
        "created": timestamp(inv.created),
        "completed": timestamp(inv.completed),
        "startInvocationInput": {
            "triggerId": inv.trigger_id,
            "input": inv.input,
            "contentJson": inv.content_json or {},
        },
        "completeInvocationInput": complete,
        # Extensions: the lifecycle state, the callback deadline and delivery attempts.
        "status": inv.status,
        "deadline": timestamp(inv.deadline),
        "attempts": inv.attempts,
        "nextAttempt": timestamp(inv.next_attempt) if inv.status == Status.RETRYING else None,
        "progress": inv.progress,
        "fallback": inv.fallback,
        # How it was raised, for whom, and the run that carried it.
        "source": inv.source,
        "tenantId": inv.tenant_id,
        "option": inv.option,
        "headers": inv.headers,
        "runId": inv.run_id,
        "chain": inv.chain or [],
    }


def attempt_out(attempt: DeliveryAttempt) -> JsonObject:
    return {
        "attempt": attempt.attempt,
        "started": timestamp(attempt.started),
        "durationMs": attempt.duration_ms,
        "statusCode": attempt.status_code,
        "error": attempt.error,
        "responseExcerpt": attempt.response_excerpt,
    }


def api_client_out(client: ApiClient) -> JsonObject:
    return {
        "clientId": client.client_id,
        "scopes": client.scopes.split(),
        "created": timestamp(client.created),
        # Set after a rotation: until then the previous secret still works.
        "previousSecretExpires": timestamp(client.previous_secret_expires),
    }
