"""Strict JSON parsing: NaN, Infinity, out-of-range numbers and deep nesting are refused.

Python's json accepts the first three; stored, they could never be sent back (responses are
strict JSON), so every document from outside is parsed here. Deeply nested documents would
exhaust the recursion of every later step (schema checks, filters, the database's JSON).
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64


class TooDeep(ValueError):
    def __init__(self) -> None:
        super().__init__(f"the JSON document is nested deeper than {MAX_DEPTH} levels")


def loads(data: bytes | str) -> Any:
    """Like json.loads, but raises ValueError for NaN, Infinity, numbers too large and
    documents nested deeper than MAX_DEPTH."""
    try:
        value = json.loads(data, parse_constant=_not_json, parse_float=_finite)
    except RecursionError:
        raise TooDeep from None
    # Fewer brackets than the limit (those in strings included) cannot nest past it.
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    if text.count("[") + text.count("{") > MAX_DEPTH:
        _check_depth(value)
    return value


def _check_depth(value: Any) -> None:
    # Level by level, so the cost is one pass over the containers, without recursion.
    level = [value]
    for _ in range(MAX_DEPTH):
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, dict | list)
        ]
        if not level:
            return
    raise TooDeep


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value
