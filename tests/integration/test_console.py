"""The admin console over plain HTTP: who gets in (the right secret, a signed session cookie
with the flags a browser needs), who does not (a wrong secret, no cookie, a forged one, a
missing CSRF token), and what its pages show (escaped, secrets masked, under a strict policy)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from gateway.console.html import CONTENT_SECURITY_POLICY
from gateway.console.session import COOKIE
from tests.conftest import CLIENT_ID, CLIENT_SECRET, start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, answer, serve

shared_gateway = pytest.mark.asyncio(loop_scope="module")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    gateway: GatewayClient
    subscriber: Subscriber
    url: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def console(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Console]:
    subscriber = Subscriber()
    async with (
        serve(subscriber.app()) as subscriber_url,
        start_gateway(tmp_path_factory.mktemp("console"), worker=False, retry_schedule="") as gateway,
    ):
        subscriber.url = subscriber_url
        yield Console(gateway, subscriber, gateway.settings.public_url)


@asynccontextmanager
async def signed_in(
    console: Console, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as client:
        response = await client.post("/console/login", data={"client_id": client_id, "client_secret": secret})
        assert response.status_code == 303, response.text
        yield client


@shared_gateway
async def test_signing_in_sets_a_strict_http_only_cookie(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        login = await client.get("/console/login")
        assert login.status_code == 200
        assert login.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        response = await client.post(
            "/console/login", data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        )
        assert response.status_code == 303 and response.headers["location"] == "/console/invocations"
        cookie = response.headers["set-cookie"]
        for flag in ("HttpOnly", "SameSite=strict", "Path=/console", "Max-Age="):
            assert flag.lower() in cookie.lower(), cookie
        assert "secure" not in cookie.lower()  # the public URL is http here
        page = await client.get("/console/invocations")
        assert page.status_code == 200 and "<h1>Invocations</h1>" in page.text


@shared_gateway
async def test_a_wrong_secret_is_refused_without_a_session(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        response = await client.post(
            "/console/login", data={"client_id": CLIENT_ID, "client_secret": "wrong"}
        )
        assert response.status_code == 401
        assert "unknown client or wrong client secret" in response.text
        assert COOKIE not in response.headers.get("set-cookie", "")
        assert (await client.get("/console/invocations")).status_code == 303


@shared_gateway
@pytest.mark.parametrize(
    "cookie",
    [None, "forged", "eyJ0b2tlbiI6Im1pbmUifQ.ZZZZZZ.c2lnbmF0dXJl"],
    ids=["no cookie", "garbage", "forged signature"],
)
async def test_requests_without_a_valid_session_are_refused(console: Console, cookie: str | None) -> None:
    cookies = {COOKIE: cookie} if cookie else {}
    async with httpx.AsyncClient(base_url=console.url, cookies=cookies) as client:
        for path in ("/console/invocations", "/console/triggers", "/console/subscriptions"):
            response = await client.get(path)
            assert response.status_code == 303 and response.headers["location"] == "/console/login", path
        assert (await client.get("/console/fragments/invocations")).status_code == 401
        refused = await client.post("/console/invocations/x/replay", data={"csrf": "x"})
        assert refused.status_code == 401


@shared_gateway
async def test_an_access_token_is_not_a_session(console: Console) -> None:
    """Both are signed with the gateway's keys, with different salts: one cannot pass for the other."""
    token = console.gateway.http.headers["authorization"].split()[1]
    async with httpx.AsyncClient(base_url=console.url, cookies={COOKIE: token}) as client:
        assert (await client.get("/console/invocations")).status_code == 303


