"""Strict JSON parsing: NaN, Infinity and out-of-range numbers are not JSON.

Python's json accepts them; stored, they could never be sent back (responses are strict
JSON), so every document from outside is parsed here.
"""

from __future__ import annotations

import json
import math
from typing import Any


def loads(data: bytes | str) -> Any:
    """Like json.loads, but raises ValueError for NaN, Infinity and numbers too large."""
    return json.loads(data, parse_constant=_not_json, parse_float=_finite)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value
