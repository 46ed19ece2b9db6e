"""POST /trigger-invocations/start with RFC 7240 `Prefer: wait=N`: the answer in one request."""

from __future__ import annotations

import time

from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer

START = "/beta/trigger-invocations/start"


async def test_the_answer_comes_in_the_start_once_every_invocation_is_final(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger("t:sync")
    await gateway.subscribe("t:sync", subscriber.endpoint("sync", answer(200, {"approved": True})))
    response = await gateway.http.post(
        START, json={"triggerId": "t:sync", "input": {}}, headers={"Prefer": "wait=10"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["preference-applied"] == "wait=10"
    [status] = response.json()
    assert status["status"] == "COMPLETED"
    assert status["completeInvocationInput"] == {"localizedError": None, "output": {"approved": True}}
    assert status == await gateway.status(status["id"])

    await gateway.create_trigger("t:fan", type="FIRE_AND_FORGET")
    for name in ("a", "b"):
        await gateway.subscribe("t:fan", subscriber.endpoint(name, answer(204, None)), name=name)
    # Other preferences are ignored, and the header's case and spacing do not matter.
    fan = await gateway.http.post(
        START, json={"triggerId": "t:fan", "input": {}}, headers={"prefer": "respond-async, WAIT = 5; x=y"}
    )
    assert fan.status_code == 200, fan.text
    assert fan.headers["preference-applied"] == "wait=5"
    assert sorted(s["status"] for s in fan.json()) == ["COMPLETED", "COMPLETED"]


async def test_when_the_wait_runs_out_the_statuses_are_what_they_are_then(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger("t:later")
    await gateway.subscribe("t:later", subscriber.endpoint("ack", answer(200, {})), "ASYNC")
    asked = time.monotonic()
    response = await gateway.http.post(
        START, json={"triggerId": "t:later", "input": {}}, headers={"Prefer": "wait=1"}
    )
    took = time.monotonic() - asked
    assert response.status_code == 200, response.text
    assert response.headers["preference-applied"] == "wait=1"
    [status] = response.json()
    assert status["status"] == "AWAITING_CALLBACK"
    assert status["completeInvocationInput"] is None
    assert 1.0 <= took < 2.5, f"answered after {took:.2f} s"


async def test_a_malformed_wait_is_refused_before_anything_is_created_and_no_header_changes_nothing(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger("t:plain")
    await gateway.subscribe("t:plain", subscriber.endpoint("sync", answer(200, {})))
    for bad in ("wait=31", "wait=abc", "wait=", "wait=-1", "wait=1.5", "wait=²", "wait=" + "9" * 5000):
        response = await gateway.http.post(
            START, json={"triggerId": "t:plain", "input": {}}, headers={b"Prefer": bad.encode("latin-1")}
        )
        assert response.status_code == 400, (bad, response.text)
        assert "Prefer: wait must be whole seconds from 0 to 30" in response.json()["messages"][0]["text"]
    listed = await gateway.http.get("/beta/trigger-invocations/status", params={"count": "true"})
    assert listed.headers["X-Total-Count"] == "0"

    plain = await gateway.http.post(START, json={"triggerId": "t:plain", "input": {}})
    assert plain.status_code == 200
    assert "preference-applied" not in plain.headers
    [created] = plain.json()
    assert set(created) >= {"id", "secret"}  # the Invocation document, not a status


async def test_waiting_for_statuses_needs_the_scope_that_reads_them(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger("t:scoped")
    await gateway.subscribe("t:scoped", subscriber.endpoint("sync", answer(200, {"secret": "output"})))
    created = await gateway.http.post("/beta/api-clients", json={"scopes": ["invocations:start"]})
    assert created.status_code == 201, created.text
    client = created.json()
    form = {
        "grant_type": "client_credentials",
        "client_id": client["clientId"],
        "client_secret": client["clientSecret"],
    }
    token = (await gateway.http.post("/oauth/token", data=form)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Prefer": "wait=5"}
    refused = await gateway.http.post(START, json={"triggerId": "t:scoped", "input": {}}, headers=headers)
    assert refused.status_code == 403, refused.text
    assert "invocations:read" in refused.json()["messages"][0]["text"]
    assert subscriber.count() == 0  # nothing was started
