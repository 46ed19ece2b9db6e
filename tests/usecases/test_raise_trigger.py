"""How invocations are raised (usecases/raise_trigger.py): sources, manual runs, tenants,
trigger options and the loop guard's chains, against real subscribers."""

from __future__ import annotations

import pytest

from gateway.domain.errors import Conflict, Invalid, NotFound
from gateway.domain.model import Subscription, Trigger
from tests.servers import Subscriber, answer
from tests.usecases.conftest import OpenDriver
from tests.usecases.driver import Driver

FIRE_AND_FORGET = {"type": "FIRE_AND_FORGET"}


async def test_an_api_start_is_of_source_api_and_says_so_in_metadata_and_status(
    app: Driver, subscriber: Subscriber
) -> None:
    await app.create_trigger("t:src")
    await app.subscribe("t:src", subscriber.endpoint("sync", answer(200, {"ok": True})))
    [inv] = await app.start("t:src", {"a": 1})
    status = await app.final_status(inv["id"])
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
    app: Driver, subscriber: Subscriber
) -> None:
    await app.create_trigger("t:manual", **FIRE_AND_FORGET)
    sub = await app.subscribe("t:manual", subscriber.endpoint("ff", answer(200, {})))
    [api_inv] = await app.start("t:manual", {"from": "api"})
    manual = await app.run(sub["id"], payload={"cursor": 7}, tenantId="acme")
    status = await app.final_status(manual["id"])
    assert (status["source"], status["tenantId"], status["status"]) == ("manual", "acme", "COMPLETED")
    bodies = {r.body["_metadata"]["invocationId"]: r.body for r in await subscriber.wait_for(2)}
    assert bodies[manual["id"]]["cursor"] == 7
    assert bodies[manual["id"]]["_metadata"]["source"] == "manual"
    assert bodies[manual["id"]]["_metadata"]["tenantId"] == "acme"
    bare = await app.run(sub["id"])  # the button itself, without a body
    assert {s["id"] for s in await app.statuses(filters='source eq "manual"')} == {manual["id"], bare["id"]}
    assert [s["id"] for s in await app.statuses(filters='source in ("api","webhook")')] == [api_inv["id"]]


async def test_manual_runs_of_unknown_or_disabled_subscriptions_are_refused(
    app: Driver, subscriber: Subscriber
) -> None:
    await app.create_trigger("t:off")
    sub = await app.subscribe("t:off", subscriber.endpoint("s", answer(200, {})), enabled=False)
    with pytest.raises(Conflict, match="enable"):
        await app.run(sub["id"])
    with pytest.raises(NotFound):
        await app.run("nope")


async def test_trigger_options_select_subscriptions_with_any_as_the_default(
    app: Driver, subscriber: Subscriber
) -> None:
    await app.create_trigger("t:opts", options=["SERVER", "DISK"], **FIRE_AND_FORGET)
    any_sub = await app.subscribe("t:opts", subscriber.endpoint("any", answer(200, {})))
    server = await app.subscribe("t:opts", subscriber.endpoint("server", answer(200, {})), options=["SERVER"])
    assert any_sub["options"] == ["ANY"]
    assert server["options"] == ["SERVER"]

    by_server = await app.start("t:opts", {"n": 1}, option="SERVER")
    by_disk = await app.start("t:opts", {"n": 2}, option="DISK")
    none_named = await app.start("t:opts", {"n": 3})
    assert len(by_server) == 2 and len(by_disk) == 1 and len(none_named) == 1
    status = await app.final_status(by_disk[0]["id"])
    assert (status["subscriptionId"], status["option"]) == (any_sub["id"], "DISK")

    with pytest.raises(Invalid, match="SERVER, DISK"):
        await app.start("t:opts", {}, option="NET")
    with pytest.raises(Invalid, match="NET"):
        await app.subscribe("t:opts", any_sub["httpConfig"]["url"], options=["NET"])
    # An option in use cannot be taken away from the trigger.
    with pytest.raises(Conflict):
        await app.replace_trigger("t:opts", name="Opts", type="FIRE_AND_FORGET", options=["DISK"])


