"""Hostile world, round two: inputs that held the event loop, exhausted memory or broke reads.

Each attack runs against the gateway over HTTP while a probe asks GET /health every 20 ms on
a connection of its own: every answer must come within PROBE_LIMIT, and the gateway must
still serve afterwards.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
import json
import logging
import re
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
from itsdangerous import URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.adapters.database import engine as db
from tests.conftest import CLIENT_ID, start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import serve
from tests.services import Store, stored_bytes

pytestmark = pytest.mark.asyncio(loop_scope="module")
T = TypeVar("T")

# Seconds: what the design promises a concurrent request, with a margin for what the machine
# and this process (its garbage collector, pytest's own work) add while holding nothing.
PROBE_LIMIT = 0.5
PAUSE = 0.02  # between probes
CATASTROPHIC = "(a+)+$"  # on Python's re: each extra 'a' before the '!' doubles the time
LONG_NO_MATCH = "a" * 5000 + "!"


@functools.cache
def gzip_bomb_bytes() -> bytes:
    """1 GiB of zeros gzipped twice (about 2 KB), built a MiB at a time: the process that
    builds it must not hold the GiB, or its peak memory would hide the gateway's."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip member
    mebibyte = bytes(1 << 20)
    zipped = b"".join(inner.compress(mebibyte) for _ in range(1024)) + inner.flush()
    return gzip.compress(zipped, 9)


async def gzip_bomb(_: Request) -> Response:
    return Response(
        gzip_bomb_bytes(), headers={"content-type": "application/json", "content-encoding": "gzip, gzip"}
    )


async def plain(request: Request) -> Response:
    """Answers a digest of the query string it was called with: a test sees what was sent,
    and the output the gateway stores holds no credential."""
    digest = hashlib.sha256(request.url.query.encode()).hexdigest()
    return Response(json.dumps({"query": digest}), media_type="application/json")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def subscriber_url() -> AsyncIterator[str]:
    app = Starlette(
        routes=[Route("/bomb", gzip_bomb, methods=["POST"]), Route("/plain", plain, methods=["POST"])]
    )
    async with serve(app) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(module_store: Store) -> AsyncIterator[GatewayClient]:
    async with start_gateway(module_store, header_timeout=1.0, body_timeout=1.0) as client:
        yield client


async def loop_stays_free(gateway: GatewayClient, attack: Awaitable[T]) -> T:
    """``attack``'s result, after checking that GET /health kept answering within PROBE_LIMIT
    plus twice what it took before the attack (a busy machine answers slower even before):
    the attack must add nothing a held event loop would."""
    async with httpx.AsyncClient(base_url=str(gateway.http.base_url), timeout=30) as probe:

        async def slowest(until: Callable[[], bool]) -> float:
            """The longest a probe took, its pause after it included: the gateway runs in this
            process, so a held loop also shows as a pause that ran long."""
            worst, probes = 0.0, 0
            while not until() or probes < 3:
                began = time.perf_counter()
                assert (await probe.get("/health")).status_code == 200
                await asyncio.sleep(PAUSE)
                worst = max(worst, time.perf_counter() - began - PAUSE)
                probes += 1
            return worst

        quiet_until = time.perf_counter() + 0.3
        busy = await slowest(lambda: time.perf_counter() > quiet_until)
        task = asyncio.ensure_future(attack)
        during = await slowest(task.done)
        result = await task
    # What the machine's own load adds comes on top: with two CPU hogs beside the suite, a
    # probe took 61 ms before an attack and 238 ms during one that held nothing; in a CI run,
    # 18 ms before and 337 ms during a webhook call that passed 5 times in 5 beside two hogs.
    # A held loop shows as seconds (the attacks here held it 3 to 10 s before they were fixed).
    limit = PROBE_LIMIT + 2 * busy
    assert during < limit, (
        f"GET /health took {during * 1000:.0f} ms during the attack ({busy * 1000:.0f} before)"
    )
    return result


