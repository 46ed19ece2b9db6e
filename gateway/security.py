"""Secrets: client secret hashes, access tokens, callback secrets, credentials at rest.

Everything derives from GATEWAY_SECRET_KEY (a comma-separated list: the first key signs and
encrypts, every key verifies and decrypts, so keys rotate without breaking callbacks in flight).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from itsdangerous import BadSignature, Signer, URLSafeSerializer, URLSafeTimedSerializer

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${salt.hex()}${digest.hex()}"


# scrypt is slow on purpose (~50 ms): two at a time, in threads of their own, so checking
# client secrets never delays deliveries, callbacks or long-polls on the event loop.
_SCRYPT_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="scrypt")


async def hash_secret_async(secret: str) -> str:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_SCRYPT_THREADS, hash_secret, secret)


async def verify_secret_async(secret: str, stored: str) -> bool:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_SCRYPT_THREADS, verify_secret, secret, stored)


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt_hex), n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return hmac.compare_digest(digest, bytes.fromhex(digest_hex))


@dataclass(frozen=True)
class TokenClaims:
    client_id: str
    scopes: frozenset[str]


class Keys:
    """The gateway's signing and encryption keys, oldest first as itsdangerous expects."""

    def __init__(self, signing_keys: list[str]) -> None:
        self._callback = Signer(signing_keys, salt="trigger-gateway.callback")
        self._tokens = URLSafeTimedSerializer(signing_keys, salt="trigger-gateway.token")
        self._webhooks = URLSafeSerializer(signing_keys, salt="trigger-gateway.webhook")
        self._fernet = MultiFernet([_fernet(k) for k in reversed(signing_keys)])

    # Callback secrets are a signature over the invocation id: nothing to store or look up.
    def callback_secret(self, invocation_id: str) -> str:
        return self._callback.get_signature(invocation_id).decode()

    def check_callback_secret(self, invocation_id: str, secret: str) -> bool:
        return self._callback.verify_signature(invocation_id, secret.encode())

    def issue_token(self, client_id: str, scopes: frozenset[str]) -> str:
        return self._tokens.dumps({"sub": client_id, "scp": sorted(scopes)})

    def read_token(self, token: str, max_age: int) -> TokenClaims | None:
        try:
            data = self._tokens.loads(token, max_age=max_age)
        except BadSignature:  # also covers expired tokens
            return None
        if not isinstance(data, dict):
            return None
        return TokenClaims(client_id=str(data["sub"]), scopes=frozenset(data["scp"]))

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

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise ValueError(
                "stored credential cannot be decrypted: was GATEWAY_SECRET_KEY changed "
                "without keeping the old key in the list?"
            ) from None


def _fernet(key: str) -> Fernet:
    derived = hashlib.sha256(b"trigger-gateway.credentials:" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))
