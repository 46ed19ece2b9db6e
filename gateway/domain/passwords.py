"""Client secrets are stored only as scrypt hashes; checking one costs about 50 ms on purpose.

The checks run in threads of their own, two at a time, so a flood of token requests never
delays deliveries, callbacks or long-polls on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from concurrent.futures import ThreadPoolExecutor

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${salt.hex()}${digest.hex()}"


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