def unique(prefix: str) -> str:
    return f"{prefix}:{uuid.uuid4().hex[:8]}"


def error_text(response: httpx.Response) -> str:
    body = response.json()
    return " ".join(m["text"] for m in [*body["messages"], *body["causes"]])


# 1. Regular expressions run on RE2.


async def test_a_catastrophic_regex_in_validate_filter_does_not_hold_the_loop(gateway: GatewayClient) -> None:
    body = {"input": {"name": LONG_NO_MATCH}, "filter": f"$[?(@.name =~ /{CATASTROPHIC}/)]"}
    answer = await loop_stays_free(
        gateway, gateway.http.post("/beta/trigger-subscriptions/validate-filter", json=body)
    )
    assert answer.status_code == 200
    assert answer.json() == {"isValid": False, "isValidJSONPath": True, "isPathExist": False}


async def test_catastrophic_regexes_in_filters_schemas_and_tenant_paths_do_not_hold_the_loop(
    gateway: GatewayClient, subscriber_url: str
) -> None:
    filtered, checked = unique("re:filter"), unique("re:schema")
    await gateway.create_trigger(filtered, type="FIRE_AND_FORGET")
    await gateway.subscribe(filtered, f"{subscriber_url}/plain", filter=f"$[?(@.name =~ /{CATASTROPHIC}/)]")
    pattern = {"type": "object", "properties": {"name": {"type": "string", "pattern": f"^{CATASTROPHIC}"}}}
    await gateway.create_trigger(checked, type="FIRE_AND_FORGET", inputSchema=pattern)
    start = "/beta/trigger-invocations/start"
    no_match = await loop_stays_free(
        gateway, gateway.http.post(start, json={"triggerId": filtered, "input": {"name": LONG_NO_MATCH}})
    )
    assert no_match.status_code == 204  # the filter matched nothing
    refused = await loop_stays_free(
        gateway, gateway.http.post(start, json={"triggerId": checked, "input": {"name": LONG_NO_MATCH}})
    )
    assert refused.status_code == 400
    assert "does not match" in error_text(refused)

    # Without any authentication: a webhook call, whose trigger finds its tenant by a regex.
    hooked = unique("re:tenant")
    await gateway.create_trigger(hooked, type="FIRE_AND_FORGET", tenantIdPath="$[?match(@.name,'(a+)+')].id")
    sub = await gateway.subscribe(hooked, f"{subscriber_url}/plain")
    url = (await gateway.http.post(f"/beta/trigger-subscriptions/{sub['id']}/webhook")).json()["url"]
    async with httpx.AsyncClient() as anonymous:
        called = await loop_stays_free(
            gateway, anonymous.post(url, json={"x": {"name": LONG_NO_MATCH, "id": "acme"}})
        )
    assert called.status_code == 202, called.text
    assert (await gateway.final_status(called.json()["id"]))["tenantId"] is None


@pytest.mark.parametrize(
    ("path", "body", "refused"),
    [
        ("subscription", {"filter": "$[?(@.name =~ /(?=a)b/)]"}, "RE2"),
        ("subscription", {"filter": "$[?(@.name =~ /a/x)]"}, "flag(s) x are not supported"),
        ("trigger", {"inputSchema": {"type": "string", "pattern": "(a)\\1"}}, "RE2"),
        ("trigger", {"inputSchema": {"type": "object", "patternProperties": {"(?<=a)b": {}}}}, "RE2"),
        ("trigger", {"tenantIdPath": "$[?match(@.n, '(?!x)')].id"}, "RE2"),
    ],
    ids=["lookahead-filter", "flag-x", "backreference-pattern", "lookbehind-property", "tenant-path"],
)
async def test_a_regex_rE2_cannot_run_is_refused_when_saved(
    gateway: GatewayClient, subscriber_url: str, path: str, body: dict[str, Any], refused: str
) -> None:
    trigger_id = unique("re:save")
    if path == "trigger":
        doc = {"id": trigger_id, "name": "T", "type": "FIRE_AND_FORGET", **body}
        answer = await gateway.http.post("/beta/triggers", json=doc)
    else:
        await gateway.create_trigger(trigger_id, type="FIRE_AND_FORGET")
        doc = {"triggerId": trigger_id, "name": "s", "httpConfig": {"url": f"{subscriber_url}/plain"}, **body}
        answer = await gateway.http.post("/beta/trigger-subscriptions", json=doc)
    assert answer.status_code == 400, answer.text
    assert refused in error_text(answer)


