from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.gateway_client import GatewayClient
from tests.servers import Subscriber, bound_socket, serve

CLIENT_ID = "test-admin"
CLIENT_SECRET = "test-admin-secret-0123456789"


def make_settings(tmp_path: Path, public_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        "public_url": public_url,
        "secret_key": "test-secret-key-not-for-production",
        "bootstrap_client_id": CLIENT_ID,
        "bootstrap_client_secret": CLIENT_SECRET,
        "response_timeout": 2.0,
        "sweep_interval": 0.2,
        "dispatch_concurrency": 64,
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


@pytest.fixture
async def subscriber() -> AsyncIterator[Subscriber]:
    sub = Subscriber()
    async with serve(sub.app()) as url:
        sub.url = url
        yield sub


GatewayFactory = Callable[..., Any]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[GatewayClient]:
    """A gateway on a fresh SQLite file, served over real HTTP, with an admin token."""
    async with start_gateway(tmp_path) as client:
        yield client


def start_gateway(tmp_path: Path, **overrides: Any) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def running() -> AsyncIterator[GatewayClient]:
        sock = bound_socket()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = make_settings(tmp_path, url, **overrides)
        async with serve(create_app(settings), sock), httpx.AsyncClient(base_url=url, timeout=60) as http:
            client = GatewayClient(http, settings)
            await client.login(CLIENT_ID, CLIENT_SECRET)
            yield client

    return running()
