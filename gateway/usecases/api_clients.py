"""API clients: the bootstrap admin client; creating, reading, rotating and deleting clients;
and checking a client's secret for a token.

Only hashes of client secrets are stored. A rotated-out secret keeps working for the grace
period, so a deployment can roll the new one out without a gap.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence
from contextlib import suppress
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from gateway.adapters.database import listing
from gateway.adapters.database.rows import get_existing, lock_row
from gateway.domain import rotation
from gateway.domain.clock import utcnow
from gateway.domain.errors import Conflict
from gateway.domain.list_query import Listable, ListQuery
from gateway.domain.model import ApiClient
from gateway.domain.passwords import hash_secret, hash_secret_async, verify_secret, verify_secret_async
from gateway.runtime import Runtime

API_SCOPES = ("triggers:manage", "invocations:start", "invocations:read")
CLIENTS_MANAGE = "clients:manage"
METRICS_READ = "metrics:read"  # GET /metrics only
ALL_SCOPES = " ".join((*API_SCOPES, CLIENTS_MANAGE, METRICS_READ))
LISTABLE = Listable(filterable={"clientId": frozenset({"eq", "in", "sw"})}, sortable=("clientId", "created"))
_COLUMNS = {"clientId": ApiClient.client_id, "created": ApiClient.created}


class WrongSecret(Exception):
    """The client id is unknown or the secret does not match it (callers cannot tell which)."""


async def ensure_bootstrap_client(rt: Runtime) -> None:
    """The client GATEWAY_BOOTSTRAP_CLIENT_ID/_SECRET name, if set: created, or made to match."""
    settings = rt.settings
    if not settings.bootstrap_client_id:
        return
    async with rt.sessions() as session:
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


async def create_first_admin(rt: Runtime) -> tuple[str, str] | None:
    """Without a configured bootstrap client, a database with no client gets an admin client;
    its id and secret are returned to be shown once (only the secret's hash is stored). Called
    once the server listens, so that a start that fails cannot use up the showing."""
    if rt.settings.bootstrap_client_id:
        return None
    async with rt.sessions() as session:
        if (await session.execute(select(func.count()).select_from(ApiClient))).scalar_one():
            return None
        client_id = "admin-" + secrets.token_hex(4)
        client_secret = new_secret()
        session.add(_client(client_id, client_secret))
        await session.commit()
    return client_id, client_secret


def _client(client_id: str, client_secret: str) -> ApiClient:
    return ApiClient(
        client_id=client_id, secret_hash=hash_secret(client_secret), scopes=ALL_SCOPES, created=utcnow()
    )


async def authenticate(rt: Runtime, client_id: str, client_secret: str) -> frozenset[str]:
    """The scopes of the client whose secret this is; WrongSecret otherwise. Always two scrypt
    checks, side by side: the same work whether the client exists, is inside a rotation's
    grace period, or not, so the time taken tells nothing (it was 77 ms against 39 ms)."""
    async with rt.sessions() as session:
        client = await session.get(ApiClient, client_id)
    hashes = secret_hashes(client) if client is not None else []
    checked = await hashes_to_check(hashes)
    matched = await asyncio.gather(*(verify_secret_async(client_secret, stored) for stored in checked))
    if client is None or not any(matched[: len(hashes)]):
        raise WrongSecret
    return frozenset(client.scopes.split())


async def hashes_to_check(hashes: list[str]) -> list[str]:
    """Always two: the client's (one, or two inside a rotation's grace), then decoys."""
    return [*hashes, *await _decoys()][:2]


_DECOYS: list[str] = []


async def _decoys() -> list[str]:
    """Two hashes no presented secret matches, checked in place of missing ones; made (in the
    scrypt threads) at first use, not at every import."""
    if not _DECOYS:
        _DECOYS.extend(await asyncio.gather(*(hash_secret_async(secrets.token_urlsafe(32)) for _ in "ab")))
    return _DECOYS[:2]


class KnownClients:
    """Whether the client an access token names still exists: asked on every request with a
    token, answered from the database at most once a second per client, so a deleted
    client's tokens stop working within a second (they lived until they expired before)."""

    TTL = 1.0  # seconds

    def __init__(self) -> None:
        self._seen: dict[str, tuple[bool, float]] = {}

    async def exists(self, rt: Runtime, client_id: str) -> bool:
        now = time.monotonic()
        seen = self._seen.get(client_id)
        if seen is not None and now - seen[1] < self.TTL:
            return seen[0]
        async with rt.sessions() as session:
            found = await session.get(ApiClient, client_id) is not None
        if len(self._seen) > 10_000:  # tokens name only clients that existed: few, but bounded
            self._seen.clear()
        self._seen[client_id] = (found, now)
        return found


async def get(rt: Runtime, client_id: str) -> ApiClient:
    async with rt.sessions() as session:
        return await get_existing(session, ApiClient, client_id)


async def list_page(rt: Runtime, query: ListQuery) -> tuple[Sequence[ApiClient], int | None]:
    async with rt.sessions() as session:
        return await listing.page(session, select(ApiClient), query, _COLUMNS, [ApiClient.client_id])


async def create(rt: Runtime, client_id: str | None, scopes: list[str]) -> tuple[ApiClient, str]:
    """A new client; also return its secret, which is shown only now."""
    client_secret = new_secret()
    client = ApiClient(
        client_id=client_id or "client-" + secrets.token_hex(8),
        secret_hash=await hash_secret_async(client_secret),
        scopes=" ".join(scopes),
        created=utcnow(),
    )
    async with rt.sessions() as session:
        session.add(client)
        try:
            await session.commit()
        except IntegrityError:
            raise Conflict(f"API client {client.client_id!r} already exists") from None
    return client, client_secret


async def rotate_secret(rt: Runtime, client_id: str) -> tuple[ApiClient, str]:
    client_secret = new_secret()
    secret_hash = await hash_secret_async(client_secret)  # before the row lock is taken
    grace = timedelta(seconds=rt.settings.rotation_grace)
    async with rt.sessions() as session:
        client = await _locked(session, client_id)
        rotated = rotation.rotate(client.secret_hash, secret_hash, utcnow(), grace)
        client.secret_hash, client.previous_secret_hash, client.previous_secret_expires = rotated
        await session.commit()
    return client, client_secret


async def delete(rt: Runtime, client_id: str, caller: str) -> None:
    if client_id == caller:
        raise Conflict("a client cannot delete itself; delete it with another clients:manage client")
    async with rt.sessions() as session:
        await session.delete(await _locked(session, client_id))
        await session.commit()


async def _locked(session: AsyncSession, client_id: str) -> ApiClient:
    await lock_row(session, ApiClient, client_id)
    return await get_existing(session, ApiClient, client_id)


def secret_hashes(client: ApiClient) -> list[str]:
    """The hashes a presented secret may match: the current one, then the previous one while
    its grace period lasts."""
    return rotation.active(
        client.secret_hash, client.previous_secret_hash, client.previous_secret_expires, utcnow()
    )


def new_secret() -> str:
    return secrets.token_urlsafe(32)
