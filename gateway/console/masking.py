"""What the console shows of an invocation's input and output: values under names that hold
secrets (passwords, tokens, keys, credentials) masked, at any depth."""

from __future__ import annotations

import json
import re
from typing import Any

MASK = "••••••"
SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|secret|token|credential|authori[sz]ation|api[-_]?key|private[-_]?key"
    r"|access[-_]?key|cookie|session|signature|^key$",
    re.IGNORECASE,
)
MAX_DEPTH = 50


def masked(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        return MASK  # deeper than any document the gateway accepts; shown as hidden, not walked
    if isinstance(value, dict):
        return {
            key: MASK if SECRET_NAME.search(str(key)) else masked(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [masked(item, depth + 1) for item in value]
    return value


# A JSON member's name and its colon, in text that may be cut short (a response excerpt).
_MEMBER_NAME = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:')


def masked_text(text: str) -> str:
    """A subscriber's answer as recorded (an excerpt, perhaps cut short): as JSON, masked as
    above; otherwise shown up to the first secret-looking member name, the rest hidden (in
    text that is not whole JSON, where a value under it ends cannot be known)."""
    try:
        return json.dumps(masked(json.loads(text)), ensure_ascii=False)
    except ValueError:
        pass
    for member in _MEMBER_NAME.finditer(text):
        if SECRET_NAME.search(member.group(1)):
            return f"{text[: member.end()]} {MASK} (the rest is hidden)"
    return text
