"""API clients: the bootstrap admin client, and creating, rotating and deleting clients.

Only hashes of client secrets are stored. A rotated-out secret keeps working for the grace
period, so a deployment can roll the new one out without a gap.
"""

from __future__ import annotations

import secrets
import sys
from contextlib import suppress
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gateway.db import Sessions
from gateway.errors import Conflict, NotFound
from gateway.models import ApiClient, utcnow
from gateway.security import hash_secret, hash_secret_async, verify_secret
from gateway.settings import Settings

API_SCOPES = ("triggers:manage", "invocations:start", "invocations:read")
CLIENTS_MANAGE = "clients:manage"
ALL_SCOPES = " ".join((*API_SCOPES, CLIENTS_MANAGE))


async def ensure_bootstrap_client(sessions: Sessions, settings: Settings) -> None:
    async with sessions() as session:
        if settings.bootstrap_client_id:
            client = await session.get(ApiClient, settings.bootstrap_client_id)
            if client is None:
                session.add(_client(settings.bootstrap_client_id, settings.bootstrap_client_secret))
            else:
                # The environment owns this client: its secret and scopes win over any change.
                if not verify_secret(settings.bootstrap_client_secret, client.secret_hash):
                    client.secret_hash = hash_secret(settings.bootstrap_client_secret)
                    client.previous_secret_hash = client.previous_secret_expires = None
                client.scopes = ALL_SCOPES
            # Another process starting at the same moment may have created it first.
            with suppress(IntegrityError):
                await session.commit()
            return
        if (await session.execute(select(func.count()).select_from(ApiClient))).scalar_one():
            return
        client_id = "admin-" + secrets.token_hex(4)
        client_secret = new_secret()
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


async def create(sessions: Sessions, client_id: str | None, scopes: list[str]) -> tuple[ApiClient, str]:
    """A new client; also return its secret, which is shown only now."""
    client_secret = new_secret()
    client = ApiClient(
        client_id=client_id or "client-" + secrets.token_hex(8),
        secret_hash=await hash_secret_async(client_secret),
        scopes=" ".join(scopes),
        created=utcnow(),
    )
    async with sessions() as session:
        session.add(client)
        try:
            await session.commit()
        except IntegrityError:
            raise Conflict(f"API client {client.client_id!r} already exists") from None
    return client, client_secret


async def rotate_secret(sessions: Sessions, client_id: str, grace: timedelta) -> tuple[ApiClient, str]:
    client_secret = new_secret()
    secret_hash = await hash_secret_async(client_secret)  # before the row lock is taken
    async with sessions() as session:
        client = await _locked(session, client_id)
        client.previous_secret_hash = client.secret_hash
        client.previous_secret_expires = utcnow() + grace
        client.secret_hash = secret_hash
        await session.commit()
    return client, client_secret


async def delete(sessions: Sessions, client_id: str, caller: str) -> None:
    if client_id == caller:
        raise Conflict("a client cannot delete itself; delete it with another clients:manage client")
    async with sessions() as session:
        client = await _locked(session, client_id)
        await session.delete(client)
        await session.commit()


async def _locked(session: AsyncSession, client_id: str) -> ApiClient:
    lock = update(ApiClient).where(col(ApiClient.client_id) == client_id).values(client_id=client_id)
    await session.execute(lock)
    client = await session.get(ApiClient, client_id)
    if client is None:
        raise NotFound(f"API client {client_id!r} does not exist")
    return client


def secret_hashes(client: ApiClient) -> list[str]:
    """The hashes a presented secret may match: the current one, then the previous one while
    its grace period lasts."""
    expires = client.previous_secret_expires
    if client.previous_secret_hash and expires is not None and expires > utcnow():
        return [client.secret_hash, client.previous_secret_hash]
    return [client.secret_hash]


def new_secret() -> str:
    return secrets.token_urlsafe(32)
