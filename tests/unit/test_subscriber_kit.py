"""The subscriber kit on its own: importable without the server's dependencies, signatures
checked as Standard Webhooks do, deliveries parsed, callbacks retried only when no answer came.
tests/integration/test_subscriber_examples.py runs it against a real gateway."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.domain import signing
from gateway.subscriber import (
    LATER,
    CallbackError,
    Delivery,
    InvalidDelivery,
    SignatureError,
    callbacks,
    complete,
    fail,
    heartbeat,
    parse,
    subscriber_app,
    verify,
)

BLOCKED = ("sqlalchemy", "sqlmodel", "arq", "asyncpg", "aiosqlite", "redis", "pydantic", "alembic")
IMPORT_BLOCKED = f"""
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError("the subscriber kit must not import " + name)
sys.meta_path.insert(0, Refuse())
import json, gateway.subscriber, gateway.subscriber.serving
print(json.dumps(sorted(m for m in sys.modules if m.startswith("gateway"))))
"""


def test_the_kit_imports_without_the_servers_dependencies() -> None:
    done = subprocess.run([sys.executable, "-c", IMPORT_BLOCKED], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    outside = [m for m in json.loads(done.stdout) if not m.startswith("gateway.subscriber")]
    assert outside == ["gateway", "gateway.domain", "gateway.domain.signing"]


SECRET = signing.new_secret()
BODY = b'{"user":"ada","_metadata":{}}'


def signed(secrets: list[str], body: bytes = BODY, at: float | None = None) -> dict[str, str]:
    return signing.headers(secrets, "inv-1", int(time.time() if at is None else at), body)


def test_a_signature_verifies_with_or_without_the_whsec_prefix() -> None:
    verify(signed([SECRET]), BODY, SECRET)
    verify(signed([SECRET]), BODY.decode(), SECRET.removeprefix("whsec_"))
    # Header names in any case, as a framework may hand them over.
    verify({k.title(): v for k, v in signed([SECRET]).items()}, BODY, [SECRET])


def test_during_a_rotation_either_secret_verifies() -> None:
    new = signing.new_secret()
    headers = signed([new, SECRET])
    verify(headers, BODY, SECRET)
    verify(headers, BODY, new)
    verify(signed([SECRET]), BODY, [new, SECRET])  # the subscriber holding both


@pytest.mark.parametrize(
    ("headers", "secret", "body", "says"),
    [
        (lambda: signed([SECRET]), signing.new_secret(), BODY, "no signature matches"),
        (lambda: signed([SECRET]), SECRET, BODY + b" ", "no signature matches"),
        (lambda: signed([SECRET], at=time.time() - 301), SECRET, BODY, "s old"),
        (lambda: signed([SECRET], at=time.time() + 301), SECRET, BODY, "s ahead"),
        (lambda: {"webhook-id": "inv-1"}, SECRET, BODY, "unsigned"),
        (lambda: {**signed([SECRET]), "webhook-timestamp": "yesterday"}, SECRET, BODY, "not Unix seconds"),
        (lambda: {**signed([SECRET]), "webhook-timestamp": "9" * 400}, SECRET, BODY, "not Unix seconds"),
    ],
    # Named, not derived from the values: the secrets are drawn anew in each test process.
    ids=["another secret", "another body", "too old", "too far ahead", "unsigned", "no timestamp", "huge"],
)
def test_what_is_not_proven_is_refused(
    headers: Callable[[], dict[str, str]], secret: str, body: bytes, says: str
) -> None:
    with pytest.raises(SignatureError, match=says):
        verify(headers(), body, secret)


def test_the_tolerance_window_can_be_set() -> None:
    verify(signed([SECRET], at=time.time() - 600), BODY, SECRET, tolerance=timedelta(minutes=15))


def test_verifying_with_no_secret_is_a_mistake_not_a_pass() -> None:
    with pytest.raises(ValueError, match="at least one"):
        verify(signed([SECRET]), BODY, [])


def metadata(**extra: Any) -> dict[str, Any]:
    return {
        "responseMode": "async",
        "triggerId": "shop:order",
        "triggerType": "requestResponse",
        "invocationId": "0b6c",
        "deadline": "2026-12-01T12:00:00.000Z",
        "callbackURL": "http://gw.test/beta/trigger-invocations/0b6c/complete",
        "secret": "callback-secret",
        "source": "webhook",
        "tenantId": "acme",
        "option": None,
        "runTriggers": [
            {
                "invocationId": "0b6c",
                "source": "webhook",
                "mode": "init",
                "payload": {"orderId": "A-17"},
                "headers": None,
                "receivedAt": "2026-12-01T11:00:01.120Z",
            }
        ],
        "lastRun": {"phase": "succeeded", "startedAt": None, "completedAt": None, "output": {"cursor": 3}},
        **extra,
    }


def delivery(**extra: Any) -> Delivery:
    return parse(json.dumps({"orderId": "A-17", "_metadata": metadata(**extra)}).encode())


def test_a_delivery_is_parsed_into_typed_fields() -> None:
    parsed = delivery()
    assert parsed.input == {"orderId": "A-17"}
    assert (parsed.mode, parsed.trigger_id, parsed.invocation_id) == ("async", "shop:order", "0b6c")
    assert parsed.deadline == datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert parsed.callback_url and parsed.secret == "callback-secret"
    assert (parsed.source, parsed.tenant_id, parsed.fire_and_forget) == ("webhook", "acme", False)
    assert parsed.run_triggers[0].payload == {"orderId": "A-17"}
    assert parsed.run_triggers[0].received_at == datetime(2026, 12, 1, 11, 0, 1, 120000, tzinfo=UTC)
    assert parsed.last_run is not None and parsed.last_run.output == {"cursor": 3}
    assert "callback-secret" not in repr(parsed)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "with _metadata"),
        (b'{"a": 1}', "with _metadata"),
        (json.dumps({"_metadata": {**metadata(), "responseMode": "later"}}).encode(), "responseMode"),
        (json.dumps({"_metadata": {"responseMode": "sync"}}).encode(), "no triggerId"),
        (json.dumps({"_metadata": {**metadata(), "deadline": "soon"}}).encode(), "malformed"),
    ],
    ids=["not JSON", "a list", "no _metadata", "unknown mode", "no trigger id", "bad deadline"],
)
def test_what_is_not_a_delivery_is_refused(body: bytes, says: str) -> None:
    with pytest.raises(InvalidDelivery, match=says):
        parse(body)


class Gateway:
    """A stand-in for the callback endpoints: fails to connect ``drops`` times, then answers."""

    def __init__(self, drops: int = 0, status: int = 204, answer: Any = None) -> None:
        self.drops, self.status, self.answer = drops, status, answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.drops:
            self.drops -= 1
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(self.status, json=self.answer)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(callbacks, "RETRY_DELAYS", (0.0, 0.0, 0.0))


async def test_a_callback_is_sent_again_when_the_connection_fails() -> None:
    gateway = Gateway(drops=2)
    async with gateway.client() as client:
        await complete(delivery(), {"approved": True}, client=client)
    assert len(gateway.requests) == 3
    assert json.loads(gateway.requests[-1].content) == {
        "secret": "callback-secret",
        "output": {"approved": True},
    }
    assert str(gateway.requests[-1].url) == "http://gw.test/beta/trigger-invocations/0b6c/complete"


async def test_a_callback_gives_up_after_its_retries() -> None:
    gateway = Gateway(drops=10)
    async with gateway.client() as client:
        with pytest.raises(httpx.ConnectError):
            await fail(delivery(), "no approver", client=client)
    assert len(gateway.requests) == 4


async def test_an_http_error_is_not_retried_and_carries_the_gateways_message() -> None:
    refusal = {"detailCode": "410 Gone", "messages": [{"text": "the deadline has passed"}]}
    gateway = Gateway(status=410, answer=refusal)
    async with gateway.client() as client:
        with pytest.raises(CallbackError, match="HTTP 410: the deadline has passed") as raised:
            await fail(delivery(), "no approver", client=client)
    assert raised.value.status == 410
    assert len(gateway.requests) == 1


async def test_a_heartbeat_extends_and_notes_progress() -> None:
    gateway = Gateway(status=200, answer={"deadline": "2026-12-01T20:00:00.000Z"})
    async with gateway.client() as client:
        deadline = await heartbeat(delivery(), extend_by=timedelta(hours=8), progress="half", client=client)
    assert deadline == datetime(2026, 12, 1, 20, tzinfo=UTC)
    [sent] = gateway.requests
    assert str(sent.url) == "http://gw.test/beta/trigger-invocations/0b6c/heartbeat"
    assert json.loads(sent.content) == {
        "secret": "callback-secret",
        "extendBy": "PT28800S",
        "progress": "half",
    }


async def test_a_fire_and_forget_delivery_has_nothing_to_complete() -> None:
    notice = delivery(triggerType="fireAndForget", callbackURL=None, secret=None)
    with pytest.raises(ValueError, match="fire-and-forget"):
        await complete(notice, {})


async def answer_of(
    app_secrets: list[str] | None, body: bytes, result: Any, sign: bool = True
) -> httpx.Response:
    async def handler(_: Delivery) -> Any:
        return result

    app = subscriber_app(handler, secrets=app_secrets)
    headers = signed([SECRET], body) if sign else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sub") as client:
        return await client.post("/approve", content=body, headers=headers)


def body_of(mode: str) -> bytes:
    return json.dumps({"orderId": "A-17", "_metadata": metadata(responseMode=mode)}).encode()


async def test_the_app_refuses_what_is_not_signed() -> None:
    refused = await answer_of([SECRET], body_of("sync"), {"ok": 1}, sign=False)
    assert refused.status_code == 401
    assert "unsigned" in refused.json()["error"]
    assert (await answer_of(None, body_of("sync"), {"ok": 1}, sign=False)).json() == {"ok": 1}
    assert (await answer_of([SECRET], b"{}", {"ok": 1})).status_code == 400


@pytest.mark.parametrize(
    ("mode", "status", "body"),
    [("sync", 422, None), ("async", 200, {}), ("dynamic", 202, {})],
)
async def test_later_is_answered_as_each_mode_expects(mode: str, status: int, body: Any) -> None:
    answered = await answer_of([SECRET], body_of(mode), LATER)
    assert answered.status_code == status
    if body is not None:
        assert answered.json() == body


async def test_an_output_is_the_answer_of_sync_and_dynamic() -> None:
    for mode in ("sync", "dynamic"):
        answered = await answer_of([SECRET], body_of(mode), {"approved": True})
        assert (answered.status_code, answered.json()) == (200, {"approved": True})
