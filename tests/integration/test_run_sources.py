"""Runs raised over HTTP in both modes: inbound webhooks (their URLs, headers, limits and the
access log), a manual run's body, and the loop guard's header. Sources, tenants, options and
chains are tested in tests/usecases/test_raise_trigger.py."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.conftest import start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer
from tests.services import Store

FIRE_AND_FORGET = {"type": "FIRE_AND_FORGET"}


async def test_a_webhook_records_payload_and_headers_without_credentials(
    gateway: GatewayClient, subscriber: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    await gateway.create_trigger("t:hook", tenantIdPath="$.account.id", **FIRE_AND_FORGET)
    sub = await gateway.subscribe("t:hook", subscriber.endpoint("ff", answer(200, {})))
    issued = await gateway.http.post(f"/beta/trigger-subscriptions/{sub['id']}/webhook")
    assert issued.status_code == 201, issued.text
    assert issued.headers["cache-control"] == "no-store"
    url = issued.json()["url"]
    assert url.startswith(gateway.settings.public_url + "/hooks/")
    shown = (await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")).json()
    assert shown["webhookEnabled"] is True
    assert url.rsplit("/", 1)[1] not in str(shown)

    caplog.set_level(logging.INFO)
    async with httpx.AsyncClient() as sender:  # a third party: no access token
        response = await sender.post(
            url,
            json={"account": {"id": "acme"}, "event": "order.created"},
            headers={
                "authorization": "Bearer third-party-secret",
                "x-api-key": "key-123",
                "x-hub-signature-256": "sha256=abc",
                "x-shopify-hmac-sha256": "hmac-456",
                "x-github-event": "push",
            },
        )
    assert response.status_code == 202, response.text
    status = await gateway.final_status(response.json()["id"])
    assert (status["source"], status["tenantId"], status["status"]) == ("webhook", "acme", "COMPLETED")
    assert status["headers"]["x-github-event"] == "push"
    assert status["headers"]["content-type"] == "application/json"
    recorded = str(status)
    for secret in ("third-party-secret", "key-123", "sha256=abc", "hmac-456"):
        assert secret not in recorded
    [delivery] = await subscriber.wait_for(1)
    assert delivery.body["event"] == "order.created"
    [trigger] = delivery.body["_metadata"]["runTriggers"]
    assert trigger["source"] == "webhook"
    assert trigger["payload"] == {"account": {"id": "acme"}, "event": "order.created"}
    assert "authorization" not in trigger["headers"]
    # The URL is the credential: the access log names the route, not the token.
    token = url.rsplit("/", 1)[1]
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("gateway"))
    assert "POST /hooks/<token> 202" in logged
    assert token not in logged


async def test_webhook_urls_are_revocable_and_bad_ones_are_404(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger("t:revoke", **FIRE_AND_FORGET)
    sub = await gateway.subscribe("t:revoke", subscriber.endpoint("ff", answer(200, {})))
    first = (await gateway.http.post(f"/beta/trigger-subscriptions/{sub['id']}/webhook")).json()["url"]
    second = (await gateway.http.post(f"/beta/trigger-subscriptions/{sub['id']}/webhook")).json()["url"]
    async with httpx.AsyncClient() as sender:
        assert (await sender.post(first, content=b"ping")).status_code == 404  # replaced
        text = await sender.post(second, content=b"plain text", headers={"content-type": "text/plain"})
        assert text.status_code == 202, text.text
        assert (await sender.post(second[:-3] + "xyz", json={})).status_code == 404  # forged
        assert (await sender.post(f"{gateway.settings.public_url}/hooks/garbage", json={})).status_code == 404
        not_json = await sender.post(second, content=b"{", headers={"content-type": "application/json"})
        assert not_json.status_code == 400
        too_big = await sender.post(second, content=b"x" * (gateway.settings.max_body_bytes + 1))
        assert too_big.status_code == 413
        revoked = await gateway.http.delete(f"/beta/trigger-subscriptions/{sub['id']}/webhook")
        assert revoked.status_code == 204
        gone = await sender.post(second, json={})
        assert gone.status_code == 404
        assert gone.json()["messages"][0]["text"].startswith("no webhook has this URL")
    status = await gateway.final_status(text.json()["id"])
    assert status["startInvocationInput"]["input"] == {"body": "plain text"}
    assert (await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")).json()[
        "webhookEnabled"
    ] is False


async def test_a_start_caused_by_a_delivery_is_suppressed_with_its_chain(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger("t:loop", **FIRE_AND_FORGET)
    await gateway.subscribe("t:loop", subscriber.endpoint("ff", answer(200, {})))
    [first] = await gateway.start("t:loop", {"n": 1})
    [delivery] = await subscriber.wait_for(1)
    # The subscriber's own action raises the trigger again, carrying the header it was given.
    echoed = await gateway.http.post(
        "/beta/trigger-invocations/start",
        json={"triggerId": "t:loop", "input": {"n": 2}},
        headers={"x-invocation-id": delivery.headers["x-invocation-id"]},
    )
    assert echoed.status_code == 200, echoed.text
    [second] = echoed.json()
    status = await gateway.final_status(second["id"])
    assert status["status"] == "SUPPRESSED"
    assert status["chain"] == [first["id"]]
    assert first["id"] in status["completeInvocationInput"]["localizedError"]["message"]
    # So is a manual run or a webhook call that the subscriber's action made.
    sub_id = (await gateway.status(first["id"]))["subscriptionId"]
    echo = {"x-invocation-id": first["id"]}
    manual = await gateway.http.post(f"/beta/trigger-subscriptions/{sub_id}/run", headers=echo)
    assert manual.status_code == 202, manual.text
    hook = (await gateway.http.post(f"/beta/trigger-subscriptions/{sub_id}/webhook")).json()["url"]
    async with httpx.AsyncClient() as sender:
        webhook = await sender.post(hook, json={"n": 3}, headers=echo)
    assert webhook.status_code == 202, webhook.text
    for invocation_id in (manual.json()["id"], webhook.json()["id"]):
        status = await gateway.status(invocation_id)
        assert (status["status"], status["chain"]) == ("SUPPRESSED", [first["id"]])
    assert len(subscriber.received) == 1
    bad = await gateway.http.post(
        "/beta/trigger-invocations/start",
        json={"triggerId": "t:loop", "input": {}},
        headers={"x-invocation-id": "not an id!"},
    )
    assert bad.status_code == 400


async def test_each_webhook_url_has_its_own_rate_limit(store: Store, subscriber: Subscriber) -> None:
    async with start_gateway(store, webhook_rate_limit=0.5, webhook_rate_burst=3) as gateway:
        await gateway.create_trigger("t:flood", **FIRE_AND_FORGET)
        urls = []
        for name in ("a", "b"):
            sub = await gateway.subscribe("t:flood", subscriber.endpoint(name, answer(200, {})))
            urls.append(
                (await gateway.http.post(f"/beta/trigger-subscriptions/{sub['id']}/webhook")).json()["url"]
            )
        async with httpx.AsyncClient() as sender:
            statuses = [(await sender.post(urls[0], json={"n": n})).status_code for n in range(4)]
            assert statuses == [202, 202, 202, 429]
            refused = await sender.post(urls[0], json={})
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1
            assert "rate limit" in refused.json()["messages"][0]["text"]
            assert (await sender.post(urls[1], json={})).status_code == 202  # another URL, another budget
        listed = await gateway.http.get(
            "/beta/trigger-invocations/status", params={"filters": 'source eq "webhook"', "count": "true"}
        )
        assert listed.headers["x-total-count"] == "4"  # refused calls record nothing
