"""JSON Schema checks for trigger inputs and subscriber outputs (the jsonschema library)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from jsonschema import FormatChecker, exceptions, validators
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable

MAX_REPORTED_ERRORS = 10


# The metaschemas say a pattern has "format": "regex"; only a format checker enforces it.
REGEX_FORMAT = FormatChecker(formats=["regex"])
# Without a registry of its own, jsonschema fetches remote $refs with urllib: a request to any
# URL (the SSRF guard never sees it) that blocks the event loop. An empty registry fetches
# nothing: a $ref outside the schema is refused when the trigger is saved.
NO_REMOTE_REFS: Registry[Any] = Registry()


def check_schema(schema: dict[str, Any]) -> list[str]:
    """Problems that make ``schema`` unusable as a JSON Schema (empty when it is fine)."""
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    meta = cls(cls.META_SCHEMA, format_checker=REGEX_FORMAT)
    problems = [_describe(err) for err in meta.iter_errors(schema)]
    problems += [
        f"$ref {ref!r}: only references within the schema (#...) are allowed" for ref in _remote_refs(schema)
    ]
    return problems[:MAX_REPORTED_ERRORS]


def _remote_refs(value: Any) -> list[str]:
    """Every $ref that does not point into the schema itself."""
    if isinstance(value, list):
        return [ref for item in value for ref in _remote_refs(item)]
    if not isinstance(value, dict):
        return []
    refs = [ref for key, ref in value.items() if key in ("$ref", "$dynamicRef") and isinstance(ref, str)]
    own = [ref for ref in refs if not ref.startswith("#")]
    return own + [ref for child in value.values() for ref in _remote_refs(child)]


def validate(schema: dict[str, Any] | None, instance: Any) -> list[str]:
    """Why ``instance`` does not satisfy ``schema``: one line per problem, naming the field."""
    if schema is None:
        return []
    validator = _validator(json.dumps(schema, sort_keys=True))
    try:
        errors = sorted(validator.iter_errors(instance), key=exceptions.relevance)
    except (Unresolvable, re.error) as exc:
        # A $ref to nowhere shows only when an instance reaches it (and a schema saved before
        # patterns were checked may hold a bad one): the schema's fault, not the server's.
        return [f"$: the schema cannot be applied: {_shorten(str(exc))}"]
    return [_describe(err) for err in errors[:MAX_REPORTED_ERRORS]]


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Validator:
    schema = json.loads(schema_text)
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    return cls(schema, registry=NO_REMOTE_REFS)


def _describe(err: exceptions.ValidationError) -> str:
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    return f"{where}: {_shorten(err.message)}"


def _shorten(message: str) -> str:
    return message if len(message) <= 300 else message[:300] + "…"
