"""How invocations are raised: sources, manual runs, inbound webhooks, tenants, trigger
options and the loop guard, each driven over HTTP against real subscribers."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.conftest import start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer
from tests.services import Store

FIRE_AND_FORGET = {"type": "FIRE_AND_FORGET"}


async def test_an_api_start_is_of_source_api_and_says_so_in_metadata_and_status(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger("t:src")
    await gateway.subscribe("t:src", subscriber.endpoint("sync", answer(200, {"ok": True})))
    [inv] = await gateway.start("t:src", {"a": 1})
    status = await gateway.final_status(inv["id"])
    assert status["source"] == "api"
    [delivery] = await subscriber.wait_for(1)
    metadata = delivery.body["_metadata"]
    assert metadata["source"] == "api"
    assert delivery.headers["x-invocation-id"] == inv["id"]
    assert metadata["lastRun"] is None
    assert metadata["runTriggers"] == [
        {
            "invocationId": inv["id"],
            "source": "api",
            "mode": "init",
            "payload": {"a": 1},
            "headers": None,
            "receivedAt": status["created"],
        }
    ]


async def test_a_manual_run_is_delivered_with_its_payload_and_filtered_by_source(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger("t:manual", **FIRE_AND_FORGET)
    sub = await gateway.subscribe("t:manual", subscriber.endpoint("ff", answer(200, {})))
    [api_inv] = await gateway.start("t:manual", {"from": "api"})
    response = await gateway.http.post(
        f"/beta/trigger-subscriptions/{sub['id']}/run", json={"payload": {"cursor": 7}, "tenantId": "acme"}
    )
    assert response.status_code == 202, response.text
    manual = response.json()
    status = await gateway.final_status(manual["id"])
    assert (status["source"], status["tenantId"], status["status"]) == ("manual", "acme", "COMPLETED")
    bodies = {r.body["_metadata"]["invocationId"]: r.body for r in await subscriber.wait_for(2)}
    assert bodies[manual["id"]]["cursor"] == 7
    assert bodies[manual["id"]]["_metadata"]["source"] == "manual"
    assert bodies[manual["id"]]["_metadata"]["tenantId"] == "acme"
    # Without a body: the button itself.
    bare = await gateway.http.post(f"/beta/trigger-subscriptions/{sub['id']}/run")
    assert bare.status_code == 202, bare.text

    listed = await gateway.http.get(
        "/beta/trigger-invocations/status", params={"filters": 'source eq "manual"', "count": "true"}
    )
    assert listed.status_code == 200, listed.text
    assert {s["id"] for s in listed.json()} == {manual["id"], bare.json()["id"]}
    assert listed.headers["x-total-count"] == "2"
    api_only = await gateway.http.get(
        "/beta/trigger-invocations/status", params={"filters": 'source in ("api","webhook")'}
    )
    assert [s["id"] for s in api_only.json()] == [api_inv["id"]]


async def test_manual_runs_of_unknown_or_disabled_subscriptions_are_refused(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger("t:off")
    sub = await gateway.subscribe("t:off", subscriber.endpoint("s", answer(200, {})), enabled=False)
    disabled = await gateway.http.post(f"/beta/trigger-subscriptions/{sub['id']}/run")
    assert disabled.status_code == 409
    assert "enable" in disabled.json()["messages"][0]["text"]
    unknown = await gateway.http.post("/beta/trigger-subscriptions/nope/run", json={})
    assert unknown.status_code == 404
    wrong = await gateway.http.post(f"/beta/trigger-subscriptions/{sub['id']}/run", json={"payload": [1]})
    assert wrong.status_code == 400


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


async def test_trigger_options_select_subscriptions_with_any_as_the_default(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger("t:opts", options=["SERVER", "DISK"], **FIRE_AND_FORGET)
    any_sub = await gateway.subscribe("t:opts", subscriber.endpoint("any", answer(200, {})))
    server = await gateway.subscribe(
        "t:opts", subscriber.endpoint("server", answer(200, {})), options=["SERVER"]
    )
    assert any_sub["options"] == ["ANY"]
    assert server["options"] == ["SERVER"]

    by_server = await gateway.start("t:opts", {"n": 1}, option="SERVER")
    by_disk = await gateway.start("t:opts", {"n": 2}, option="DISK")
    none_named = await gateway.start("t:opts", {"n": 3})
    assert len(by_server) == 2 and len(by_disk) == 1 and len(none_named) == 1
    status = await gateway.final_status(by_disk[0]["id"])
    assert (status["subscriptionId"], status["option"]) == (any_sub["id"], "DISK")

    unknown = await gateway.http.post(
        "/beta/trigger-invocations/start", json={"triggerId": "t:opts", "input": {}, "option": "NET"}
    )
    assert unknown.status_code == 400
    assert "SERVER, DISK" in unknown.json()["messages"][0]["text"]
    bad_sub = await gateway.http.post(
        "/beta/trigger-subscriptions",
        json={
            "triggerId": "t:opts",
            "name": "x",
            "options": ["NET"],
            "httpConfig": {"url": any_sub["httpConfig"]["url"]},
        },
    )
    assert bad_sub.status_code == 400
    # An option in use cannot be taken away from the trigger.
    shrink = await gateway.http.put(
        "/beta/triggers/t:opts", json={"name": "Opts", "type": "FIRE_AND_FORGET", "options": ["DISK"]}
    )
    assert shrink.status_code == 409, shrink.text


async def test_the_tenant_comes_from_start_or_from_the_triggers_path(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger("t:tenant", tenantIdPath="$.org")
    await gateway.subscribe("t:tenant", subscriber.endpoint("sync", answer(200, {})))
    [from_path] = await gateway.start("t:tenant", {"org": "acme"})
    [given] = await gateway.start("t:tenant", {"org": "acme"}, tenantId="globex")
    [numeric] = await gateway.start("t:tenant", {"org": 42})
    [without] = await gateway.start("t:tenant", {"other": 1})
    tenants = [
        (await gateway.final_status(i["id"]))["tenantId"] for i in (from_path, given, numeric, without)
    ]
    assert tenants == ["acme", "globex", "42", None]
    not_scalar = await gateway.http.post(
        "/beta/trigger-invocations/start", json={"triggerId": "t:tenant", "input": {"org": {"id": 1}}}
    )
    assert not_scalar.status_code == 400
    bad_path = await gateway.http.post(
        "/beta/triggers", json={"id": "t:bad", "name": "B", "type": "FIRE_AND_FORGET", "tenantIdPath": "$[?("}
    )
    assert bad_path.status_code == 400
    listed = await gateway.http.get(
        "/beta/trigger-invocations/status", params={"filters": 'tenantId eq "acme"'}
    )
    assert [s["id"] for s in listed.json()] == [from_path["id"]]


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


async def test_a_bounded_depth_lets_chains_run_that_deep(store: Store, subscriber: Subscriber) -> None:
    async with start_gateway(store, max_trigger_depth=1) as gateway:
        await gateway.create_trigger("t:depth", **FIRE_AND_FORGET)
        await gateway.subscribe("t:depth", subscriber.endpoint("ff", answer(200, {})))
        [first] = await gateway.start("t:depth", {})
        second = await _start_caused_by(gateway, "t:depth", first["id"])
        assert (await gateway.final_status(second))["status"] == "COMPLETED"
        third = await _start_caused_by(gateway, "t:depth", second)
        status = await gateway.final_status(third)
        assert status["status"] == "SUPPRESSED"
        assert status["chain"] == [first["id"], second]


async def _start_caused_by(gateway: GatewayClient, trigger_id: str, parent: str) -> str:
    response = await gateway.http.post(
        "/beta/trigger-invocations/start",
        json={"triggerId": trigger_id, "input": {}},
        headers={"x-invocation-id": parent},
    )
    assert response.status_code == 200, response.text
    invocation_id: str = response.json()[0]["id"]
    return invocation_id


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
