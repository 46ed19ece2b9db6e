"""The SSRF guard end to end: refused when saved, refused again when a delivery connects."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from tests.conftest import start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer
from tests.services import Store

PUBLIC_HOOK = "https://8.8.8.8/hook"  # saved, never called: removed before any trigger is raised
PATCH_JSON = {"content-type": "application/json-patch+json"}
HINT = "(an operator can allow networks with GATEWAY_ALLOWED_TARGET_NETWORKS)"


def refusal(response: httpx.Response) -> str:
    """The text of a 400 in the API's error format."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["detailCode"].startswith("400") and body["trackingId"], body
    [message] = body["messages"]
    text: str = message["text"]
    return text


async def failure(gateway: GatewayClient, invocation_id: str) -> str:
    status = await gateway.final_status(invocation_id)
    assert status["status"] == "FAILED", status
    message: str = status["completeInvocationInput"]["localizedError"]["message"]
    return message


async def test_non_public_urls_are_refused_when_saved(store: Store, subscriber: Subscriber) -> None:
    port = urlsplit(subscriber.url).port
    async with start_gateway(store, worker=False, allowed_target_networks="") as gateway:
        await gateway.create_trigger("guard:fanout", type="FIRE_AND_FORGET")
        refused = {
            "http://169.254.169.254/latest/meta-data/": "169.254.169.254 is a link-local address",
            f"http://[::ffff:127.0.0.1]:{port}/x": "is an IPv6 form of 127.0.0.1, a loopback address",
            f"http://localhost:{port}/x": "localhost resolves to 127.0.0.1, a loopback address",
        }
        for url, reason in refused.items():
            body = {"triggerId": "guard:fanout", "name": "n", "httpConfig": {"url": url}}
            text = refusal(await gateway.http.post("/beta/trigger-subscriptions", json=body))
            assert text.startswith("httpConfig.url: ") and reason in text and text.endswith(HINT), text

        sub = await gateway.subscribe("guard:fanout", PUBLIC_HOOK)
        path = f"/beta/trigger-subscriptions/{sub['id']}"
        document = {"name": "renamed", "httpConfig": {"url": "http://169.254.169.254/"}}
        assert "link-local" in refusal(await gateway.http.put(path, json=document))
        patch = [{"op": "replace", "path": "/httpConfig/url", "value": f"http://localhost:{port}/x"}]
        assert "loopback" in refusal(await gateway.http.patch(path, json=patch, headers=PATCH_JSON))
        # An unchanged URL saves as before.
        document = {"name": "renamed", "httpConfig": {"url": PUBLIC_HOOK}}
        assert (await gateway.http.put(path, json=document)).status_code == 200
        assert (await gateway.http.delete(path)).status_code == 204

    # Raised through a gateway that delivers to loopback: a refused URL that had been saved
    # anyway would be delivered to (the refused paths are /x), beside the one allowed here.
    async with start_gateway(store) as gateway:
        await gateway.subscribe("guard:fanout", subscriber.endpoint("allowed", answer(200, {})))
        invocations = await gateway.start("guard:fanout", {"n": 1})
        statuses = [await gateway.final_status(invocation["id"]) for invocation in invocations]
    assert [(s["subscriptionName"], s["status"]) for s in statuses] == [("sub SYNC allowed", "COMPLETED")]
    assert [r.path for r in subscriber.received] == ["/allowed"]


async def test_deliveries_are_checked_when_they_connect(store: Store, subscriber: Subscriber) -> None:
    """Saved and delivered while loopback is allowed; then delivered by a gateway that refuses
    it, which is what a name rebound to an internal address meets: nothing reaches the
    subscriber. A redirect to the metadata service is never followed either."""
    literal = subscriber.endpoint("literal", answer(200, {}))
    by_name = subscriber.endpoint("name", answer(200, {})).replace("127.0.0.1", "localhost")
    metadata = {"location": "http://169.254.169.254/latest/meta-data/"}
    redirect = subscriber.endpoint("redirect", answer(307, {}, headers=metadata))
    async with start_gateway(store) as gateway:  # tests allow loopback
        await gateway.create_trigger("guard:fanout", type="FIRE_AND_FORGET")
        for url in (literal, by_name, redirect):
            await gateway.subscribe("guard:fanout", url)
        invocations = await gateway.start("guard:fanout", {"n": 1})
        statuses = [await gateway.final_status(invocation["id"]) for invocation in invocations]
    assert len(subscriber.received) == 3
    outcomes = {s["subscriptionName"]: (s["status"], s["completeInvocationInput"]) for s in statuses}
    assert outcomes == {
        "sub SYNC literal": ("COMPLETED", {"localizedError": None, "output": None}),
        "sub SYNC name": ("COMPLETED", {"localizedError": None, "output": None}),
        "sub SYNC redirect": (
            "FAILED",
            {
                "localizedError": {
                    "locale": "en-US",
                    "message": "the subscriber answered HTTP 307 (redirects are not followed)",
                },
                "output": None,
            },
        ),
    }

    async with start_gateway(store, allowed_target_networks="") as gateway:
        invocations = await gateway.start("guard:fanout", {"n": 2})
        errors = sorted([await failure(gateway, invocation["id"]) for invocation in invocations])
    assert len(subscriber.received) == 3
    assert errors[0].startswith(f"refused to deliver to {literal}: 127.0.0.1 is a loopback address"), errors
    assert errors[1].startswith(f"refused to deliver to {redirect}: 127.0.0.1 is a loopback address"), errors
    assert errors[2].startswith(f"refused to deliver to {by_name}: localhost resolves to 127.0.0.1"), errors
    assert all(error.endswith(HINT) for error in errors), errors


async def test_require_https_refuses_http_when_saved_and_when_delivering(
    store: Store, subscriber: Subscriber
) -> None:
    url = subscriber.endpoint("plain", answer(200, {"approver": "ada"}))
    async with start_gateway(store, worker=False) as gateway:
        await gateway.create_trigger("guard:https")
        await gateway.subscribe("guard:https", url)

    async with start_gateway(store, require_https=True) as gateway:
        body = {"triggerId": "guard:https", "name": "n", "httpConfig": {"url": url}}
        saved = await gateway.http.post("/beta/trigger-subscriptions", json=body)
        assert "GATEWAY_REQUIRE_HTTPS" in refusal(saved)
        [invocation] = await gateway.start("guard:https", {"n": 1})
        error = await failure(gateway, invocation["id"])
    assert error.startswith(f"refused to deliver to {url}: plain http is refused"), error
    assert "GATEWAY_REQUIRE_HTTPS" in error
    assert subscriber.received == []