# 2. JSON Schema checks have a bounded cost.


async def test_unique_items_over_thousands_of_objects_is_refused_without_holding_the_loop(
    gateway: GatewayClient,
) -> None:
    trigger_id = unique("schema:unique")
    await gateway.create_trigger(
        trigger_id, inputSchema={"type": "object", "properties": {"xs": {"uniqueItems": True}}}
    )
    items = [{"k": i} for i in range(3000)]  # about 30 KB
    answer = await loop_stays_free(
        gateway,
        gateway.http.post(
            "/beta/trigger-invocations/start", json={"triggerId": trigger_id, "input": {"xs": items}}
        ),
    )
    assert answer.status_code == 400
    assert "takes more than 500,000 steps" in error_text(answer)


async def test_a_large_input_is_checked_in_a_thread_and_accepted(gateway: GatewayClient) -> None:
    trigger_id = unique("schema:large")
    item = {"type": "object", "required": ["a", "b"], "properties": {"b": {"type": "integer"}}}
    schema = {"type": "object", "properties": {"xs": {"type": "array", "items": item}}}
    await gateway.create_trigger(trigger_id, type="FIRE_AND_FORGET", inputSchema=schema)
    items = [{"a": "x" * 10, "b": i} for i in range(15_000)]  # about 480 KB, 75,000 steps
    body = json.dumps({"triggerId": trigger_id, "input": {"xs": items}}).encode()  # before the probes
    answer = await loop_stays_free(
        gateway,
        gateway.http.post(
            "/beta/trigger-invocations/start", content=body, headers={"content-type": "application/json"}
        ),
    )
    assert answer.status_code == 204, answer.text  # valid, and nobody is subscribed


async def test_schemas_that_expand_without_end_are_refused_when_saved(gateway: GatewayClient) -> None:
    defs: dict[str, Any] = {f"a{i}": {"allOf": [{"$ref": f"#/$defs/a{i + 1}"}] * 2} for i in range(18)}
    defs["a18"] = {"type": "object"}
    for schema, reason in (
        ({"$defs": defs, "$ref": "#/$defs/a0"}, "expand to more than 1000 subschemas"),
        ({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}, "refers to itself"),
    ):
        doc = {"id": unique("schema:bomb"), "name": "B", "type": "FIRE_AND_FORGET", "inputSchema": schema}
        answer = await loop_stays_free(gateway, gateway.http.post("/beta/triggers", json=doc))
        assert answer.status_code == 400, answer.text
        assert reason in error_text(answer)
        doc["exampleInput"] = {}  # with an example to check: still a 400, never a 500
        assert (await gateway.http.post("/beta/triggers", json=doc)).status_code == 400


# 3. Text that is not Unicode.