@shared_gateway
async def test_actions_need_the_sessions_csrf_token(console: Console) -> None:
    gateway = console.gateway
    await gateway.create_trigger("console:csrf", name="CSRF")
    sub = await gateway.subscribe("console:csrf", console.subscriber.endpoint("csrf", answer(200, {"ok": 1})))
    async with signed_in(console) as client:
        page = await client.get(f"/console/subscriptions/{sub['id']}")
        token = CSRF.search(page.text)
        assert token, page.text
        path = f"/console/subscriptions/{sub['id']}/disable"
        for sent in ({}, {"csrf": "wrong"}, {"csrf": token.group(1)[:-1]}):
            refused = await client.post(path, data=sent)
            assert refused.status_code == 403, refused.text
        assert (await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")).json()["enabled"]
        done = await client.post(path, data={"csrf": token.group(1)})
        assert done.status_code == 303
        assert not (await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")).json()["enabled"]
        enable = await client.post(
            f"/console/subscriptions/{sub['id']}/enable", data={"csrf": token.group(1)}
        )
        assert enable.status_code == 303
        assert (await gateway.http.get(f"/beta/trigger-subscriptions/{sub['id']}")).json()["enabled"]


@shared_gateway
async def test_pages_escape_what_they_show_and_mask_secrets(console: Console) -> None:
    gateway = console.gateway
    await gateway.create_trigger("console:escape", name="<script>alert(1)</script>")
    await gateway.subscribe("console:escape", console.subscriber.endpoint("escape", answer(200, {"ok": 1})))
    secret_input = {
        "user": "<b>ann</b>",
        "password": "hunter2",
        "nested": {"apiKey": "k-123", "note": "fine"},
    }
    [started] = await gateway.start("console:escape", secret_input)
    await gateway.final_status(started["id"])
    async with signed_in(console) as client:
        trigger = await client.get("/console/triggers/console:escape")
        assert "<script>alert(1)</script>" not in trigger.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in trigger.text
        shown = await client.get(f"/console/invocations/{started['id']}")
        assert shown.status_code == 200
        assert "hunter2" not in shown.text and "k-123" not in shown.text
        assert "&lt;b&gt;ann&lt;/b&gt;" in shown.text and "fine" in shown.text
        assert shown.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


@shared_gateway
async def test_a_client_without_the_scope_is_refused_the_page(console: Console) -> None:
    created = await console.gateway.http.post(
        "/beta/api-clients", json={"clientId": "console-starter", "scopes": ["invocations:start"]}
    )
    assert created.status_code == 201, created.text
    async with signed_in(console, "console-starter", created.json()["clientSecret"]) as client:
        response = await client.get("/console/invocations")
        assert response.status_code == 403 and "invocations:read" in response.text


@shared_gateway
async def test_static_files_are_served_with_their_types(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url) as client:
        script = await client.get("/console/static/console.js")
        assert script.headers["content-type"].startswith("text/javascript")
        style = await client.get("/console/static/console.css")
        assert style.headers["content-type"].startswith("text/css")
        assert (await client.get("/console/static/../session.py")).status_code == 404


@shared_gateway
async def test_forms_posted_from_another_site_are_refused(console: Console) -> None:
    """Fetch Metadata: even a sign-in (which needs no cookie) is refused from another site."""
    cross = {"sec-fetch-site": "cross-site"}
    async with httpx.AsyncClient(base_url=console.url) as client:
        credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        refused = await client.post("/console/login", data=credentials, headers=cross)
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
        same = await client.post(
            "/console/login", data=credentials, headers={"sec-fetch-site": "same-origin"}
        )
        assert same.status_code == 303
        # Nor may another site sign anyone out (the answer would clear the cookie).
        logout = await client.post("/console/logout", headers=cross)
        assert logout.status_code == 403 and "set-cookie" not in logout.headers


@shared_gateway
async def test_a_time_past_what_utc_can_hold_is_a_clear_refusal(console: Console) -> None:
    async with signed_in(console) as client:
        for since in ("0001-01-01T00:00+05:00", "9999-12-31T23:59-05:00", "yesterday"):
            response = await client.get("/console/invocations", params={"since": since})
            assert response.status_code == 400, (since, response.text[:200])
            assert "is not a date and time" in response.text
