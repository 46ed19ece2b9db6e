"""Inbound webhooks: each subscription may have one URL, /hooks/<token>, that raises a run.

The token is signed over the subscription's id and a random nonce kept on the subscription;
issuing a new URL replaces the nonce and revoking clears it, so an old URL stops working at
once. The nonce alone forges nothing: a token also needs the gateway's key.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Any

from gateway.adapters.database.rows import get_existing
from gateway.domain import strict_json
from gateway.domain.clock import utcnow
from gateway.domain.errors import Invalid, NotFound
from gateway.domain.model import Source, Subscription
from gateway.runtime import Runtime
from gateway.usecases import catalog, raise_trigger

# Headers not recorded: credentials, and what only described the connection. Names that
# look like a credential or a signature over the body are dropped too: senders have many
# (x-hub-signature-256, x-shopify-hmac-sha256, paypal-transmission-sig, x-client-key, ...).
DROPPED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "host", "content-length", "connection"}
)
CREDENTIAL_LIKE = re.compile(
    r"token|secret|passw|key|auth|session|(^|-)sig|hmac|jwt|assertion|cert|credential", re.IGNORECASE
)
MAX_HEADERS = 50
MAX_HEADER_VALUE = 1024
NOT_FOUND = "no webhook has this URL; it may have been revoked"


def url(rt: Runtime, token: str) -> str:
    return f"{rt.settings.public_url.rstrip('/')}/hooks/{token}"


async def issue(rt: Runtime, subscription_id: str) -> str:
    """A new webhook URL for the subscription; the one before it stops working."""
    nonce = secrets.token_urlsafe(16)
    await _set_nonce(rt, subscription_id, nonce)
    return url(rt, rt.keys.webhook_token(subscription_id, nonce))


async def revoke(rt: Runtime, subscription_id: str) -> None:
    await _set_nonce(rt, subscription_id, None)


async def _set_nonce(rt: Runtime, subscription_id: str, nonce: str | None) -> None:
    async with rt.sessions() as session:
        sub = await get_existing(session, Subscription, subscription_id)
        sub.webhook_nonce, sub.modified = nonce, utcnow()
        await session.commit()
    await catalog.changed(rt)


async def subscription_of(rt: Runtime, token: str) -> str:
    """The subscription a webhook token belongs to; NotFound (404) if it is bad or revoked.
    Checked before the body is read: a forged token costs one HMAC, no database read."""
    found = rt.keys.read_webhook_token(token)
    if found is None:
        raise NotFound(NOT_FOUND)
    subscription_id, nonce = found
    async with rt.sessions() as session:
        sub = await session.get(Subscription, subscription_id)
    if sub is None or sub.webhook_nonce is None or not hmac.compare_digest(sub.webhook_nonce, nonce):
        raise NotFound(NOT_FOUND)
    return subscription_id


async def receive(
    rt: Runtime,
    subscription_id: str,
    body: bytes,
    content_type: str,
    headers: list[tuple[str, str]],
    caused_by: str | None = None,
) -> raise_trigger.Started:
    """Record the call as a run trigger of source webhook."""
    return await raise_trigger.raise_run(
        rt,
        subscription_id,
        Source.WEBHOOK,
        payload(body, content_type),
        headers=recorded_headers(headers),
        caused_by=caused_by,
    )


def payload(body: bytes, content_type: str) -> Any:
    """JSON bodies as JSON, other bodies as text, an empty body as null."""
    if not body:
        return None
    if "json" in content_type.lower():
        try:
            return strict_json.loads(body)
        except ValueError as exc:
            raise Invalid(f"the body says it is JSON but is not: {exc}") from None
    if b"\x00" in body:  # kept as text, it could not be stored (PostgreSQL holds no NUL)
        raise Invalid("the body holds a NUL byte; send text without one, or JSON, or base64")
    return body.decode("utf-8", errors="replace")


def recorded_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    kept: dict[str, str] = {}
    for name, value in headers:
        name = name.lower()
        if name in DROPPED_HEADERS or CREDENTIAL_LIKE.search(name) or len(kept) >= MAX_HEADERS:
            continue
        kept[name] = value[:MAX_HEADER_VALUE]
    return kept
