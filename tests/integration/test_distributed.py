"""What only the distributed mode has: several processes, Redis that can lose everything."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from gateway.adapters.database import engine as db
from gateway.adapters.notifier.redis import RedisNotifier
from gateway.adapters.queue import DispatchJob
from gateway.adapters.queue import redis as arq_queue
from tests.conftest import make_settings, open_store, settings_env, start_gateway, worker_process
from tests.servers import Subscriber, answer, hang
from tests.services import Store


@pytest.fixture
async def shared(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store("distributed", tmp_path) as store:
        yield store


async def flush_queue(store: Store) -> int:
    """What a Redis restart with an empty memory does to this gateway's keys."""
    redis = Redis.from_url(store.redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{store.queue_name}*")]
        keys += [key async for key in redis.scan_iter(match="arq:*")]
        return int(await redis.delete(*keys)) if keys else 0
    finally:
        await redis.aclose()


async def test_callback_to_one_api_process_wakes_a_long_poll_in_another(
    shared: Store, subscriber: Subscriber
) -> None:
    async with start_gateway(shared) as a, start_gateway(shared, worker=False) as b:
        await a.create_trigger()
        await a.subscribe("test:approver", subscriber.endpoint("ack", answer(200, {})), "ASYNC")
        [invocation] = await a.start("test:approver", {})
        [received] = await subscriber.wait_for(1)
        meta = received.body["_metadata"]
        poll = asyncio.create_task(b.status(invocation["id"], wait=20))
        await asyncio.sleep(0.3)  # time for B to start waiting
        assert not poll.done()
        response = await a.complete(meta["callbackURL"], {"secret": meta["secret"], "output": {"ok": 1}})
        assert response.status_code == 204
        called_back = time.monotonic()
        status = await poll
        woke_after = time.monotonic() - called_back
    assert status["status"] == "COMPLETED"
    # Woken through Redis at once, give or take a busy machine's scheduling; not by its own
    # 20 s limit.
    assert woke_after < 1.5, f"B woke {woke_after:.2f} s after A took the callback"


async def test_a_subscription_changed_through_one_process_is_seen_by_every_other_at_once(
    shared: Store, subscriber: Subscriber
) -> None:
    """Each process caches the catalog (usecases/catalog.py): a change announced over Redis
    reaches B's cache, which starts, and the worker's, which delivers, before the next start."""
    async with start_gateway(shared) as a, start_gateway(shared, worker=False) as b:
        await a.create_trigger("t:moved", type="FIRE_AND_FORGET")
        sub = await a.subscribe("t:moved", subscriber.endpoint("before", answer(204, None)))
        [first] = await b.start("t:moved", {})
        assert (await b.final_status(first["id"]))["status"] == "COMPLETED"  # cached by both now
        moved = [
            {
                "op": "replace",
                "path": "/httpConfig/url",
                "value": subscriber.endpoint("after", answer(204, None)),
            }
        ]
        changed = await a.http.patch(f"/beta/trigger-subscriptions/{sub['id']}", json=moved)
        assert changed.status_code == 200, changed.text
        [second] = await b.start("t:moved", {})
        assert (await b.final_status(second["id"]))["status"] == "COMPLETED"
        disabled = await a.http.patch(
            f"/beta/trigger-subscriptions/{sub['id']}",
            json=[{"op": "replace", "path": "/enabled", "value": False}],
        )
        assert disabled.status_code == 200, disabled.text
        assert (
            await b.http.post("/beta/trigger-invocations/start", json={"triggerId": "t:moved", "input": {}})
        ).status_code == 204
    assert [r.path for r in subscriber.received] == ["/before", "/after"]


async def test_deliveries_lost_with_redis_are_recovered_by_the_sweep(
    shared: Store, subscriber: Subscriber
) -> None:
    async with start_gateway(shared, worker=False, requeue_after=0.5) as api:
        await api.create_trigger("test:fanout", type="FIRE_AND_FORGET")
        await api.subscribe("test:fanout", subscriber.endpoint("f", answer(200, {})))
        invocations = [(await api.start("test:fanout", {"n": n}))[0] for n in range(5)]
        assert await flush_queue(shared) > 0  # the queued jobs are gone
        assert subscriber.received == []
        async with worker_process(api.settings):  # only the database knows about them now
            for invocation in invocations:
                assert (await api.final_status(invocation["id"], within=15))["status"] == "COMPLETED"
    assert sorted(r.body["n"] for r in subscriber.received) == list(range(5))


async def test_deadline_jobs_lost_with_redis_still_expire(shared: Store, subscriber: Subscriber) -> None:
    async with start_gateway(shared) as gateway:
        await gateway.create_trigger()
        url = subscriber.endpoint("ack", answer(200, {}))
        await gateway.subscribe("test:approver", url, "ASYNC", responseDeadline="PT2S")
        [invocation] = await gateway.start("test:approver", {})
        await gateway.reach(invocation["id"], "AWAITING_CALLBACK")  # its expiry job is queued
        await flush_queue(shared)  # the deferred expiry job is gone
        status = await gateway.status(invocation["id"], wait=5)
    assert status["status"] == "EXPIRED"


async def gateway_command(store: Store, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, **settings_env(make_settings(store, "http://127.0.0.1:1"))}
    command = [sys.executable, "-m", "gateway.cli", *args]
    return await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, timeout=60)


