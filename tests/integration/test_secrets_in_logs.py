"""No secret the gateway handles ever reaches its logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import CLIENT_SECRET, start_gateway
from tests.servers import Subscriber, answer


async def test_logs_hold_no_secret(
    tmp_path: Path, subscriber: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password, token = "basic-pass-Zq81", "bearer-tok-Xk27"
    async with start_gateway(tmp_path) as gateway:
        await gateway.create_trigger("test:created", type="FIRE_AND_FORGET")
        basic = {
            "httpAuthenticationType": "BASIC_AUTH",
            "basicAuthConfig": {"userName": "u", "password": password},
        }
        bearer = {"httpAuthenticationType": "BEARER_TOKEN", "bearerTokenAuthConfig": {"bearerToken": token}}
        await gateway.subscribe(
            "test:created", subscriber.endpoint("a", answer(500, {})), httpConfig=basic, name="a"
        )
        await gateway.subscribe(
            "test:created", subscriber.endpoint("b", answer(200, {})), httpConfig=bearer, name="b"
        )
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
        access_token = gateway.http.headers["authorization"].split()[1]
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "trackingId=" in logged  # the logs were captured
    for secret in (password, token, awaiting["secret"], CLIENT_SECRET, access_token):
        assert secret not in logged