async def test_the_tenant_comes_from_start_or_from_the_triggers_path(
    app: Driver, subscriber: Subscriber
) -> None:
    await app.create_trigger("t:tenant", tenantIdPath="$.org")
    await app.subscribe("t:tenant", subscriber.endpoint("sync", answer(200, {})))
    [from_path] = await app.start("t:tenant", {"org": "acme"})
    [given] = await app.start("t:tenant", {"org": "acme"}, tenantId="globex")
    [numeric] = await app.start("t:tenant", {"org": 42})
    [without] = await app.start("t:tenant", {"other": 1})
    tenants = [(await app.final_status(i["id"]))["tenantId"] for i in (from_path, given, numeric, without)]
    assert tenants == ["acme", "globex", "42", None]
    with pytest.raises(Invalid, match="string or an integer"):
        await app.start("t:tenant", {"org": {"id": 1}})
    with pytest.raises(Invalid, match="tenantIdPath"):
        await app.create_trigger("t:bad", type="FIRE_AND_FORGET", tenantIdPath="$[?(")
    assert [s["id"] for s in await app.statuses(filters='tenantId eq "acme"')] == [from_path["id"]]


async def test_a_bounded_depth_lets_chains_run_that_deep(
    open_driver: OpenDriver, subscriber: Subscriber
) -> None:
    async with open_driver(max_trigger_depth=1) as app:
        await app.create_trigger("t:depth", **FIRE_AND_FORGET)
        await app.subscribe("t:depth", subscriber.endpoint("ff", answer(200, {})))
        [first] = await app.start("t:depth", {})
        [second] = await app.start("t:depth", {}, caused_by=first["id"])
        assert (await app.final_status(second["id"]))["status"] == "COMPLETED"
        [third] = await app.start("t:depth", {}, caused_by=second["id"])
        status = await app.final_status(third["id"])
        assert status["status"] == "SUPPRESSED"
        assert status["chain"] == [first["id"], second["id"]]


async def test_a_filter_or_tenant_path_saved_before_re2_fails_only_what_it_must(
    app: Driver, subscriber: Subscriber, caplog: pytest.LogCaptureFixture
) -> None:
    """Python's re took lookarounds, RE2 does not: such rows may be in the database."""
    await app.create_trigger("t:old", **FIRE_AND_FORGET)
    kept = await app.subscribe("t:old", subscriber.endpoint("kept", answer(204, None)), name="kept")
    stale = await app.subscribe("t:old", subscriber.endpoint("stale", answer(204, None)), name="stale")
    await app.alter(Subscription, stale["id"], filter="$[?(@.name =~ /(?=a)a/)]")
    [invocation] = await app.start("t:old", {"name": "a"})  # the other subscription still gets it
    assert (await app.status(invocation["id"]))["subscriptionId"] == kept["id"]
    assert any(stale["id"] in r.message and "cannot run" in r.message for r in caplog.records)

    await app.alter(Trigger, "t:old", tenant_id_path="$[?match(@.name, '(?=a)a')].name")
    with pytest.raises(Invalid) as refused:
        await app.start("t:old", {"name": "a"})
    assert "tenantIdPath" in refused.value.message and "PUT /triggers/t:old" in refused.value.message


async def test_a_subscription_the_cached_catalog_lacks_is_read_again_before_a_refusal(
    app: Driver, subscriber: Subscriber
) -> None:
    """Another process's new subscription may not have reached this one's cache yet (its
    Redis message lost): naming it reads the catalog again instead of refusing it."""
    await app.create_trigger("t:cached", type="FIRE_AND_FORGET")
    first = await app.subscribe("t:cached", subscriber.endpoint("first", answer(204, None)))
    await app.start("t:cached", {})  # the trigger and its one subscription are cached now
    async with app.rt.sessions() as session:  # as another process would, announcing nothing
        stored = await session.get(Subscription, first["id"])
        assert stored is not None
        copy = Subscription.model_validate({**stored.model_dump(), "id": "not-announced", "name": "second"})
        session.add(copy)
        await session.commit()
    [created] = await app.test("t:cached", input={}, subscriptionIds=["not-announced"])
    status = await app.final_status(created["id"])
    assert (status["subscriptionId"], status["status"]) == ("not-announced", "COMPLETED")
