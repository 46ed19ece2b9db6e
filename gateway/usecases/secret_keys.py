"""Whether GATEWAY_SECRET_KEY decrypts the secrets the database holds, and moving them to the
first key of the list during a rotation (the README's "Rotating the secret key").

Subscriptions keep their signing secrets, credentials and URL query strings encrypted
(domain/keys.py). A process started with a key that cannot decrypt them would look healthy and
then fail every delivery, so every start checks a sample first and refuses such a key.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update
from sqlmodel import col, select

from gateway.adapters.database.engine import Sessions
from gateway.domain.keys import Keys, Undecryptable
from gateway.domain.model import Subscription
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.usecases import catalog

# The encrypted columns, and what each holds, as a start-up error names it.
ENCRYPTED = {
    "signing_secret": "signing secret",
    "previous_signing_secret": "previous signing secret",
    "credential": "credential",
    "url_query": "URL query string",
}
# Checked at start: a rotated-out signing secret is left out, it may outlive its grace.
SAMPLED = ("signing_secret", "credential", "url_query")


class WrongKey(Exception):
    """The configured key does not decrypt what is stored; the message says what to do."""


async def check_stored(settings: Settings, sessions: Sessions, keys: Keys) -> None:
    """Refuse keys that do not decrypt a sample of the stored secrets: of each encrypted
    column, the oldest and the newest subscription's value (a handful of small queries)."""
    found = await _undecryptable(sessions, keys)
    if found is not None:
        raise WrongKey(_refusal(settings, found))


async def _undecryptable(sessions: Sessions, keys: Keys) -> str | None:
    async with sessions() as session:
        for name in SAMPLED:
            column = col(getattr(Subscription, name))
            for order in (col(Subscription.created).asc(), col(Subscription.created).desc()):
                query = select(Subscription.id, column).where(column.is_not(None)).order_by(order).limit(1)
                row = (await session.execute(query)).first()
                if row is not None and not keys.decrypts(row[1]):
                    return f"the {ENCRYPTED[name]} of subscription {row[0]}"
    return None


def _refusal(settings: Settings, found: str) -> str:
    if settings.secret_key.strip():
        return (
            f"GATEWAY_SECRET_KEY does not decrypt what the database holds ({found}): was the key "
            "changed? Put the old key first in the comma-separated list (GATEWAY_SECRET_KEY=<old "
            "key>,<new key>), or follow the README's procedure for rotating the secret key"
        )
    key_file = Path(settings.secret_key_file).resolve()
    return (
        f"the key in {key_file} (GATEWAY_SECRET_KEY is not set) does not decrypt what the database "
        f"holds ({found}): point GATEWAY_SECRET_KEY_FILE at the key file used before, or put the "
        "old key first in GATEWAY_SECRET_KEY, or follow the README's procedure for rotating the "
        "secret key"
    )


async def reseal(rt: Runtime) -> int:
    """Encrypt again under the first key what an older key of the list encrypted; how many
    values changed. Each row changes only while it still holds what was read, so processes
    starting at once, or a subscription saved meanwhile, lose nothing."""
    names = list(ENCRYPTED)
    changed = 0
    async with rt.sessions() as session:
        query = select(Subscription.id, *(getattr(Subscription, name) for name in names))
        rows = (await session.execute(query)).all()
        connection = await session.connection()
        for subscription_id, *values in rows:
            for name, value in zip(names, values, strict=True):
                new = _reencrypted(rt.keys, value)
                if new is None:
                    continue
                column = col(getattr(Subscription, name))
                change = (
                    update(Subscription)
                    .where(col(Subscription.id) == subscription_id, column == value)
                    .values({name: new})
                )
                changed += (await connection.execute(change)).rowcount
        await session.commit()
    if changed:
        await catalog.changed(rt)
    return changed


def _reencrypted(keys: Keys, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return keys.reencrypted(value)
    except Undecryptable:  # no listed key decrypts it: its deliveries fail, saying why
        return None
