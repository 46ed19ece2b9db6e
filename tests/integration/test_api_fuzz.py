"""Schemathesis fuzzes the running gateway against openapi/openapi.yaml.

Every operation of the document gets a bounded, deterministic set of generated requests
(valid and invalid ones), sent over real HTTP to one gateway in each mode: embedded (SQLite)
and distributed (PostgreSQL, Redis and a worker), whose database meets the same fuzzed
filters, offsets and ids with its own types and errors. No response may be a 5xx, and each
must agree with the document: a documented status code, content type, headers and body
schema, plus Schemathesis's other default checks.

Random ids only ever reach 404s, so about half of the cases that name a trigger, a
subscription, an invocation or an API client get a real one instead, seeded (and seeded
again when a fuzzed DELETE or PUT took it away): the 200, 204 and 409 answers are fuzzed too.
The document's paths are fuzzed at the root; /beta serves the same routes.
"""

from __future__ import annotations

import asyncio
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.config import SchemathesisConfig

from gateway.api.invocations import MAX_WAIT_SECONDS
from tests.conftest import CLIENT_ID, CLIENT_SECRET, MODES, open_store, start_gateway
from tests.servers import Subscriber, answer, serve
from tests.services import require_services

DOCUMENT = Path(__file__).resolve().parents[2] / "openapi" / "openapi.yaml"
EXAMPLES_PER_OPERATION = 15
SHORT_WAIT = 0.1

CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {
            "max-examples": EXAMPLES_PER_OPERATION,
            # Derandomized, without an example database: every run sends the same requests.
            "deterministic": True,
            # Requests carry a real admin token; ignored_auth checks what happens without one.
            "with-security-parameters": False,
        },
        "checks": {
            # Schema-valid is not valid here: filters and sorters are a query language, a
            # responseDeadline an ISO-8601 duration, a JSON Patch must apply, a trigger's examples
            # must match its schemas, a subscriber URL must resolve to a public address... JSON
            # Schema cannot say all that, so such requests get a documented 400 by design.
            # Every other default check stays on.
            "positive_data_acceptance": {"enabled": False},
            # Schemathesis's own list, plus 431: a negative case with a very long filters is
            # refused by the server before the API sees it (documented on every operation).
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 415, 422, 428, 429, 431, "5xx"]
            },
        },
        "phases": {
            # Hundreds of boundary cases per operation; the fuzzing phase, negative cases
            # included, reaches the same code within the budget.
            "coverage": {"enabled": False},
            # Not run by pytest's per-operation tests anyway.
            "stateful": {"enabled": False},
        },
    }
)
schema = schemathesis.openapi.from_path(DOCUMENT, config=CONFIG)

TRIGGER: dict[str, Any] = {
    "id": "fuzz:approver",
    "name": "Fuzzed approver",
    "type": "REQUEST_RESPONSE",
    "outputSchema": {"type": "object"},
}
CLIENT: dict[str, Any] = {"clientId": "fuzz-client", "scopes": ["invocations:read"]}


class Seeds:
    """Real resources to aim fuzzed requests at, put back whenever they are gone or changed."""

    def __init__(self, url: str, subscriber_url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)
        token = self.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        )
        assert token.status_code == 200, token.text
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        self.http.headers.update(self.headers)
        self.subscription_body: dict[str, Any] = {
            "triggerId": TRIGGER["id"],
            "name": "Fuzzed subscription",
            "httpConfig": {"url": subscriber_url, "httpDispatchMode": "ASYNC"},
        }
        self.subscription_id = ""
        self.invocation_id = ""
        self.secret = ""

    def trigger(self) -> str:
        """The trigger, as defined here: fuzzed PUTs may have changed it."""
        response = self.http.put(f"/triggers/{TRIGGER['id']}", json=TRIGGER)
        if response.status_code == 404:
            response = self.http.post("/triggers", json=TRIGGER)
        assert response.status_code in (200, 201), response.text
        return str(TRIGGER["id"])

    def subscription(self) -> str:
        self.trigger()
        if self.subscription_id:
            path = f"/trigger-subscriptions/{self.subscription_id}"
            response = self.http.put(path, json=self.subscription_body)
            if response.status_code == 200:
                return self.subscription_id
            assert response.status_code == 404, response.text
        response = self.http.post("/trigger-subscriptions", json=self.subscription_body)
        assert response.status_code == 201, response.text
        self.subscription_id = response.json()["id"]
        return self.subscription_id

    def invocation(self) -> str:
        """An invocation awaiting its callback, so that a real secret can complete it."""
        if self.invocation_id and self._status(self.invocation_id) == "AWAITING_CALLBACK":
            return self.invocation_id
        self.subscription()
        response = self.http.post(
            "/trigger-invocations/start", json={"triggerId": TRIGGER["id"], "input": {"fuzz": True}}
        )
        assert response.status_code == 200, response.text
        (invocation,) = response.json()
        self.invocation_id, self.secret = invocation["id"], invocation["secret"]
        deadline = time.monotonic() + 10
        while self._status(self.invocation_id) != "AWAITING_CALLBACK":
            assert time.monotonic() < deadline, "the seeded invocation was not delivered"
            time.sleep(0.02)
        return self.invocation_id

    def _status(self, invocation_id: str) -> str:
        response = self.http.get(f"/trigger-invocations/{invocation_id}/status")
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    def client(self) -> str:
        if self.http.get(f"/api-clients/{CLIENT['clientId']}").status_code == 404:
            response = self.http.post("/api-clients", json=CLIENT)
            assert response.status_code == 201, response.text
        return str(CLIENT["clientId"])

    def real_id(self, path: str, generated: object) -> str | None:
        if path.startswith("/triggers/"):
            if heads((generated, "subscribed")):
                self.subscription()  # so that DELETE meets a 409 too
            return self.trigger()
        if path.startswith("/trigger-subscriptions/{id}"):
            return self.subscription()
        if path.startswith("/trigger-invocations/{id}"):
            return self.invocation()
        if path.startswith("/api-clients/{id}"):
            return self.client()
        return None


