"""One delivery, without the network: the request a subscriber gets, and what its answer means.

``request_for`` builds the POST (the input's fields plus ``_metadata``, signed as Standard
Webhooks define, with the subscription's credentials); ``classify`` is the answer table of
ARCHITECTURE.md (SYNC, ASYNC, DYNAMIC, fire-and-forget). adapters/outbound sends the request;
usecases/deliver turns the Outcome into a state transition.
"""

from __future__ import annotations

import base64
import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from gateway.domain import rotation, signing, strict_json, urls
from gateway.domain.clock import timestamp
from gateway.domain.keys import Keys
from gateway.domain.model import AuthType, DispatchMode, Invocation, Subscription, TriggerType

USER_AGENT = "trigger-gateway/0.1"
# Every delivery carries its invocation id here; a start that sends it back was caused by the
# subscriber's own action (the loop guard).
INVOCATION_HEADER = "x-invocation-id"


@dataclass(frozen=True)
class Delivery:
    url: str
    headers: dict[str, str]
    body: bytes
    mode: DispatchMode
    fire_and_forget: bool


class Failure(enum.StrEnum):
    """Why an attempt failed, as far as trying it again goes (domain/retries.py)."""

    UNSENT = "unsent"  # no connection was made: nothing reached the subscriber
    TRANSIENT = "transient"  # no answer in time, 408, 429, 5xx, a dropped connection
    GONE = "gone"  # 410: the subscriber wants no more deliveries
    PERMANENT = "permanent"  # anything else: trying again would fail again


# HTTP answers that say "not now" rather than "no".
TRANSIENT_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class Outcome:
    kind: Literal["completed", "awaiting", "failed"]
    output: Any = None
    error: str | None = None
    failure: Failure | None = None  # set when it failed
    # The answer, as the attempt log keeps it (None when there was none).
    status_code: int | None = None
    excerpt: str | None = None
    retry_after: str | None = None  # the Retry-After header of a 429 or 503


def failed(error: str, failure: Failure = Failure.PERMANENT) -> Outcome:
    return Outcome("failed", error=error, failure=failure)


def failure_of(status: int) -> Failure:
    """What a non-2xx answer means for trying again."""
    if status == 410:
        return Failure.GONE
    if status in TRANSIENT_STATUSES or status >= 500:
        return Failure.TRANSIENT
    return Failure.PERMANENT


def callback_url(public_url: str, invocation_id: str) -> str:
    return f"{public_url.rstrip('/')}/beta/trigger-invocations/{invocation_id}/complete"


def request_for(
    inv: Invocation,
    sub: Subscription,
    run: dict[str, Any],
    *,
    keys: Keys,
    public_url: str,
    now: datetime,
) -> Delivery:
    """The request for ``inv``; keys.Undecryptable if a stored secret no key decrypts."""
    fire_and_forget = inv.trigger_type == TriggerType.FIRE_AND_FORGET
    metadata: dict[str, Any] = {
        "responseMode": inv.dispatch_mode.lower(),
        "triggerId": inv.trigger_id,
        "triggerType": "fireAndForget" if fire_and_forget else "requestResponse",
        "invocationId": inv.id,
        "deadline": timestamp(inv.deadline),
        "source": inv.source,
        "tenantId": inv.tenant_id,
        "option": inv.option,
        **run,
    }
    if not fire_and_forget:
        metadata["callbackURL"] = callback_url(public_url, inv.id)
        metadata["secret"] = keys.callback_secret(inv.id)
    body = json.dumps({**(inv.input or {}), "_metadata": metadata}, separators=(",", ":")).encode()
    headers = {"content-type": "application/json", "user-agent": USER_AGENT, INVOCATION_HEADER: inv.id}
    stored = rotation.active(
        sub.signing_secret, sub.previous_signing_secret, sub.previous_signing_secret_expires, now
    )
    signing_secrets = [keys.decrypt(secret) for secret in stored]
    headers.update(signing.headers(signing_secrets, inv.id, int(now.timestamp()), body))
    if sub.auth_type == AuthType.BASIC_AUTH and sub.credential is not None:
        pair = f"{sub.basic_user}:{keys.decrypt(sub.credential)}".encode()
        headers["authorization"] = "Basic " + base64.b64encode(pair).decode()
    elif sub.auth_type == AuthType.BEARER_TOKEN and sub.credential is not None:
        headers["authorization"] = "Bearer " + keys.decrypt(sub.credential)
    return Delivery(
        url=urls.joined(sub.url, None if sub.url_query is None else keys.decrypt(sub.url_query)),
        headers=headers,
        body=body,
        mode=DispatchMode(inv.dispatch_mode),
        fire_and_forget=fire_and_forget,
    )


def classify(delivery: Delivery, status: int, body: bytes) -> Outcome:
    """The answer table."""
    if not 200 <= status < 300:
        hint = " (redirects are not followed)" if 300 <= status < 400 else ""
        return failed(f"the subscriber answered HTTP {status}{hint}", failure_of(status))
    if delivery.fire_and_forget:
        return Outcome("completed")
    if delivery.mode == DispatchMode.ASYNC:
        if status not in (200, 202):
            return failed(f"the subscriber answered HTTP {status}; ASYNC expects 200 with {{}}")
        return Outcome("awaiting")
    if delivery.mode == DispatchMode.DYNAMIC and status == 202:
        return Outcome("awaiting")
    if status != 200:
        dynamic = delivery.mode == DispatchMode.DYNAMIC
        expected = "200 with the output or 202" if dynamic else "200 with the output"
        return failed(f"the subscriber answered HTTP {status}; {delivery.mode} expects {expected}")
    return output_outcome(body)


def output_outcome(body: bytes) -> Outcome:
    """A SYNC answer's output (usecases/deliver then checks it against the outputSchema)."""
    try:
        output = strict_json.loads(body)
    except strict_json.Refused as exc:
        return failed(f"the subscriber's answer is refused: {exc}")
    except ValueError:
        return failed("the subscriber's answer is not JSON" + (" (empty body)" if not body else ""))
    if output is None:
        return failed("the subscriber's answer is null; send the output as JSON")
    return Outcome("completed", output=output)
