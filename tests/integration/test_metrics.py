"""GET /metrics over HTTP in both modes: after a known set of starts, deliveries and
callbacks, the counts parsed with prometheus_client's own parser are those. Distributed,
deliveries are counted by the worker, on its --metrics-port (GATEWAY_WORKER_METRICS_PORT),
and the test adds the two processes' figures as Prometheus would."""

from __future__ import annotations

import socket
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer
from tests.services import Store

Samples = defaultdict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def parsed(text: str) -> Samples:
    samples: Samples = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] += sample.value
    return samples


async def scrape(gateway: GatewayClient, worker_port: int | None) -> tuple[Samples, str]:
    """Every process's metrics, summed; and their text."""
    response = await gateway.http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    texts = [response.text]
    if worker_port is not None:
        async with httpx.AsyncClient() as http:
            texts.append((await http.get(f"http://127.0.0.1:{worker_port}/metrics")).text)
    total: Samples = defaultdict(float)
    for text in texts:
        for key, figure in parsed(text).items():
            total[key] += figure
    return total, "\n".join(texts)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_what_happened(store: Store, subscriber: Subscriber) -> None:
    worker_port = free_port() if store.mode == "distributed" else None
    async with start_gateway(store, worker_metrics_port=worker_port or 0) as gateway:
        assert (await httpx.AsyncClient().get(f"{gateway.settings.public_url}/metrics")).status_code == 401
        before, _ = await scrape(gateway, worker_port)
        run = uuid.uuid4().hex[:8]  # this test's own label values
        sync, notify, approve = f"m:sync-{run}", f"m:notify-{run}", f"m:approve-{run}"
        await gateway.create_trigger(sync)
        await gateway.subscribe(sync, subscriber.endpoint(f"s{run}", answer(200, {"ok": True})))
        await gateway.create_trigger(notify, type="FIRE_AND_FORGET")
        await gateway.subscribe(notify, subscriber.endpoint(f"n{run}", answer(400, {})))  # not retried
        await gateway.create_trigger(approve)
        await gateway.subscribe(approve, subscriber.endpoint(f"a{run}", answer(200, {})), "ASYNC")

        started = [i["id"] for t in (sync, sync, notify) for i in await gateway.start(t, {})]
        assert [(await gateway.final_status(i))["status"] for i in started] == ["COMPLETED"] * 2 + ["FAILED"]
        [awaited] = await gateway.start(approve, {})
        await gateway.reach(awaited["id"], "AWAITING_CALLBACK")
        meta = subscriber.received[-1].body["_metadata"]
        callback = meta["callbackURL"]
        wrong = await gateway.complete(callback, {"secret": "x" * 40, "output": {}})
        right = await gateway.complete(callback, {"secret": meta["secret"], "output": {"a": 1}})
        other = await gateway.complete(callback, {"secret": meta["secret"], "output": {"a": 2}})
        assert (wrong.status_code, right.status_code, other.status_code) == (403, 204, 409)

        after, text = await scrape(gateway, worker_port)

    started_total, finished_total = "gateway_invocations_started_total", "gateway_invocations_finished_total"
    assert value(after, started_total, trigger=sync, mode="SYNC") == 2
    assert value(after, finished_total, trigger=sync, mode="SYNC", outcome="completed") == 2
    assert value(after, started_total, trigger=notify, mode="SYNC") == 1
    assert value(after, finished_total, trigger=notify, mode="SYNC", outcome="failed") == 1
    assert value(after, started_total, trigger=approve, mode="ASYNC") == 1
    assert value(after, finished_total, trigger=approve, mode="ASYNC", outcome="completed") == 1
    durations = "gateway_delivery_duration_seconds_count"
    assert value(after, durations, trigger=sync, mode="SYNC", result="completed") == 2
    assert value(after, durations, trigger=notify, mode="SYNC", result="failed") == 1
    assert value(after, durations, trigger=approve, mode="ASYNC", result="acknowledged") == 1
    for result, count in (("accepted", 1), ("wrong_secret", 1), ("conflict", 1), ("late", 0)):
        name = "gateway_callbacks_total"
        assert value(after, name, result=result) - value(before, name, result=result) == count, result
    # Nothing waits now; the backlog is the API's alone (a worker's would add up wrongly).
    for gauge in ("gateway_queue_depth", "gateway_queue_oldest_seconds", "gateway_awaiting_callback"):
        assert value(after, gauge) == 0
        assert text.count(f"\n{gauge} ") == 1, gauge
    assert value(after, "gateway_deliveries_in_flight") == 0
    # No label carries an id, a secret or a URL.
    for secret in [*started, awaited["id"], meta["secret"], subscriber.url, "http://"]:
        assert secret not in text


async def test_metrics_need_no_token_when_public(tmp_path: Path) -> None:
    async with start_gateway(tmp_path, metrics_public=True) as gateway:
        response = await httpx.AsyncClient().get(f"{gateway.settings.public_url}/metrics")
        assert response.status_code == 200
        assert "gateway_queue_depth" in response.text