@pytest.fixture(scope="module", params=MODES)
def seeds(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeds]:
    """A gateway and a subscriber that acknowledges every delivery, both in a thread with an
    event loop of its own: Schemathesis calls synchronously from the test's thread."""
    mode = request.param
    if mode == "distributed":
        asyncio.run(require_services())  # skips (or fails) here, not in the thread
    started = threading.Event()
    running: dict[str, Any] = {}

    async def run() -> None:
        stop = asyncio.Event()
        running["stop"] = (asyncio.get_running_loop(), stop)
        subscriber = Subscriber()
        try:
            async with (
                open_store(mode, tmp_path_factory.mktemp("fuzz")) as store,
                serve(subscriber.app()) as url,
            ):
                subscriber.url = url
                async with start_gateway(
                    store,
                    # Fuzzed wrong secrets must not turn into 429s halfway through the run.
                    callback_failure_limit=0,
                    callback_invocation_failure_limit=0,
                    token_failure_limit=0,
                    token_client_failure_limit=0,
                    token_address_failure_limit=0,
                ) as client:
                    running["url"] = str(client.http.base_url).rstrip("/")
                    running["subscriber"] = subscriber.endpoint("ack", answer(200, {}))
                    started.set()
                    await stop.wait()
        except BaseException as exc:
            running["error"] = exc
            raise
        finally:
            started.set()

    thread = threading.Thread(target=asyncio.run, args=(run(),), name="fuzzed-gateway", daemon=True)
    thread.start()
    started.wait(60)
    if "url" not in running:
        raise RuntimeError(f"the gateway did not start: {running.get('error')!r}")
    seeded = Seeds(running["url"], running["subscriber"])
    try:
        yield seeded
    finally:
        seeded.http.close()
        loop, stop = running["stop"]
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)


def heads(value: object) -> bool:
    """Heads or tails, decided by the generated value: as deterministic as the generation."""
    return zlib.crc32(repr(value).encode()) % 2 == 1


@schema.parametrize()
def test_api_matches_its_document(seeds: Seeds, case: Case[Any]) -> None:
    # Every edit below assigns rather than changes in place: Schemathesis then re-checks
    # whether the case is still negative, so the negative-data check judges what is sent.
    path = case.operation.path
    generated_id = (case.path_parameters or {}).get("id")
    real = seeds.real_id(path, generated_id) if generated_id is not None and heads(generated_id) else None
    if real is not None:
        case.path_parameters = {**case.path_parameters, "id": real}
        if path.endswith("/complete") and isinstance(case.body, dict):
            case.body = {**case.body, "secret": seeds.secret}
        wait = (case.query or {}).get("waitSeconds")
        if isinstance(wait, int | float) and SHORT_WAIT < wait <= MAX_WAIT_SECONDS:
            # Nobody completes the seeded invocation: a valid long-poll would wait it all out.
            case.query = {**case.query, "waitSeconds": SHORT_WAIT}
    starts = ("/trigger-invocations/start", "/trigger-invocations/test")
    if path in starts and isinstance(case.body, dict) and heads(case.body):
        case.body = {**case.body, "triggerId": seeds.trigger()}
    case.call_and_validate(base_url=seeds.url, headers=seeds.headers, timeout=30)
