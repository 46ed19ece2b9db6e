"""The admin console in a real browser (Debian's Chromium, headless, driven by Playwright): sign
in, filter the failed invocations, open one, replay it and see it complete; a wrong secret
refused. Every page is screenshotted into test-artifacts/console/ (git-ignored; the path is
printed), its load time printed and kept there (<test>.load-times.txt), and no page may log
an error to the browser's console."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from starlette.responses import JSONResponse, Response

from tests.conftest import CLIENT_ID, CLIENT_SECRET, start_gateway
from tests.gateway_client import GatewayClient
from tests.servers import Received, Subscriber, answer, serve

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
HOW_TO_INSTALL = "apt-get install -y --no-install-recommends chromium (and pip install -e '.[dev]')"


def _browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing; install it with {HOW_TO_INSTALL}"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return f"the playwright package is missing; install it with {HOW_TO_INSTALL}"
    return None


_missing = _browser_missing()
if _missing is not None:
    if os.environ.get("GATEWAY_REQUIRE_SERVICES") == "1":
        raise RuntimeError(f"the browser tests cannot run: {_missing}")
    pytest.skip(_missing, allow_module_level=True)

from playwright.async_api import Browser, ConsoleMessage, Error, Page, async_playwright, expect  # noqa: E402

in_one_browser = pytest.mark.asyncio(loop_scope="module")


def fails_then_answers() -> Any:
    """A subscriber that fails its first delivery (500) and answers every later one."""
    calls = 0

    async def respond(_: Received) -> Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return JSONResponse({"error": "down for a moment"}, status_code=500)
        return JSONResponse({"approved": True})

    return respond


@dataclass
class Scene:
    gateway: GatewayClient
    browser: Browser
    failed_id: str
    trigger_id: str
    subscription_id: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scene(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scene]:
    subscriber = Subscriber()
    # Not emptied first: the tests may run in several processes; every file is overwritten.
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with (
        serve(subscriber.app()) as subscriber_url,
        start_gateway(tmp_path_factory.mktemp("console-browser"), worker=False, retry_schedule="") as gateway,
        async_playwright() as playwright,
    ):
        subscriber.url = subscriber_url
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        scene = await _populate(gateway, subscriber, browser)
        try:
            yield scene
        finally:
            await browser.close()


async def _populate(gateway: GatewayClient, subscriber: Subscriber, browser: Browser) -> Scene:
    await gateway.create_trigger("console:approve", name="Approve access", exampleInput={"user": "ann"})
    sub = await gateway.subscribe("console:approve", subscriber.endpoint("flaky", fails_then_answers()))
    [failed] = await gateway.start("console:approve", {"user": "ann", "password": "hunter2"})
    assert (await gateway.final_status(failed["id"]))["status"] == "FAILED"
    await gateway.create_trigger("console:notify", name="Notify", type="FIRE_AND_FORGET")
    await gateway.subscribe("console:notify", subscriber.endpoint("ok", answer(200, {})), mode="SYNC")
    for n in range(3):
        [done] = await gateway.start("console:notify", {"n": n})
        await gateway.final_status(done["id"])
    return Scene(gateway, browser, failed["id"], "console:approve", sub["id"])


class Watched:
    """A page whose console errors and uncaught exceptions are collected."""

    def __init__(self, page: Page, scene: Scene) -> None:
        self.page, self.scene = page, scene
        self.errors: list[str] = []
        self.load_times: dict[str, float] = {}
        page.on("console", self._console)
        page.on("pageerror", self._page_error)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def _page_error(self, error: Error) -> None:
        self.errors.append(f"pageerror: {error}")

    async def visit(self, name: str, path: str) -> None:
        started = time.perf_counter()
        await self.page.goto(self.scene.gateway.settings.public_url + path, wait_until="load")
        await self.loaded(name, started)

    async def loaded(self, name: str, started: float) -> None:
        await self.page.wait_for_load_state("load")
        self.load_times[name] = time.perf_counter() - started
        await self.page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


@pytest_asyncio.fixture(loop_scope="module")
async def watched(scene: Scene, request: pytest.FixtureRequest) -> AsyncIterator[Watched]:
    context = await scene.browser.new_context(viewport={"width": 1280, "height": 900})
    watched = Watched(await context.new_page(), scene)
    try:
        yield watched
    finally:
        await context.close()
        # Printed (pytest -s shows it) and kept beside the screenshots (xdist hides prints).
        times = "".join(f"{name}: {seconds * 1000:.0f} ms\n" for name, seconds in watched.load_times.items())
        (ARTIFACTS / f"{request.node.name}.load-times.txt").write_text(times)
        print(f"\n{request.node.name}: screenshots in {ARTIFACTS}\n{times}")
    assert not watched.errors, watched.errors


async def sign_in(watched: Watched, secret: str = CLIENT_SECRET) -> None:
    page = watched.page
    await watched.visit("login", "/console/login")
    await page.get_by_label("Client id").fill(CLIENT_ID)
    await page.get_by_label("Client secret").fill(secret)
    await page.get_by_role("button", name="Sign in").click()


@in_one_browser
async def test_sign_in_filter_failed_open_replay_and_see_it_complete(watched: Watched, scene: Scene) -> None:
    page = watched.page
    started = time.perf_counter()
    await sign_in(watched)
    await expect(page.get_by_role("heading", name="Invocations")).to_be_visible()
    await watched.loaded("invocations", started)
    await expect(page.locator("figure.chart svg rect").first).to_be_attached()

    await page.get_by_label("Status").select_option("FAILED")
    started = time.perf_counter()
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url("**/console/invocations?status=FAILED*")
    await watched.loaded("invocations-failed", started)
    rows = page.locator("#live tbody tr")
    await expect(rows).to_have_count(1)

    started = time.perf_counter()
    await rows.first.get_by_role("link").click()
    await page.wait_for_url(f"**/console/invocations/{scene.failed_id}")
    await watched.loaded("invocation-failed", started)
    await expect(page.locator(".facts .status-failed")).to_have_text("FAILED")
    await expect(page.locator(".timeline")).to_contain_text("HTTP 500")
    await expect(page.locator("main")).not_to_contain_text("hunter2")

    started = time.perf_counter()
    await page.get_by_role("button", name="Replay").click()
    await expect(page.get_by_role("status")).to_contain_text("Replayed")
    await watched.loaded("invocation-replayed", started)
    # The live section refreshes itself (every 3 s) until the replay's delivery shows as done.
    await expect(page.locator(".facts .status-completed")).to_have_text("COMPLETED", timeout=10_000)
    await expect(page.locator(".timeline")).to_contain_text("HTTP 200")
    await watched.loaded("invocation-completed", started)


@in_one_browser
async def test_triggers_and_subscriptions_pages(watched: Watched, scene: Scene) -> None:
    page = watched.page
    await sign_in(watched)
    await page.wait_for_url("**/console/invocations")
    await watched.visit("triggers", "/console/triggers")
    await expect(page.get_by_role("link", name=scene.trigger_id)).to_be_visible()
    await page.keyboard.press("Tab")  # the keyboard's first stop skips the navigation
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await watched.visit("trigger", f"/console/triggers/{scene.trigger_id}")
    await page.get_by_role("button", name="Send a test invocation").click()
    await expect(page.get_by_role("status")).to_contain_text("Test invocation sent")
    await watched.visit("subscriptions", "/console/subscriptions")
    await watched.visit("subscription", f"/console/subscriptions/{scene.subscription_id}")
    await page.get_by_role("button", name="Disable").click()
    await expect(page.get_by_role("status")).to_contain_text("Disabled")
    await page.get_by_role("button", name="Enable").click()
    await expect(page.get_by_role("status")).to_contain_text("Enabled")
    await page.get_by_label("Replay its failed and expired invocations").fill("2000-01-01T00:00")
    await page.get_by_role("button", name="Replay failures").click()
    await expect(page.get_by_role("status")).to_contain_text("Replayed")
    await page.set_viewport_size({"width": 390, "height": 844})  # a phone
    await watched.visit("invocations-phone", "/console/invocations")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone: {width}px wide"
    # The table refreshes itself while the page is open.
    rows = page.locator("#live tbody tr")
    before = await rows.count()
    await scene.gateway.start("console:notify", {"n": "live"})
    await expect(rows).to_have_count(before + 1, timeout=10_000)


@in_one_browser
async def test_a_wrong_secret_is_refused(watched: Watched) -> None:
    await sign_in(watched, "not-the-secret")
    await expect(watched.page.get_by_role("alert")).to_contain_text("wrong client secret")
    await watched.page.screenshot(path=ARTIFACTS / "login-refused.png")
    assert watched.page.url.endswith("/console/login")
    await watched.page.goto(watched.scene.gateway.settings.public_url + "/console/invocations")
    assert watched.page.url.endswith("/console/login")
    # The browser logs the 401 answer itself as a console error: that one is expected.
    watched.errors = [e for e in watched.errors if "401" not in e]
