"""Abuse limits over real HTTP: lockouts after wrong secrets, and each API client's rate.

Every limit here is set low and its window short; the defaults are in gateway/settings.py.
Addresses other than loopback come from X-Forwarded-For, which uvicorn trusts from
127.0.0.1 as it would from a proxy in front of the gateway.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import CLIENT_ID, CLIENT_SECRET, open_store, start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer
from tests.services import Store

WINDOW = 6.0  # long enough for a storm to land inside one window on a loaded machine (3 s was
# not, with two CPU hogs beside the suite), short enough to wait out
OUTPUT = {"approver": "ada"}
FORM = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


def assert_limited(response: httpx.Response, at_most: float) -> int:
    """A 429 in the API's error format that says when to retry; returns Retry-After."""
    assert response.status_code == 429, response.text
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= math.ceil(at_most)
    body = response.json()
    assert body["detailCode"] == "429 Too Many Requests"
    assert body["trackingId"] == response.headers["x-tracking-id"]
    assert f"try again in {seconds} s" in body["messages"][0]["text"]
    return seconds


def callback_url(gateway: GatewayClient, invocation_id: str) -> str:
    return f"{gateway.settings.public_url}/beta/trigger-invocations/{invocation_id}/complete"


async def awaiting_callbacks(
    gateway: GatewayClient, subscriber: Subscriber, count: int
) -> list[dict[str, Any]]:
    await gateway.create_trigger()
    await gateway.subscribe("test:approver", subscriber.endpoint("ack", answer(200, {})), "ASYNC")
    created = [inv for _ in range(count) for inv in await gateway.start("test:approver", {})]
    for invocation in created:
        await gateway.reach(invocation["id"], "AWAITING_CALLBACK")
    return created


async def test_wrong_secret_storm_locks_that_callback_until_the_window_passes(
    store: Store, subscriber: Subscriber
) -> None:
    async with (
        start_gateway(store, callback_failure_limit=5, failure_window=WINDOW) as gateway,
        httpx.AsyncClient(timeout=30) as anonymous,
    ):
        target, other = await awaiting_callbacks(gateway, subscriber, 2)
        url = callback_url(gateway, target["id"])
        storm = await asyncio.gather(
            *(anonymous.post(url, json={"secret": f"guess-{i}", "output": OUTPUT}) for i in range(50))
        )
        assert Counter(r.status_code for r in storm) == {403: 5, 429: 45}
        for response in storm:
            if response.status_code == 429:
                assert_limited(response, WINDOW)
        # Locked for this address: even the right secret is refused, without being checked.
        right = {"secret": target["secret"], "output": OUTPUT}
        wait = assert_limited(await anonymous.post(url, json=right), WINDOW)
        assert (await gateway.status(target["id"]))["status"] == "AWAITING_CALLBACK"
        # Another invocation's callback is not affected.
        unaffected = await anonymous.post(
            callback_url(gateway, other["id"]), json={"secret": other["secret"], "output": OUTPUT}
        )
        assert unaffected.status_code == 204, unaffected.text
        # Nor is the real subscriber, calling from elsewhere.
        elsewhere = {"X-Forwarded-For": "10.7.7.7"}
        completed = await anonymous.post(url, json=right, headers=elsewhere)
        assert completed.status_code == 204, completed.text
        await asyncio.sleep(wait)
        # After the window, this address's callback is checked again (the same one: accepted).
        assert (await anonymous.post(url, json=right)).status_code == 204
        status = await gateway.status(target["id"])
    assert status["status"] == "COMPLETED"
    assert status["completeInvocationInput"]["output"] == OUTPUT


