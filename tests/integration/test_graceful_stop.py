"""A stop lets the deliveries in flight finish and record their outcome, rather than cutting
them off to be delivered again after the restart."""

from __future__ import annotations

from tests.conftest import start_gateway
from tests.servers import Subscriber, hang
from tests.services import Store


async def test_a_delivery_in_flight_at_a_stop_is_finished_and_recorded(
    store: Store, subscriber: Subscriber
) -> None:
    async with start_gateway(store) as gateway:
        await gateway.create_trigger("t:stop")
        # The acknowledgement comes a second after the delivery arrives: after the stop.
        await gateway.subscribe("t:stop", subscriber.endpoint("slow-ack", hang(1.0)), "ASYNC")
        [invocation] = await gateway.start("t:stop", {})
        await subscriber.wait_for(1)
    async with start_gateway(store) as gateway:
        status = await gateway.status(invocation["id"])
        # Recorded before the stop ended: cut off, it would still be DISPATCHING, and be
        # delivered a second time once the sweep found it stranded.
        assert (status["status"], status["attempts"]) == ("AWAITING_CALLBACK", 1)
    assert len(subscriber.received) == 1
