"""Checking a client's secret (usecases/api_clients.py): the same work whoever asks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.domain.clock import utcnow
from gateway.domain.model import ApiClient
from gateway.usecases import api_clients
from gateway.usecases.api_clients import WrongSecret
from tests.usecases.driver import Driver


async def test_every_check_hashes_twice_whether_the_client_exists_rotated_or_not(app: Driver) -> None:
    client, secret = await api_clients.create(app.rt, "plain-client", ["invocations:read"])
    rotating, _ = await api_clients.create(app.rt, "rotating-client", ["invocations:read"])
    rotating, new_secret = await api_clients.rotate_secret(app.rt, "rotating-client")
    assert rotating.previous_secret_hash is not None  # inside its grace period
    for hashes in ([], api_clients.secret_hashes(client), api_clients.secret_hashes(rotating)):
        checked = await api_clients.hashes_to_check(hashes)
        assert len(checked) == 2 and checked[: len(hashes)] == hashes
    assert len(api_clients.secret_hashes(rotating)) == 2
    # And the checks still tell the right secrets from the wrong ones.
    assert await api_clients.authenticate(app.rt, "plain-client", secret) == {"invocations:read"}
    assert await api_clients.authenticate(app.rt, "rotating-client", new_secret) == {"invocations:read"}
    for client_id, guess in (("plain-client", "guess"), ("nobody", secret), ("rotating-client", secret)):
        with pytest.raises(WrongSecret):
            await api_clients.authenticate(app.rt, client_id, guess)


def test_a_rotated_out_secret_works_only_within_its_grace() -> None:
    client = ApiClient(
        client_id="c",
        secret_hash="new",
        previous_secret_hash="old",
        previous_secret_expires=utcnow() - timedelta(seconds=1),
        scopes="",
        created=utcnow(),
    )
    assert api_clients.secret_hashes(client) == ["new"]
    client.previous_secret_expires = utcnow() + timedelta(hours=1)
    assert api_clients.secret_hashes(client) == ["new", "old"]
