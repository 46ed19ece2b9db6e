"""What domain/keys.py remembers: a verified access token until it expires, and no longer;
what a stored ciphertext decrypts to, and nothing for one it cannot decrypt."""

from __future__ import annotations

import time

import pytest

from gateway.domain.keys import Keys, TokenClaims, Undecryptable


def test_a_remembered_token_still_expires_and_a_forged_one_is_never_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = Keys(["k" * 32])
    token = keys.issue_token("client-a", frozenset({"invocations:read"}))
    claims = TokenClaims("client-a", frozenset({"invocations:read"}))
    assert keys.read_token(token, 60) == claims
    assert keys.read_token(token, 60) == claims  # remembered

    issued = time.time()
    monkeypatch.setattr(time, "time", lambda: issued + 61)
    assert keys.read_token(token, 60) is None  # remembered, but expired all the same

    monkeypatch.undo()
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert keys.read_token(forged, 60) is None
    assert keys.read_token(forged, 60) is None
    assert Keys(["o" * 32]).read_token(token, 60) is None  # another key's cache knows nothing of it


def test_a_decrypted_secret_is_remembered_and_an_undecryptable_one_still_refused() -> None:
    old, new = Keys(["o" * 32]), Keys(["n" * 32, "o" * 32])
    stored = old.encrypt("signing secret")
    assert new.decrypt(stored) == new.decrypt(stored) == "signing secret"
    assert new.decrypt(new.encrypt("signing secret")) == "signing secret"  # another ciphertext
    only_new = Keys(["n" * 32])
    for _ in range(2):
        with pytest.raises(Undecryptable):
            only_new.decrypt(stored)
