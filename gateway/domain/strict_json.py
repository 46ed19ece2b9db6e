"""Strict JSON parsing: NaN, Infinity, out-of-range numbers, deep nesting and text that is
not Unicode are refused.

Python's json accepts the first three; stored, they could never be sent back (responses are
strict JSON), so every document from outside is parsed here. Deeply nested documents would
exhaust the recursion of every later step (schema checks, filters, the database's JSON). A
lone surrogate ("\ud800") is valid JSON syntax but not Unicode: stored, it could not be
encoded in an answer, and every read of its row failed. A NUL character ("\u0000") is valid
in both, but PostgreSQL stores it in no text or JSON column: the write failed, a 500.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64


# An escaped UTF-16 surrogate: a lone one (not part of a pair) is not Unicode.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class Refused(ValueError):
    """Well-formed JSON that the gateway still refuses; the message says why."""


class TooDeep(Refused):
    def __init__(self) -> None:
        super().__init__(f"the JSON document is nested deeper than {MAX_DEPTH} levels")


class NotUnicode(Refused):
    def __init__(self) -> None:
        super().__init__("the JSON document is not valid Unicode (UTF-8 text without lone surrogates)")


class HasNul(Refused):
    def __init__(self) -> None:
        super().__init__(
            "the JSON document holds a NUL character (\\u0000), which the gateway cannot store; remove it"
        )


def loads(data: bytes | str) -> Any:
    """Like json.loads, but raises ValueError for NaN, Infinity and numbers too large, and
    Refused for documents nested deeper than MAX_DEPTH or that are not Unicode."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise NotUnicode from None
    try:
        value = json.loads(data, parse_constant=_not_json, parse_float=_finite)
    except RecursionError:
        raise TooDeep from None
    # Fewer brackets than the limit (those in strings included) cannot nest past it.
    if data.count("[") + data.count("{") > MAX_DEPTH:
        _check_depth(value)
    if _SURROGATE_ESCAPE.search(data) or "\\u0000" in data:
        _check_strings(value)
    return value


def _check_strings(value: Any) -> None:
    """Every string (keys too) encodes as UTF-8 (escaped surrogates pair up) and holds no NUL."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise HasNul
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise NotUnicode from None
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


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