@pytest.mark.parametrize(
    "encoded", [b'"\\ud800"', b'"\\uDFFF x"', b'"\xed\xa0\x80"'], ids=["escaped", "low", "raw"]
)
async def test_lone_surrogates_are_refused(gateway: GatewayClient, encoded: bytes) -> None:
    trigger_id = unique("unicode")
    await gateway.create_trigger(trigger_id)
    body = b'{"triggerId": "%s", "input": {"n": %s}}' % (trigger_id.encode(), encoded)
    answer = await gateway.http.post(
        "/beta/trigger-invocations/start", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert "not valid Unicode" in error_text(answer)
    pair = b'{"triggerId": "%s", "input": {"n": "\\ud83d\\ude00"}}' % trigger_id.encode()  # a pair: fine
    fine = await gateway.http.post(
        "/beta/trigger-invocations/start", content=pair, headers={"content-type": "application/json"}
    )
    assert fine.status_code == 204


async def test_a_nul_character_is_refused_wherever_it_is(gateway: GatewayClient) -> None:
    """PostgreSQL stores no NUL in text or JSON: before, a trigger named with one was a 500 there
    (found by the API fuzz test)."""
    for body in (
        b'{"id": "t:nul", "name": "a\\u0000b", "type": "FIRE_AND_FORGET"}',
        b'{"id": "t:nul", "name": "ok", "type": "FIRE_AND_FORGET", "exampleInput": {"k\\u0000": 1}}',
    ):
        answer = await gateway.http.post(
            "/beta/triggers", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 400, answer.text
        assert "NUL character" in error_text(answer)
    form = {"content-type": "application/x-www-form-urlencoded"}
    token = b"grant_type=client_credentials&client_id=a%00b&client_secret=x"
    async with httpx.AsyncClient(base_url=gateway.settings.public_url) as anonymous:
        refused = await anonymous.post("/oauth/token", content=token, headers=form)
        assert refused.status_code == 400 and "NUL" in refused.text
        console = await anonymous.post(
            "/console/login", content=b"client_id=a%00&client_secret=x", headers=form
        )
        assert console.status_code == 400
    for url in ('/beta/triggers?filters=id eq "a%00b"', "/beta/triggers/a%00b", "/beta/triggers/a%00b/x"):
        answer = await gateway.http.get(url)
        assert answer.status_code == 400 and "NUL character" in error_text(answer), url
    literal = b'{"id": "t:nul", "name": "a\\\\u0000b", "type": "FIRE_AND_FORGET"}'  # a backslash, then u0000
    kept = await gateway.http.post(
        "/beta/triggers", content=literal, headers={"content-type": "application/json"}
    )
    assert kept.status_code == 201 and kept.json()["name"] == "a\\u0000b"


async def test_a_row_stored_with_a_lone_surrogate_is_still_read(tmp_path: Path) -> None:
    """Stored before the gateway refused them (SQLite took them; PostgreSQL's json never did)."""
    invocation_id = str(uuid.uuid4())
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    try:
        await db.migrate(engine)
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                "INSERT INTO invocations (id, trigger_id, trigger_type, subscription_id, subscription_name, "
                "dispatch_mode, type, status, input, attempts, source, created, deadline, queued_at) "
                "VALUES (?, 'old', 'FIRE_AND_FORGET', 's', 's', 'SYNC', 'REAL_TIME', 'SUPPRESSED', ?, 0, "
                "'api', '2026-01-01 00:00:00', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
                (invocation_id, '{"n": "\\ud800"}'),
            )
    finally:
        await engine.dispose()
    async with start_gateway(tmp_path) as gateway:
        one = await gateway.http.get(f"/beta/trigger-invocations/{invocation_id}/status")
        assert one.status_code == 200, one.text
        assert b'"\\ud800"' in one.content
        filters = {"filters": f'id eq "{invocation_id}"'}
        listed = await gateway.http.get("/beta/trigger-invocations/status", params=filters)
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()] == [invocation_id]


# 4. A subscriber's answer is read with a bound on what it decodes to.


def peak_rss_mb(pid: int | str = "self") -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) / 1024  # type: ignore[index]


async def test_a_gzip_bomb_fails_the_delivery_without_exhausting_memory(
    gateway: GatewayClient, subscriber_url: str, module_store: Store
) -> None:
    await asyncio.to_thread(gzip_bomb_bytes)  # built before the time limit starts, off the loop
    trigger_id = unique("bomb")
    await gateway.create_trigger(trigger_id)
    await gateway.subscribe(trigger_id, f"{subscriber_url}/bomb")
    delivering: int | str = gateway.worker_pid or "self"  # distributed, the worker delivers
    before = peak_rss_mb(delivering)
    [invocation] = await gateway.start(trigger_id, {})
    status = await loop_stays_free(gateway, gateway.final_status(invocation["id"]))
    assert status["status"] == "FAILED"
    assert "larger than 1048576 bytes" in status["completeInvocationInput"]["localizedError"]["message"]
    assert peak_rss_mb(delivering) < before + 100, "decoding the answer took memory it should not have"


