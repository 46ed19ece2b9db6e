"""Rotating GATEWAY_SECRET_KEY (domain/keys.py): the first key of the list signs and encrypts,
every key verifies and decrypts. So what was issued under the old key (access tokens, webhook
URLs, stored credentials) keeps working while the old key stays listed, and stops when it is
removed. Callback secrets across a rotation are tested in tests/integration/test_callbacks.py."""

from __future__ import annotations

import pytest

from gateway.domain.errors import NotFound
from gateway.domain.keys import Keys, TokenClaims
from gateway.usecases import webhooks
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
        # The credential stored under the old key can no longer be decrypted: the delivery
        # fails saying why, and nothing is sent without it.
        before = len(subscriber.received)
        run = await app.webhook_call(sub["id"], b'{"n": 2}')
        status = await app.final_status(run)
        assert status["status"] == "FAILED"
        assert status["completeInvocationInput"]["localizedError"]["message"].startswith(
            "stored credential cannot be decrypted: was GATEWAY_SECRET_KEY changed"
        )
        assert len(subscriber.received) == before