async def test_worker_check_reports_health_in_one_line(shared: Store) -> None:
    none = await gateway_command(shared, "worker", "--check")
    assert none.returncode == 1
    assert none.stderr.decode().splitlines() == [
        f"gateway: no worker has reported on queue {shared.queue_name!r} in the last 6 s"
    ]
    async with worker_process(make_settings(shared, "http://127.0.0.1:1")):
        healthy = await gateway_command(shared, "worker", "--check")
        assert healthy.returncode == 0
        [line] = healthy.stdout.decode().splitlines()
        assert line.startswith(f"gateway: a worker is healthy on queue {shared.queue_name!r}")
    unreachable = dataclasses.replace(shared, redis_url="redis://127.0.0.1:1/0")
    gone = await gateway_command(unreachable, "worker", "--check")
    assert gone.returncode == 1
    assert gone.stderr.decode().splitlines() == [
        "gateway: Redis does not answer (ConnectionError); no worker can be seen"
    ]


async def test_server_database_must_be_migrated_first(shared: Store) -> None:
    engine = db.create_engine(shared.database_url)
    async with engine.begin() as conn:  # an empty database, as a new server gives
        await conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        await conn.exec_driver_sql("CREATE SCHEMA public")
    await engine.dispose()
    refused = await gateway_command(shared, "worker")
    assert refused.returncode != 0
    assert b"run `gateway migrate` first" in refused.stderr
    assert (await gateway_command(shared, "migrate")).returncode == 0
    async with worker_process(make_settings(shared, "http://127.0.0.1:1")):
        assert (await gateway_command(shared, "worker", "--check")).returncode == 0


async def test_delivery_cut_off_by_a_killed_worker_is_retried_promptly(
    shared: Store, subscriber: Subscriber
) -> None:
    """kill -9 mid-delivery: the sweep re-queues it after the time limit plus a grace, and a
    new job id means the dead worker's locked job does not hold it back for arq's timeout."""
    async with start_gateway(shared, worker=False, stranded_grace=1.0) as api:
        await api.create_trigger()
        await api.subscribe("test:approver", subscriber.endpoint("slow", hang(1.5)), "SYNC")
        async with worker_process(api.settings) as doomed:
            assert doomed is not None
            [invocation] = await api.start("test:approver", {})
            await subscriber.wait_for(1)
            doomed.kill()  # SIGKILL while the subscriber is still answering
        killed_at = time.monotonic()
        async with worker_process(api.settings):
            status = await api.final_status(invocation["id"], within=30)
        recovered_after = time.monotonic() - killed_at
    assert status["status"] == "COMPLETED"
    assert status["attempts"] == 2
    assert [r.body["_metadata"]["invocationId"] for r in subscriber.received] == [invocation["id"]] * 2
    # 2 s time limit + 1 s grace + one sweep, not arq's 32 s job timeout + 10 s.
    assert recovered_after < 12, f"recovered {recovered_after:.1f} s after the kill"


async def test_queueing_a_delivery_tells_the_workers_to_look_at_once(shared: Store) -> None:
    """The worker polls its queue only every IDLE_POLL when nothing says there is work: the
    queue's message is what makes a delivery start at once."""
    redis = await arq_queue.connect(shared.redis_url, shared.queue_name)
    worker_side = RedisNotifier(redis, "unused", arq_queue.work_channel(shared.queue_name))
    api_side = RedisNotifier(redis, "unused")  # an API process does not listen for work
    told, api_told = asyncio.Event(), asyncio.Event()
    worker_side.on_work_queued(told.set)
    api_side.on_work_queued(api_told.set)
    await worker_side.start()
    await api_side.start()
    try:
        await asyncio.wait_for(told.wait(), 5)  # at subscription: it may have missed some
        told.clear()
        await arq_queue.ArqQueue(redis, shared.queue_name).enqueue([DispatchJob("inv-1")])
        await asyncio.wait_for(told.wait(), 5)
        assert not api_told.is_set()
    finally:
        await worker_side.stop()
        await api_side.stop()
        await redis.aclose()
