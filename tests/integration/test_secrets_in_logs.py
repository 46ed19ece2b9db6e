"""No secret the gateway handles ever reaches its logs or its database in plain text: the API's
log and, distributed, the worker's, which decrypts credentials and delivers."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.conftest import CLIENT_SECRET, start_gateway
from tests.servers import Subscriber, answer
from tests.services import Store, stored_bytes


async def test_logs_and_database_hold_no_secret(
    store: Store, subscriber: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password, token = "basic-pass-Zq81", "bearer-tok-Xk27"
    # "a" fails and is tried again once: its retry's log lines too hold no secret.
    async with start_gateway(store, worker_log_level="DEBUG", retry_schedule="0.1") as gateway:
        await gateway.create_trigger("test:created", type="FIRE_AND_FORGET")
        basic = {
            "httpAuthenticationType": "BASIC_AUTH",
            "basicAuthConfig": {"userName": "u", "password": password},
        }
        bearer = {"httpAuthenticationType": "BEARER_TOKEN", "bearerTokenAuthConfig": {"bearerToken": token}}
        a = await gateway.subscribe(
            "test:created", subscriber.endpoint("a", answer(500, {})), httpConfig=basic, name="a"
        )
        b = await gateway.subscribe(
            "test:created", subscriber.endpoint("b", answer(200, {})), httpConfig=bearer, name="b"
        )
        rotated = await gateway.http.post(f"/trigger-subscriptions/{b['id']}/rotate-secret")
        await gateway.create_trigger()
        await gateway.subscribe("test:approver", subscriber.endpoint("c", answer(200, {})), "ASYNC")
        invocations = await gateway.start("test:created", {})
        [awaiting] = await gateway.start("test:approver", {})
        for invocation in invocations:
            await gateway.final_status(invocation["id"])
        wrong = await gateway.complete(
            f"{gateway.settings.public_url}/beta/trigger-invocations/{awaiting['id']}/complete",
            {"secret": awaiting["secret"] + "x", "output": {}},
        )
        assert wrong.status_code == 403
        client = (await gateway.http.post("/api-clients", json={"scopes": ["invocations:read"]})).json()
        client_rotated = (await gateway.http.post(f"/api-clients/{client['clientId']}/rotate-secret")).json()
        async with httpx.AsyncClient(base_url=str(gateway.http.base_url)) as anonymous:
            form = {
                "grant_type": "client_credentials",
                "client_id": client["clientId"],
                "client_secret": client_rotated["clientSecret"],
            }
            assert (await anonymous.post("/oauth/token", data=form)).status_code == 200
        access_token = gateway.http.headers["authorization"].split()[1]
        stored = await stored_bytes(gateway.settings.database_url)
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "trackingId=" in logged  # the API's log was captured
    if store.redis_url:
        assert gateway.worker_log is not None
        worker_logged = gateway.worker_log.read_text(errors="replace")
        # The worker's log was captured, at DEBUG, and holds the deliveries' outcomes.
        assert "DEBUG" in worker_logged and "outcome=failed" in worker_logged, worker_logged[-2000:]
        logged += "\n" + worker_logged
    assert "outcome=failed" in logged  # whichever process delivered logged the 500
    assert b"test:approver" in stored  # the database was read
    secrets = [
        password,
        token,
        awaiting["secret"],
        CLIENT_SECRET,
        access_token,
        gateway.signing_secrets[a["id"]],
        gateway.signing_secrets[b["id"]],
        rotated.json()["signingSecret"],
        client["clientSecret"],
        client_rotated["clientSecret"],
    ]
    for secret in secrets:
        assert secret not in logged
        assert secret.encode() not in stored
        # Signing secrets are base64: the key bytes must not be there either.
        assert secret.removeprefix("whsec_").encode() not in stored
