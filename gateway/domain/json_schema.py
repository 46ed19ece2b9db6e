"""JSON Schema checks for trigger inputs and subscriber outputs (the jsonschema library),
with their cost bounded, since every input a producer sends and every output a subscriber
answers is checked:

- Regexes (``pattern``, ``patternProperties``) run on RE2 (domain/regex.py): a pattern RE2
  cannot run is refused when the schema is saved.
- When a schema is saved, ``check_schema`` refuses one whose combinators (allOf, anyOf,
  oneOf, not, if/then/else, $ref) expand to more than MAX_EXPANSION subschemas at one place
  of an instance, or that refers to itself without descending into the instance (2^18
  subschemas from a 1.3 KB schema cost 7.3 s per check, and a $ref to itself never ends).
- A check counts its steps (each keyword applied; uniqueItems counts the comparisons it may
  make; about 116,000 steps a second here). ``check`` takes INLINE_STEPS on the event loop
  (at most 20 ms), then starts over in a thread with THREAD_STEPS (4 s); one that needs
  more fails, saying so (uniqueItems on 3,000 objects held the loop for 8.7 s).
"""

from __future__ import annotations

import asyncio
import json
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import jsonschema._keywords
import jsonschema._utils
from jsonschema import FormatChecker, exceptions, validators
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable

from gateway.domain import regex

MAX_REPORTED_ERRORS = 10
MAX_EXPANSION = 1000
INLINE_STEPS = 2_000
THREAD_STEPS = 500_000

# jsonschema runs pattern and patternProperties (and the additionalProperties and
# unevaluatedProperties that depend on them) with its modules' `re.search`: RE2's instead.
_RE2 = types.SimpleNamespace(search=lambda pattern, text: regex.compile_pattern(pattern).search(text))
for _module in (jsonschema._keywords, jsonschema._utils):
    setattr(_module, "re", _RE2)  # noqa: B010 - mypy knows no `re` attribute there


def _is_regex(value: object) -> bool:
    return not isinstance(value, str) or bool(regex.compile_pattern(value))


# The metaschemas say a pattern has "format": "regex"; only a format checker enforces it.
REGEX_FORMAT = FormatChecker(formats=())
REGEX_FORMAT.checks("regex", raises=regex.RegexError)(_is_regex)
# Without a registry of its own, jsonschema fetches remote $refs with urllib: a request to any
# URL (the SSRF guard never sees it) that blocks the event loop. An empty registry fetches
# nothing: a $ref outside the schema is refused when the trigger is saved.
NO_REMOTE_REFS: Registry[Any] = Registry()


class TooCostly(Exception):
    """A check that would take more steps than its budget."""


class _Budget:
    __slots__ = ("left",)

    def __init__(self, steps: int) -> None:
        self.left = steps

    def spend(self, steps: int = 1) -> None:
        self.left -= steps
        if self.left < 0:
            raise TooCostly


_BUDGET: ContextVar[_Budget] = ContextVar("json_schema_budget")
# Checks too costly for the event loop run here, two at a time.
_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="json-schema")


def check_schema(schema: dict[str, Any]) -> list[str]:
    """Problems that make ``schema`` unusable as a JSON Schema (empty when it is fine)."""
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    meta = cls(cls.META_SCHEMA, format_checker=REGEX_FORMAT)
    problems = [_describe(err) for err in meta.iter_errors(schema)]
    problems += [
        f"$ref {ref!r}: only references within the schema (#...) are allowed" for ref in _remote_refs(schema)
    ]
    if not problems:
        problems += _expansion_problems(schema)
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


# Keywords that apply their subschemas to the same place of the instance (not below it).
_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_IN_PLACE_ONE = ("not", "if", "then", "else", "$ref", "$dynamicRef")


class _Endless(Exception):
    def __init__(self, keyword: str) -> None:
        self.keyword = keyword


