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


# A JSON member whose name looks secret, in text that may be cut short (a response excerpt).
_SECRET_MEMBER = re.compile(r'("([^"\\]|\\.)*"\s*:\s*)"([^"\\]|\\.)*("|$)')


def masked_text(text: str) -> str:
    """A subscriber's answer as recorded (an excerpt, perhaps cut short): as JSON, masked as
    above; otherwise each string member under a secret-looking name masked where it stands."""
    try:
        return json.dumps(masked(json.loads(text)), ensure_ascii=False)
    except ValueError:
        return _SECRET_MEMBER.sub(_mask_member, text)


def _mask_member(match: re.Match[str]) -> str:
    name_and_colon = match.group(1)
    return f'{name_and_colon}"{MASK}"' if SECRET_NAME.search(name_and_colon) else match.group(0)
