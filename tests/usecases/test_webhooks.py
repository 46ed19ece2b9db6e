"""Calls to a subscription's webhook URL (usecases/webhooks.py): refused while the subscription
is disabled, and the headers they record bounded in number and length. URLs, revocation and
rate limits over HTTP are tested in tests/integration/test_run_sources.py."""

from __future__ import annotations

import pytest

from gateway.domain.errors import Conflict, Invalid
from gateway.usecases import webhooks
from gateway.usecases.webhooks import MAX_HEADER_VALUE, MAX_HEADERS
from tests.servers import Subscriber, answer
from tests.usecases.driver import Driver


async def test_a_call_to_a_disabled_subscription_is_409_and_records_nothing_until_enabled(
    app: Driver, subscriber: Subscriber
) -> None:
    await app.create_trigger("t:hook", type="FIRE_AND_FORGET")
    sub = await app.subscribe("t:hook", subscriber.endpoint("hook", answer(200, {})))
    token = (await webhooks.issue(app.rt, sub["id"])).rsplit("/", 1)[1]
    await app.patch_subscription(sub["id"], [{"op": "replace", "path": "/enabled", "value": False}])

    # Disabling is not revoking: the URL is still the subscription's, and says why it refuses.
    assert await webhooks.subscription_of(app.rt, token) == sub["id"]
    with pytest.raises(Conflict) as refused:
        await app.webhook_call(sub["id"], b'{"n": 1}')
    assert refused.value.status == 409
    assert refused.value.message == f"subscription {sub['id']} is disabled; enable it first (PATCH /enabled)"
    assert await app.statuses(filters='source eq "webhook"') == []

    await app.patch_subscription(sub["id"], [{"op": "replace", "path": "/enabled", "value": True}])
    run = await app.webhook_call(sub["id"], b'{"n": 2}')
    assert (await app.final_status(run))["status"] == "COMPLETED"
    assert [r.body["n"] for r in subscriber.received] == [2]


async def test_recorded_headers_are_capped_in_number_and_length(app: Driver, subscriber: Subscriber) -> None:
    await app.create_trigger("t:hook", type="FIRE_AND_FORGET")
    sub = await app.subscribe("t:hook", subscriber.endpoint("hook", answer(200, {})))
    sent = {f"x-h-{n:02}": f"v{n}" for n in range(MAX_HEADERS + 10)}
    sent["x-h-00"] = "v" * (MAX_HEADER_VALUE * 3)
    # Credentials are dropped before the count: they take no place among those kept.
    headers = {"authorization": "Bearer third-party", "x-signature": "sig", **sent}
    run = await app.webhook_call(sub["id"], b"{}", **headers)

    recorded = (await app.final_status(run))["headers"]
    # The driver sends content-type first, as the first header of the request.
    expected = ["content-type", *[f"x-h-{n:02}" for n in range(MAX_HEADERS - 1)]]
    assert list(recorded) == expected
    assert recorded["x-h-00"] == "v" * MAX_HEADER_VALUE
    assert recorded["x-h-01"] == "v1"
    [delivery] = subscriber.received
    assert delivery.body["_metadata"]["runTriggers"][0]["headers"] == recorded


async def test_a_text_body_with_a_nul_byte_is_refused(app: Driver, subscriber: Subscriber) -> None:
    """Kept as text it could not be stored on PostgreSQL (no NUL in its text or JSON): a 400."""
    await app.create_trigger("t:nul", type="FIRE_AND_FORGET")
    sub = await app.subscribe("t:nul", subscriber.endpoint("nul", answer(200, {})))
    with pytest.raises(Invalid, match="NUL byte"):
        await app.webhook_call(sub["id"], b"a\x00b", content_type="text/plain")
    run = await app.webhook_call(sub["id"], b"plain text", content_type="text/plain")
    assert (await app.final_status(run))["startInvocationInput"]["input"] == {"body": "plain text"}