def _expansion_problems(schema: dict[str, Any]) -> list[str]:
    """How many subschemas apply at one place of an instance, at the place where most do."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(node: Any, keyword: str) -> int:
        if not isinstance(node, dict):
            return 1
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in visiting:
            raise _Endless(keyword)
        visiting.add(id(node))
        total = 1
        for name, child in _in_place(schema, node):
            total = min(total + size(child, name), MAX_EXPANSION + 1)
        visiting.discard(id(node))
        sizes[id(node)] = total
        return total

    try:
        largest = max((size(node, "") for node in _subschemas(schema)), default=1)
    except _Endless as endless:
        return [f"$: the schema refers to itself through {endless.keyword} without descending into the input"]
    if largest > MAX_EXPANSION:
        return [
            f"$: allOf, anyOf, oneOf, not, if/then/else and $ref expand to more than {MAX_EXPANSION} "
            "subschemas at one place of the input; simplify them"
        ]
    return []


def _in_place(root: dict[str, Any], node: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for name in _IN_PLACE_LISTS:
        children = node.get(name)
        if isinstance(children, list):
            yield from ((name, child) for child in children)
    for name in _IN_PLACE_ONE:
        child = node.get(name)
        if name in ("$ref", "$dynamicRef"):
            if isinstance(child, str):
                yield name, _pointed(root, child)
        elif child is not None:
            yield name, child


def _pointed(root: dict[str, Any], ref: str) -> Any:
    """What a "#/..." reference points at in ``root`` (None when it is not such a pointer)."""
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None  # anchors and $id-relative references: bounded at run time
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _subschemas(value: Any) -> Iterator[dict[str, Any]]:
    """Every object in the schema document (some are not subschemas; counting them is harmless)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def problems(schema: dict[str, Any] | None, instance: Any, steps: int = THREAD_STEPS) -> list[str]:
    """Why ``instance`` does not satisfy ``schema``: one line per problem, naming the field.
    Raises TooCostly past ``steps``; runs where it is called (see ``check``)."""
    if schema is None:
        return []
    validator = _validator(json.dumps(schema, sort_keys=True))
    token = _BUDGET.set(_Budget(steps))
    try:
        errors = sorted(validator.iter_errors(instance), key=exceptions.relevance)
    except (Unresolvable, regex.RegexError, RecursionError) as exc:
        # A $ref to nowhere shows only when an instance reaches it (and a schema saved before
        # patterns and references were checked may hold a bad one): the schema's fault.
        reason = "it refers to itself without end" if isinstance(exc, RecursionError) else str(exc)
        return [f"$: the schema cannot be applied: {_shorten(reason)}"]
    finally:
        _BUDGET.reset(token)
    return [_describe(err) for err in errors[:MAX_REPORTED_ERRORS]]


async def check(schema: dict[str, Any] | None, instance: Any) -> list[str]:
    """``problems``, without holding the event loop: a check needing more than INLINE_STEPS
    starts over in a thread; one needing more than THREAD_STEPS is a problem of its own."""
    try:
        return problems(schema, instance, INLINE_STEPS)
    except TooCostly:
        pass
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_THREADS, problems, schema, instance, THREAD_STEPS)
    except TooCostly:
        return [
            f"$: checking this against the schema takes more than {THREAD_STEPS:,} steps (large arrays "
            "under uniqueItems, or deeply combined allOf/anyOf/oneOf); send less, or simplify the schema"
        ]


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Validator:
    schema = json.loads(schema_text)
    cls = _metered(validators.validator_for(schema, default=validators.Draft202012Validator))
    return cls(schema, registry=NO_REMOTE_REFS)


@lru_cache(maxsize=8)
def _metered(cls: type[Validator]) -> type[Validator]:
    """``cls`` with every keyword spending a step of the current check's budget."""
    keywords = {name: _spending(name, check) for name, check in cls.VALIDATORS.items()}
    metered: type[Validator] = validators.extend(cls, keywords)  # type: ignore[no-untyped-call]
    return metered


Keyword = Callable[[Any, Any, Any, Any], Any]


def _spending(name: str, keyword: Keyword) -> Keyword:
    def spend(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        budget = _BUDGET.get()
        budget.spend()
        # uniqueItems compares items that are objects or arrays pairwise (they cannot be sorted).
        if name == "uniqueItems" and value and isinstance(instance, list) and _containers(instance):
            budget.spend(len(instance) * len(instance) // 2)
        return keyword(validator, value, instance, schema)

    return spend


def _containers(items: list[Any]) -> bool:
    return any(isinstance(item, dict | list) for item in items)


def _describe(err: exceptions.ValidationError) -> str:
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    if err.validator == "format" and err.cause is not None:  # an unusable regex: RE2's reason
        return f"{where}: {_shorten(str(err.cause))}"
    return f"{where}: {_shorten(err.message)}"


def _shorten(message: str) -> str:
    return message if len(message) <= 300 else message[:300] + "…"
