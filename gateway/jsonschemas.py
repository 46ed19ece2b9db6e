"""JSON Schema checks for trigger inputs and subscriber outputs (the jsonschema library)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema import exceptions, validators
from jsonschema.protocols import Validator

MAX_REPORTED_ERRORS = 10


def check_schema(schema: dict[str, Any]) -> list[str]:
    """Problems that make ``schema`` unusable as a JSON Schema (empty when it is fine)."""
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    return [_describe(err) for err in cls(cls.META_SCHEMA).iter_errors(schema)][:MAX_REPORTED_ERRORS]


def validate(schema: dict[str, Any] | None, instance: Any) -> list[str]:
    """Why ``instance`` does not satisfy ``schema``: one line per problem, naming the field."""
    if schema is None:
        return []
    validator = _validator(json.dumps(schema, sort_keys=True))
    errors = sorted(validator.iter_errors(instance), key=exceptions.relevance)
    return [_describe(err) for err in errors[:MAX_REPORTED_ERRORS]]


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Validator:
    schema = json.loads(schema_text)
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    return cls(schema)


def _describe(err: exceptions.ValidationError) -> str:
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    message = err.message if len(err.message) <= 300 else err.message[:300] + "…"
    return f"{where}: {message}"