# 5. Tokens of our key without scopes, and schemas saved before they were checked.


async def test_a_token_signed_with_the_key_but_without_scopes_is_401(gateway: GatewayClient) -> None:
    keys = [k.strip() for k in gateway.settings.secret_key.split(",")][::-1]
    forged = URLSafeTimedSerializer(keys, salt="trigger-gateway.token").dumps({"sub": CLIENT_ID})
    answer = await gateway.http.get("/beta/triggers", headers={"authorization": f"Bearer {forged}"})
    assert answer.status_code == 401


# 6. Slow and oversized requests are cut off.


async def raw_request(gateway: GatewayClient, *parts: bytes, pause: float = 0.0) -> bytes:
    """Send ``parts`` over a raw connection, ``pause`` seconds apart; what came back before close."""
    host, port = str(gateway.http.base_url.host), gateway.http.base_url.port
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(pause)
        async with asyncio.timeout(5):
            return await reader.read()
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def test_headers_over_16_kib_are_431(gateway: GatewayClient) -> None:
    big = b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: " + b"y" * 20_000 + b"\r\n\r\n"
    refused = await raw_request(gateway, big)
    assert refused.startswith(b"HTTP/1.1 431 ")
    error = json.loads(refused.partition(b"\r\n\r\n")[2])  # the API's error format
    assert error["detailCode"] == "431 Request Header Fields Too Large" and error["trackingId"]
    assert "16 KiB" in error["messages"][0]["text"]
    many = (
        b"GET /health HTTP/1.1\r\nhost: x\r\n" + b"".join(b"x-%d: 1\r\n" % i for i in range(5000)) + b"\r\n"
    )
    assert (await raw_request(gateway, many)).startswith(b"HTTP/1.1 431 ")
    # An endless header line is refused before it is all read.
    async with asyncio.timeout(10):
        answer = await raw_request(gateway, b"GET /health HTTP/1.1\r\nx: ", *[b"y" * 65536] * 4)
    assert answer.startswith(b"HTTP/1.1 431 ") or answer == b""
    assert (await gateway.http.get("/health")).status_code == 200


async def test_headers_and_bodies_split_across_reads_are_counted_once(gateway: GatewayClient) -> None:
    """Headers arrive in packets; a body may share a read with their end."""
    head = b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
    filler = b"".join(b"x-%d: %s\r\n" % (i, b"y" * 1000) for i in range(12))  # about 12 KiB
    split = await raw_request(gateway, head + filler[:6000], filler[6000:] + b"\r\n", pause=0.05)
    assert split.startswith(b"HTTP/1.1 200 "), split[:80]
    body = json.dumps({"filter": "$[?($.a)]", "input": {"a": "y" * 20_000}}).encode()
    post = (
        b"POST /beta/trigger-subscriptions/validate-filter HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
        b"authorization: " + gateway.http.headers["authorization"].encode() + b"\r\n"
    )
    tail = b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
    answered = await raw_request(gateway, post, tail + body, pause=0.05)
    assert answered.startswith(b"HTTP/1.1 200 "), answered[:80]


async def test_slow_headers_slow_bodies_and_silent_connections_are_closed(gateway: GatewayClient) -> None:
    began = time.perf_counter()
    slow_headers = await raw_request(
        gateway, b"GET /health HTTP/1.1\r\n", b"host: x\r\n", b"x-a: 1\r\n", pause=0.6
    )
    assert slow_headers.startswith(b"HTTP/1.1 408 "), slow_headers[:80]
    head = b"POST /oauth/token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n"
    slow_body = await raw_request(
        gateway, head + b"content-length: 100\r\n\r\ngrant", b"_type", b"=client", pause=0.7
    )
    assert slow_body.startswith(b"HTTP/1.1 408 "), slow_body[:80]
    silent = await raw_request(gateway)  # connects, sends nothing
    assert silent.startswith(b"HTTP/1.1 408 ")
    assert time.perf_counter() - began < 10  # each closed after the 1 s time limits, not 95 s
    assert (await gateway.http.get("/health")).status_code == 200


