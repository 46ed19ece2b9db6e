"""The gateway's keys: access tokens, callback secrets, webhook tokens, credentials at rest.

Everything derives from GATEWAY_SECRET_KEY (a comma-separated list: the first key signs and
encrypts, every key verifies and decrypts, so keys rotate without breaking callbacks in flight).
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from itsdangerous import BadSignature, Signer, URLSafeSerializer, URLSafeTimedSerializer


class Undecryptable(ValueError):
    """A stored credential that no configured key decrypts (the key was changed without
    keeping the old one in the list)."""


@dataclass(frozen=True)
class TokenClaims:
    client_id: str
    scopes: frozenset[str]


def _claims(data: Any) -> TokenClaims | None:
    # Signed by a key of ours, but not a token of this shape (say, made by another version).
    subject, scopes = (data.get("sub"), data.get("scp")) if isinstance(data, dict) else (None, None)
    if not isinstance(subject, str) or not isinstance(scopes, list):
        return None
    if not all(isinstance(scope, str) for scope in scopes):
        return None
    return TokenClaims(client_id=subject, scopes=frozenset(scopes))


# Tokens name only existing clients and live an hour: few at once, but a bound all the same.
MAX_VERIFIED_TOKENS = 10_000
# Secrets of subscriptions (a signing secret, its predecessor, a credential, a URL's query).
MAX_DECRYPTED = 10_000


class Keys:
    """The gateway's signing and encryption keys, oldest first as itsdangerous expects."""

    def __init__(self, signing_keys: list[str]) -> None:
        self._callback = Signer(signing_keys, salt="trigger-gateway.callback")
        self._tokens = URLSafeTimedSerializer(signing_keys, salt="trigger-gateway.token")
        self._webhooks = URLSafeSerializer(signing_keys, salt="trigger-gateway.webhook")
        self._console = URLSafeTimedSerializer(signing_keys, salt="trigger-gateway.console")
        self._fernet = MultiFernet([_fernet(k) for k in reversed(signing_keys)])
        self._first = _fernet(signing_keys[-1])  # what encrypts
        self._verified: dict[bytes, tuple[TokenClaims, float]] = {}
        # Stored ciphertexts and what they decrypt to: in this process's memory only.
        self._decrypted: dict[str, str] = {}

    # Callback secrets are a signature over the invocation id: nothing to store or look up.
    def callback_secret(self, invocation_id: str) -> str:
        return self._callback.get_signature(invocation_id).decode()

    def check_callback_secret(self, invocation_id: str, secret: str) -> bool:
        return self._callback.verify_signature(invocation_id, secret.encode())

    def issue_token(self, client_id: str, scopes: frozenset[str]) -> str:
        return self._tokens.dumps({"sub": client_id, "scp": sorted(scopes)})

    def read_token(self, token: str, max_age: int) -> TokenClaims | None:
        # Verified once, then remembered until it expires: a client sends the same token on
        # every request, and checking its signature was a tenth of a status read's CPU. Keyed
        # by a digest, so that no lookup compares the token itself.
        digest = hashlib.sha256(token.encode()).digest()
        known = self._verified.get(digest)
        if known is not None and time.time() < known[1]:
            return known[0]
        try:
            data, signed_at = self._tokens.loads(token, max_age=max_age, return_timestamp=True)
        except BadSignature:  # also covers expired tokens
            return None
        claims = _claims(data)
        if claims is not None:
            if len(self._verified) >= MAX_VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[digest] = (claims, signed_at.timestamp() + max_age)
        return claims

    # A webhook token names its subscription and nonce, signed: it needs no lookup to reject.
    def webhook_token(self, subscription_id: str, nonce: str) -> str:
        return self._webhooks.dumps([subscription_id, nonce])

    def read_webhook_token(self, token: str) -> tuple[str, str] | None:
        try:
            data = self._webhooks.loads(token)
        except BadSignature:
            return None
        if not (isinstance(data, list) and len(data) == 2 and all(isinstance(v, str) for v in data)):
            return None
        return data[0], data[1]

    # The admin console's session cookie: its own salt, so that no other signed value of the
    # gateway (a token, a webhook token) can pass for a session.
    def seal_session(self, session: dict[str, str]) -> str:
        return self._console.dumps(session)

    def open_session(self, cookie: str, max_age: int) -> dict[str, str] | None:
        try:
            data = self._console.loads(cookie, max_age=max_age)
        except BadSignature:  # also covers expired sessions
            return None
        if not (isinstance(data, dict) and all(isinstance(v, str) for v in data.values())):
            return None
        return data

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        # Every delivery decrypts its subscription's signing secret (and credential): a
        # Fernet check and an AES decryption each time, 3 % of a SYNC round trip's CPU.
        known = self._decrypted.get(ciphertext)
        if known is not None:
            return known
        try:
            plain = self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise Undecryptable(
                "stored credential cannot be decrypted: was GATEWAY_SECRET_KEY changed "
                "without keeping the old key in the list?"
            ) from None
        if len(self._decrypted) >= MAX_DECRYPTED:
            self._decrypted.clear()
        self._decrypted[ciphertext] = plain
        return plain

    def decrypts(self, ciphertext: str) -> bool:
        try:
            self.decrypt(ciphertext)
        except Undecryptable:
            return False
        return True

    def reencrypted(self, ciphertext: str) -> str | None:
        """``ciphertext`` encrypted under the first key instead, or None if it already is (a
        rotation moves what is stored to the new key, so the old one can be dropped)."""
        try:
            self._first.decrypt(ciphertext.encode())
        except InvalidToken:
            pass
        else:
            return None
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise Undecryptable("stored credential cannot be decrypted by any key") from None


def _fernet(key: str) -> Fernet:
    derived = hashlib.sha256(b"trigger-gateway.credentials:" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))