async def test_token_storms_lock_the_address_and_the_client_id_until_the_window_passes(store: Store) -> None:
    async with (
        start_gateway(
            store,
            token_failure_limit=3,
            token_client_failure_limit=8,
            token_address_failure_limit=6,
            failure_window=WINDOW,
        ) as gateway,
        httpx.AsyncClient(base_url=str(gateway.http.base_url), timeout=30) as http,
    ):

        async def token(form: dict[str, str], address: str) -> httpx.Response:
            return await http.post("/oauth/token", data=form, headers={"X-Forwarded-For": address})

        def assert_slow_down(response: httpx.Response) -> int:
            seconds = assert_limited(response, WINDOW)
            assert response.json()["error"] == "slow_down"
            assert response.json()["error_description"]
            assert response.headers["cache-control"] == "no-store"
            return seconds

        # Guesses at many client ids from one address: the address is locked.
        guesses = [{**FORM, "client_id": f"nobody-{i}", "client_secret": "guess"} for i in range(20)]
        storm = await asyncio.gather(*(token(form, "10.9.9.9") for form in guesses))
        assert Counter(r.status_code for r in storm) == {401: 6, 429: 14}
        waits = [assert_slow_down(r) for r in storm if r.status_code == 429]
        waits.append(assert_slow_down(await token(FORM, "10.9.9.9")))  # even the right secret
        assert (await token(FORM, "10.1.1.1")).status_code == 200  # other addresses are not

        # Guesses at one client id from one IPv6 /64, an address at a time: that client id is
        # locked for that /64 only, and its owner elsewhere is not.
        guesses = [{**FORM, "client_secret": f"guess-{i}"} for i in range(5)]
        storm = [await token(form, f"2001:db8:1:2::{i + 1:x}") for i, form in enumerate(guesses)]
        assert [r.status_code for r in storm] == [401, 401, 401, 429, 429]
        waits.append(assert_slow_down(await token(FORM, "2001:db8:1:2:ffff::1")))
        assert (await token(FORM, "10.1.1.1")).status_code == 200

        # Guesses at one client id from many addresses: past its much higher ceiling, it is
        # locked everywhere (3 failures so far count towards its 8).
        guesses = [{**FORM, "client_secret": f"guess-{i}"} for i in range(20)]
        storm = await asyncio.gather(*(token(form, f"10.0.0.{i}") for i, form in enumerate(guesses)))
        assert Counter(r.status_code for r in storm) == {401: 5, 429: 15}
        waits += [assert_slow_down(r) for r in storm if r.status_code == 429]
        waits.append(assert_slow_down(await token(FORM, "10.2.2.2")))

        await asyncio.sleep(max(waits))
        assert (await token(FORM, "10.9.9.9")).status_code == 200


async def test_a_client_over_its_rate_gets_429_until_its_budget_refills(store: Store) -> None:
    async with start_gateway(store, rate_limit=1, rate_burst=10) as gateway:
        storm = await asyncio.gather(*(gateway.http.get("/beta/triggers") for _ in range(30)))
        statuses = Counter(r.status_code for r in storm)
        assert 10 <= statuses[200] <= 12 and statuses[200] + statuses[429] == 30, statuses
        limited = [r for r in storm if r.status_code == 429]
        waits = [assert_limited(r, 1.0) for r in limited]
        assert "over its rate limit (1 requests/s, bursts of 10)" in limited[0].json()["messages"][0]["text"]
        async with httpx.AsyncClient(base_url=str(gateway.http.base_url)) as anonymous:
            # Only requests with a token count: the others are refused or served as before.
            assert (await anonymous.get("/beta/triggers")).status_code == 401
            assert (await anonymous.get("/health")).status_code == 200
        await asyncio.sleep(max(waits))
        assert (await gateway.http.get("/beta/triggers")).status_code == 200


async def test_api_processes_share_one_budget(tmp_path: Path) -> None:
    async with (
        open_store("distributed", tmp_path) as store,
        start_gateway(store, worker=False, rate_limit=0.5, rate_burst=6) as a,
        start_gateway(store, worker=False, rate_limit=0.5, rate_burst=6) as b,
    ):
        served = [(await (a, b)[i % 2].http.get("/beta/triggers")).status_code for i in range(6)]
        assert served == [200] * 6
        assert_limited(await a.http.get("/beta/triggers"), 2.0)
        assert_limited(await b.http.get("/beta/triggers"), 2.0)