async def test_connections_beyond_the_cap_get_503(tmp_path: Path) -> None:
    async with start_gateway(tmp_path, max_connections=4) as gateway:
        host, port = str(gateway.http.base_url.host), gateway.http.base_url.port
        held = [await asyncio.open_connection(host, port) for _ in range(5)]
        try:
            answer = await raw_request(gateway, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 503 "), answer[:80]
        finally:
            for _, writer in held:
                writer.close()
        await asyncio.sleep(0.1)
        assert (await gateway.http.get("/health")).status_code == 200


# 7. Tokens never reach a log line.


async def test_a_webhook_token_is_not_logged_whatever_the_path_looks_like(
    gateway: GatewayClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.access")
    token = "eyJ0b2tlbiI6InNlY3JldCJ9.c2lnbmF0dXJl"
    for path in (f"/hooks/{token}", f"//hooks/{token}", f"/beta//hooks/{token}/x", f"/x/hooks/{token}"):
        # Raw, so that the path is sent as written (a client library would normalize //).
        request = f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
        answer = await raw_request(gateway, request.encode())
        assert answer.startswith(b"HTTP/1.1 404 "), answer[:80]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/hooks/<token>" in logged
    assert token not in logged


# 10. A deleted client's tokens stop working.


async def test_a_deleted_clients_tokens_stop_working_within_a_second(gateway: GatewayClient) -> None:
    made = await gateway.http.post("/api-clients", json={"scopes": ["invocations:read"]})
    client_id, secret = made.json()["clientId"], made.json()["clientSecret"]
    async with httpx.AsyncClient(base_url=str(gateway.http.base_url)) as other:
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        token = (await other.post("/oauth/token", data=form)).json()["access_token"]
        other.headers["authorization"] = f"Bearer {token}"
        assert (await other.get("/beta/trigger-invocations/status")).status_code == 200
        assert (await gateway.http.delete(f"/api-clients/{client_id}")).status_code == 204
        deleted_at = time.monotonic()
        while (await other.get("/beta/trigger-invocations/status")).status_code == 200:
            assert time.monotonic() - deleted_at < 1.5, "the token still works"
            await asyncio.sleep(0.05)
        answer = await other.get("/beta/trigger-invocations/status")
    assert answer.status_code == 401
    assert "client was deleted" in error_text(answer)


# 11. A credential in a subscriber URL's query string.


async def test_a_query_string_credential_is_encrypted_shown_masked_and_still_sent(
    gateway: GatewayClient, subscriber_url: str, module_store: Store
) -> None:
    trigger_id = unique("query")
    await gateway.create_trigger(trigger_id)
    secret = f"k3y-{uuid.uuid4().hex}"
    sub = await gateway.subscribe(trigger_id, f"{subscriber_url}/plain?api_key={secret}&region=eu", name="q")
    assert sub["httpConfig"]["url"] == f"{subscriber_url}/plain?api_key=***&region=***"
    # The document sent back as shown keeps the stored query.
    path = f"/beta/trigger-subscriptions/{sub['id']}"
    assert (await gateway.http.put(path, json={**sub, "name": "renamed"})).status_code == 200
    [invocation] = await gateway.start(trigger_id, {})
    status = await gateway.final_status(invocation["id"])
    sent = hashlib.sha256(f"api_key={secret}&region=eu".encode()).hexdigest()
    assert status["completeInvocationInput"]["output"] == {"query": sent}
    assert secret.encode() not in await stored_bytes(module_store.database_url)
    listed = (
        await gateway.http.get("/beta/trigger-subscriptions", params={"filters": f'id eq "{sub["id"]}"'})
    ).text
    assert secret not in listed
