"""Rotating GATEWAY_SECRET_KEY (domain/keys.py): the first key of the list signs and encrypts,
every key verifies and decrypts. So what was issued under the old key (access tokens, webhook
URLs) keeps working while the old key stays listed, and stops when it is removed; what is
stored encrypted (subscribers' credentials, signing secrets, URL query strings) is encrypted
again under the new key when the gateway starts with both, and a start with a key that cannot
decrypt it is refused. Callback secrets across a rotation are tested in
tests/integration/test_callbacks.py."""

from __future__ import annotations

import pytest
from sqlmodel import select

from gateway.domain.errors import NotFound
from gateway.domain.keys import Keys, TokenClaims
from gateway.domain.model import Subscription
from gateway.usecases import secret_keys, webhooks
from gateway.usecases.secret_keys import WrongKey
from tests.conftest import CLIENT_ID
from tests.servers import Subscriber, answer
from tests.usecases.conftest import OpenDriver

OLD_KEY = "old-key-" + "o" * 32
NEW_KEY = "new-key-" + "n" * 32
BEARER = {"httpAuthenticationType": "BEARER_TOKEN", "bearerTokenAuthConfig": {"bearerToken": "t0k"}}
SCOPES = frozenset({"triggers:manage"})


def token_of(webhook_url: str) -> str:
    return webhook_url.rsplit("/", 1)[1]


async def test_what_the_old_key_issued_works_while_it_is_listed_and_stops_when_it_is_removed(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(secret_key=OLD_KEY) as app:
        await app.create_trigger("t:keys", type="FIRE_AND_FORGET")
        url = subscriber.endpoint("keys", answer(200, {}))
        sub = await app.subscribe("t:keys", url, name="credential", httpConfig=BEARER)
        other = await app.subscribe("t:keys", url, name="plain")
        old_hook = token_of(await webhooks.issue(app.rt, sub["id"]))
        old_token = app.rt.keys.issue_token(CLIENT_ID, SCOPES)  # as POST /oauth/token issues it

    # Rotating: the new key first, the old one kept.
    async with open_driver(secret_key=f"{NEW_KEY},{OLD_KEY}") as app:
        claims = app.rt.keys.read_token(old_token, app.rt.settings.token_ttl)
        assert claims == TokenClaims(CLIENT_ID, SCOPES)
        assert await webhooks.subscription_of(app.rt, old_hook) == sub["id"]
        run = await app.webhook_call(sub["id"], b'{"n": 1}')
        assert (await app.final_status(run))["status"] == "COMPLETED"
        assert subscriber.received[-1].headers["authorization"] == "Bearer t0k"  # decrypted
        # What is issued now is signed by the new key: the old key alone cannot read it.
        new_token = app.rt.keys.issue_token(CLIENT_ID, SCOPES)
        new_hook = token_of(await webhooks.issue(app.rt, other["id"]))
        old_only = Keys([OLD_KEY])
        assert old_only.read_token(new_token, app.rt.settings.token_ttl) is None
        assert old_only.read_webhook_token(new_hook) is None

    # Rotated: the old key removed.
    async with open_driver(secret_key=NEW_KEY) as app:
        assert app.rt.keys.read_token(old_token, app.rt.settings.token_ttl) is None
        assert app.rt.keys.read_token(new_token, app.rt.settings.token_ttl) == TokenClaims(CLIENT_ID, SCOPES)
        with pytest.raises(NotFound):
            await webhooks.subscription_of(app.rt, old_hook)  # its nonce is still the current one
        assert await webhooks.subscription_of(app.rt, new_hook) == other["id"]
        # The credential stored under the old key was encrypted again under the new one when
        # the gateway started with both: it is still sent.
        run = await app.webhook_call(sub["id"], b'{"n": 2}')
        assert (await app.final_status(run))["status"] == "COMPLETED"
        assert subscriber.received[-1].headers["authorization"] == "Bearer t0k"


async def test_a_key_that_does_not_decrypt_what_is_stored_is_refused_at_start(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(secret_key=OLD_KEY) as app:
        await app.create_trigger("t:keys", type="FIRE_AND_FORGET")
        sub = await app.subscribe("t:keys", subscriber.endpoint("keys", answer(200, {})), httpConfig=BEARER)
    # Swapped, not rotated: nothing that key encrypted can be read, so nothing starts.
    with pytest.raises(WrongKey) as refused:
        async with open_driver(secret_key=NEW_KEY):
            pass
    message = str(refused.value)
    assert f"subscription {sub['id']}" in message
    assert "Put the old key first" in message and "rotating the secret key" in message
    # The old key first again: it starts, and what it encrypted is left as it is.
    async with open_driver(secret_key=f"{OLD_KEY},{NEW_KEY}") as app:
        assert await secret_keys.reseal(app.rt) == 0


async def test_a_rotation_encrypts_again_only_what_an_older_key_encrypted(open_driver: OpenDriver) -> None:
    async with open_driver(secret_key=OLD_KEY) as app:
        await app.create_trigger("t:keys", type="FIRE_AND_FORGET")
        await app.subscribe("t:keys", "http://127.0.0.1:9/a", httpConfig=BEARER)  # signing secret, credential
        await app.subscribe("t:keys", "http://127.0.0.1:9/b?token=q")  # signing secret, query string
    async with open_driver(secret_key=f"{NEW_KEY},{OLD_KEY}") as app:  # resealed as it opened
        assert await secret_keys.reseal(app.rt) == 0
        new_only = Keys([NEW_KEY])
        async with app.rt.sessions() as session:
            stored = (await session.execute(select(Subscription))).scalars().all()
        values = [v for s in stored for v in (s.signing_secret, s.credential, s.url_query) if v]
        assert len(values) == 4
        assert all(new_only.decrypts(value) for value in values)
