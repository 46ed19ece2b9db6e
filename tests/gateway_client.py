"""A thin client for driving the gateway over HTTP in tests, as a user would."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from gateway.settings import Settings


class Polls:
    """Waiting for an invocation's status, over whatever reads it (HTTP, or the use cases)."""

    async def status(self, invocation_id: str, wait: float = 0) -> dict[str, Any]:
        raise NotImplementedError

    async def final_status(self, invocation_id: str, within: float = 15) -> dict[str, Any]:
        """Long-poll until the invocation reaches a terminal state."""
        async with asyncio.timeout(within):
            while True:
                status = await self.status(invocation_id, wait=min(within, 30))
                if status["completed"] is not None:
                    return status

    async def reach(self, invocation_id: str, status: str, within: float = 5) -> None:
        """Poll until the invocation is in ``status`` (long-polls only wait for the end)."""
        async with asyncio.timeout(within):
            while (await self.status(invocation_id))["status"] != status:  # noqa: ASYNC110
                await asyncio.sleep(0.02)


class GatewayClient(Polls):
    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: Settings,
        *,
        worker_pid: int | None = None,
        worker_log: Path | None = None,
    ) -> None:
        self.http = http
        self.settings = settings
        self.signing_secrets: dict[str, str] = {}
        # Distributed: the process that delivers, and the file its output goes to.
        self.worker_pid = worker_pid
        self.worker_log = worker_log

    async def login(self, client_id: str, client_secret: str) -> None:
        response = await self.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
        )
        assert response.status_code == 200, response.text
        self.http.headers["authorization"] = f"Bearer {response.json()['access_token']}"

    async def create_trigger(self, trigger_id: str = "test:approver", **fields: Any) -> dict[str, Any]:
        body = {"id": trigger_id, "name": "Approver", "type": "REQUEST_RESPONSE", **fields}
        response = await self.http.post("/beta/triggers", json=body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    async def subscribe(self, trigger_id: str, url: str, mode: str = "SYNC", **fields: Any) -> dict[str, Any]:
        body = {
            "triggerId": trigger_id,
            "name": fields.pop("name", f"sub {mode} {url.rsplit('/', 1)[-1]}"),
            "httpConfig": {"url": url, "httpDispatchMode": mode, **fields.pop("httpConfig", {})},
            **fields,
        }
        response = await self.http.post("/beta/trigger-subscriptions", json=body)
        assert response.status_code == 201, response.text
        document: dict[str, Any] = response.json()
        # Shown only in this answer: kept aside, so the document is what GET shows.
        self.signing_secrets[document["id"]] = document.pop("signingSecret")
        return document

    async def start(self, trigger_id: str, input: dict[str, Any], **fields: Any) -> list[dict[str, Any]]:
        response = await self.http.post(
            "/beta/trigger-invocations/start", json={"triggerId": trigger_id, "input": input, **fields}
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def status(self, invocation_id: str, wait: float = 0) -> dict[str, Any]:
        response = await self.http.get(
            f"/beta/trigger-invocations/{invocation_id}/status", params={"waitSeconds": wait}
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def complete(self, callback_url: str, body: dict[str, Any]) -> httpx.Response:
        # Callbacks carry no access token: send them without the admin's header.
        async with httpx.AsyncClient() as anonymous:
            return await anonymous.post(callback_url, json=body)
