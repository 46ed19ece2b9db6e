"""SailPoint's current SDK (``sailpoint`` 2.x, module ``sailpoint.triggers``) against a running
gateway, pointed at it by its base URL only: every v1 call it makes, each answer read by the
SDK's own models. The SDK is synchronous (urllib3): its calls run in a thread while the
gateway and the subscriber serve on this test's event loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from sailpoint.configuration import Configuration, ConfigurationParams
from sailpoint.triggers.api.triggers_api import TriggersApi
from sailpoint.triggers.api_client import ApiClient
from sailpoint.triggers.exceptions import ApiException
from sailpoint.triggers.models.complete_invocation import CompleteInvocation
from sailpoint.triggers.models.error_response_dto import ErrorResponseDto
from sailpoint.triggers.models.http_config import HttpConfig
from sailpoint.triggers.models.subscription_patch_request_inner import SubscriptionPatchRequestInner
from sailpoint.triggers.models.subscription_patch_request_inner_value import (
    SubscriptionPatchRequestInnerValue,
)
from sailpoint.triggers.models.subscription_post_request import SubscriptionPostRequest
from sailpoint.triggers.models.subscription_put_request import SubscriptionPutRequest
from sailpoint.triggers.models.test_invocation import TestInvocation as SdkTestInvocation
from sailpoint.triggers.models.validate_filter_input_dto import ValidateFilterInputDto

from tests.conftest import CLIENT_ID, CLIENT_SECRET
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer

T = TypeVar("T")

# SailPoint's own example of an access-request post-approval event: one of the event shapes the
# SDK's Trigger model can read (it refuses an exampleInput that matches none, or several).
POST_APPROVAL = {
    "accessRequestId": "2c91808b6ef1d43e016efba0ce470904",
    "requestedFor": [
        {"type": "IDENTITY", "id": "2c91808568c529c60168cca6f90c1313", "name": "William Wilson"}
    ],
    "requestedItemsStatus": [
        {
            "id": "2c91808b6ef1d43e016efba0ce470904",
            "name": "Engineering Access",
            "type": "ACCESS_PROFILE",
            "operation": "Add",
            "approvalInfo": [
                {
                    "approvalDecision": "APPROVED",
                    "approverName": "Stephen.Austin",
                    "approver": {
                        "type": "IDENTITY",
                        "id": "2c3780a46faadee4016fb4e018c20652",
                        "name": "Allen",
                    },
                }
            ],
        }
    ],
    "requestedBy": {"type": "IDENTITY", "id": "2c91808568c529c60168cca6f90c1313", "name": "William Wilson"},
}


async def sdk(gateway: GatewayClient) -> TriggersApi:
    """The SDK's triggers API, configured as its README says, with only the base URL changed.
    Building the configuration fetches a token from <base URL>/oauth/token."""
    params = ConfigurationParams()
    params.base_url = gateway.settings.public_url
    params.client_id, params.client_secret = CLIENT_ID, CLIENT_SECRET
    configuration = await asyncio.to_thread(Configuration, params)
    return TriggersApi(ApiClient(configuration))


async def call(method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(method, *args, **kwargs)


def http(url: str, mode: str = "SYNC") -> HttpConfig:
    return HttpConfig.from_dict({"url": url, "httpDispatchMode": mode, "httpAuthenticationType": "NO_AUTH"})


async def test_the_trigger_list_and_every_subscription_call(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    # No inputSchema: the SDK's Trigger model requires one, so it is answered as {}.
    await gateway.create_trigger("test:post-approval", type="FIRE_AND_FORGET", exampleInput=POST_APPROVAL)
    await gateway.create_trigger("test:other", type="FIRE_AND_FORGET", exampleInput=POST_APPROVAL)
    api = await sdk(gateway)

    [trigger] = await call(api.list_triggers_v1, filters='id eq "test:post-approval"')
    assert (trigger.id, trigger.type.value, json.loads(trigger.input_schema)) == (
        "test:post-approval",
        "FIRE_AND_FORGET",
        {},
    )
    assert trigger.example_input.actual_instance.access_request_id == POST_APPROVAL["accessRequestId"]

    url = subscriber.endpoint("ok", answer(200, {}))
    created = await call(
        api.create_subscription_v1,
        SubscriptionPostRequest(
            name="sdk", triggerId="test:post-approval", type="HTTP", httpConfig=http(url)
        ),
    )
    assert (created.trigger_id, created.trigger_name, created.http_config.url) == (
        "test:post-approval",
        trigger.name,
        url,
    )

    listed = await call(
        api.list_subscriptions_v1_with_http_info, filters='triggerId eq "test:post-approval"', count=True
    )
    assert [s.id for s in listed.data] == [created.id]
    # The SDK hands back a plain, case-sensitive dict of the headers.
    assert listed.headers is not None and listed.headers["X-Total-Count"] == "1"

    replaced = await call(
        api.update_subscription_v1,
        created.id,
        SubscriptionPutRequest(
            name="sdk, renamed", type="HTTP", httpConfig=http(url), filter="$[?($.accessRequestId)]"
        ),
    )
    assert (replaced.name, replaced.filter) == ("sdk, renamed", "$[?($.accessRequestId)]")

    # The SDK's patch value takes a string, number, object or list (not a boolean).
    rename = SubscriptionPatchRequestInner(
        op="replace", path="/name", value=SubscriptionPatchRequestInnerValue(actual_instance="sdk, patched")
    )
    patched = await call(api.patch_subscription_v1, created.id, [rename])
    assert (patched.name, patched.filter) == ("sdk, patched", "$[?($.accessRequestId)]")

    matched = await call(
        api.test_subscription_filter_v1,
        ValidateFilterInputDto(input=POST_APPROVAL, filter='$[?($.requestedBy.name == "William Wilson")]'),
    )
    unmatched = await call(
        api.test_subscription_filter_v1,
        ValidateFilterInputDto(input={"a": 1}, filter="$[?($.accessRequestId)]"),
    )
    assert (matched.is_valid, unmatched.is_valid) == (True, False)

    await call(api.delete_subscription_v1, created.id)
    assert await call(api.list_subscriptions_v1, filters='triggerId eq "test:post-approval"') == []
    with pytest.raises(ApiException) as missing:
        await call(api.delete_subscription_v1, created.id)
    assert missing.value.status == 404
    assert ErrorResponseDto.from_json(missing.value.body).messages


async def test_a_test_invocation_polled_to_completion(gateway: GatewayClient, subscriber: Subscriber) -> None:
    await gateway.create_trigger(outputSchema={"type": "object"})
    url = subscriber.endpoint("approve", answer(200, {"approved": True}))
    sub = await gateway.subscribe("test:approver", url, "SYNC")
    api = await sdk(gateway)

    invocations = await call(
        api.start_test_trigger_invocation_v1,
        SdkTestInvocation(
            triggerId="test:approver",
            input={"n": 1},
            contentJson={"case": "sdk"},
            subscriptionIds=[sub["id"]],
        ),
    )
    [invocation] = invocations
    assert invocation.trigger_id == "test:approver" and invocation.content_json == {"case": "sdk"}
    async with asyncio.timeout(10):
        while True:
            [status] = await call(
                api.list_trigger_invocation_status_v1, filters=f'subscriptionId eq "{sub["id"]}"'
            )
            if status.completed is not None:  # SailPoint's status has no status field: this is it
                break
            await asyncio.sleep(0.05)
    assert status.id == invocation.id
    assert status.complete_invocation_input.output == {"approved": True}


async def test_an_async_invocation_completed_through_the_sdk(
    gateway: GatewayClient, subscriber: Subscriber
) -> None:
    await gateway.create_trigger(outputSchema={"type": "object"})
    await gateway.subscribe("test:approver", subscriber.endpoint("ack", answer(200, {})), "ASYNC")
    [invocation] = await gateway.start("test:approver", {})
    meta = (await subscriber.wait_for(1))[0].body["_metadata"]
    await gateway.reach(invocation["id"], "AWAITING_CALLBACK")
    api = await sdk(gateway)

    with pytest.raises(ApiException) as refused:
        await call(
            api.complete_trigger_invocation_v1,
            invocation["id"],
            CompleteInvocation(secret="wrong", output={}),
        )
    assert refused.value.status == 403
    assert ErrorResponseDto.from_json(refused.value.body).messages

    await call(
        api.complete_trigger_invocation_v1,
        invocation["id"],
        CompleteInvocation(secret=meta["secret"], output={"approved": True}),
    )
    status = await gateway.status(invocation["id"])
    assert (status["status"], status["completeInvocationInput"]["output"]) == (
        "COMPLETED",
        {"approved": True},
    )
