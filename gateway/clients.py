"""API clients: the bootstrap admin client, created or refreshed at start."""

from __future__ import annotations

import secrets
import sys
from contextlib import suppress

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from gateway.db import Sessions
from gateway.models import ApiClient, utcnow
from gateway.security import hash_secret, verify_secret
from gateway.settings import Settings

ALL_SCOPES = "triggers:manage invocations:start invocations:read"


async def ensure_bootstrap_client(sessions: Sessions, settings: Settings) -> None:
    async with sessions() as session:
        if settings.bootstrap_client_id:
            client = await session.get(ApiClient, settings.bootstrap_client_id)
            if client is None:
                session.add(_client(settings.bootstrap_client_id, settings.bootstrap_client_secret))
            elif not verify_secret(settings.bootstrap_client_secret, client.secret_hash):
                client.secret_hash = hash_secret(settings.bootstrap_client_secret)
                client.scopes = ALL_SCOPES
            # Another process starting at the same moment may have created it first.
            with suppress(IntegrityError):
                await session.commit()
            return
        if (await session.execute(select(func.count()).select_from(ApiClient))).scalar_one():
            return
        client_id = "admin-" + secrets.token_hex(4)
        client_secret = secrets.token_urlsafe(32)
        session.add(_client(client_id, client_secret))
        await session.commit()
    # Printed once, never logged and never stored: only its hash is kept.
    print(
        "\nCreated the admin API client (shown only this once; store it now):\n"
        f"  client_id:     {client_id}\n  client_secret: {client_secret}\n"
        "Set GATEWAY_BOOTSTRAP_CLIENT_ID / GATEWAY_BOOTSTRAP_CLIENT_SECRET to choose your own.\n",
        file=sys.stderr,
        flush=True,
    )


def _client(client_id: str, client_secret: str) -> ApiClient:
    return ApiClient(
        client_id=client_id, secret_hash=hash_secret(client_secret), scopes=ALL_SCOPES, created=utcnow()
    )
