from __future__ import annotations

from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer


async def test_sync_round_trip(gateway: GatewayClient, subscriber: Subscriber) -> None:
    await gateway.create_trigger()
    url = subscriber.endpoint("sync", answer(200, {"approver": "ada"}))
    sub = await gateway.subscribe("test:approver", url, "SYNC")
    [invocation] = await gateway.start("test:approver", {"amount": 5})
    status = await gateway.final_status(invocation["id"])
    assert status["completeInvocationInput"] == {"localizedError": None, "output": {"approver": "ada"}}
    assert status["subscriptionId"] == sub["id"]
    [delivered] = subscriber.received
    assert delivered.body["amount"] == 5
    assert delivered.body["_metadata"]["invocationId"] == invocation["id"]
