"""Checking a delivery's Standard Webhooks signature, as a subscriber does.

The signature itself is computed by gateway/domain/signing.py (pure standard library), the
module the gateway signs with: one definition of what is signed, on both sides.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta

from gateway.domain.signing import signature

# Standard Webhooks' default: a captured delivery cannot be replayed later than this.
TOLERANCE = timedelta(minutes=5)


class SignatureError(ValueError):
    """The delivery is not proven to come from the gateway; the message says why."""


def verify(
    headers: Mapping[str, str],
    body: bytes | str,
    secrets: str | Sequence[str],
    *,
    tolerance: timedelta = TOLERANCE,
    now: float | None = None,
) -> None:
    """Return if one of ``secrets`` signed ``body`` within ``tolerance`` of ``now``; else raise
    SignatureError. Several secrets: during a rotation, the old and the new one both verify."""
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    if not candidates:
        raise ValueError("verify needs at least one signing secret")
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id, stamp, signatures = (
        lowered.get(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    if not (message_id and stamp and signatures):
        raise SignatureError("unsigned: webhook-id, webhook-timestamp and webhook-signature are required")
    # Unix seconds (10 digits until 2286): more digits would overflow the float arithmetic.
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise SignatureError(f"webhook-timestamp is not Unix seconds: {stamp[:40]!r}")
    sent = int(stamp)
    skew = (time.time() if now is None else now) - sent
    if abs(skew) > tolerance.total_seconds():
        raise SignatureError(f"webhook-timestamp is {abs(skew):.0f} s {'old' if skew > 0 else 'ahead'}")
    raw = body.encode() if isinstance(body, str) else body
    offered = [entry.encode() for entry in signatures.split() if entry.startswith("v1,")]
    for secret in candidates:
        try:
            expected = signature(secret, message_id, sent, raw).encode()
        except ValueError:  # binascii.Error: not base64
            raise ValueError("a signing secret is not whsec_<base64>") from None
        # Every offered signature is compared, each in constant time.
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return
    raise SignatureError("no signature matches: a wrong secret, or a body changed on its way")
