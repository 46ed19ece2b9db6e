"""JSON Schema checks for trigger inputs and subscriber outputs (the jsonschema library),
with their cost bounded, since every input a producer sends and every output a subscriber
answers is checked:

- Regexes (``pattern``, ``patternProperties``, and the ``additionalProperties`` and
  ``unevaluatedProperties`` that depend on them) run on RE2 (domain/regex.py): every module
  of jsonschema that imports ``re`` gets RE2's instead. A pattern RE2 cannot run is refused
  when the schema is saved.
- When a schema is saved, ``check_schema`` refuses one whose combinators (allOf, anyOf,
  oneOf, not, if/then/else, $ref) expand to more than MAX_EXPANSION subschemas at one place
  of an instance, or that refers to itself without descending into the instance (2^18
  subschemas from a 1.3 KB schema cost 7.3 s per check, and a $ref to itself never ends).
- A check counts its cost in steps as it runs (domain/json_schema_cost.py).
- Checking a schema against its metaschema when it is saved (``check_schema``) and checking
  an input or output (``check``) take up to INLINE_STEPS and INLINE_SECONDS on the event loop;
  one that needs more starts over in one of two threads with THREAD_STEPS, and one needing
  more still is refused, saying so. Uncounted, uniqueItems over 20,000 numbers and strings
  held the loop 48 s, over 3,000 objects 8.7 s; patternProperties over 5,000 keys 55 s; an
  enum of 50,000 over 1,000 items 34 s; checking {"required": [5,000 numbers and strings]}
  against its metaschema 2.8 s.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jsonschema import FormatChecker, exceptions, validators
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable

from gateway.domain import regex
from gateway.domain.json_schema_cost import BUDGET, Budget, TooCostly, metered

MAX_REPORTED_ERRORS = 10
MAX_EXPANSION = 1000
INLINE_STEPS = 2_000
INLINE_SECONDS = 0.02  # also bounds the event loop's share when the counts underestimate
THREAD_STEPS = 500_000

# Checks too costly for the event loop run here, two at a time.
_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="json-schema")


def _is_regex(value: object) -> bool:
    return not isinstance(value, str) or bool(regex.compile_pattern(value))


# The metaschemas say a pattern has "format": "regex"; only a format checker enforces it.
REGEX_FORMAT = FormatChecker(formats=())
REGEX_FORMAT.checks("regex", raises=regex.RegexError)(_is_regex)
# Without a registry of its own, jsonschema fetches remote $refs with urllib: a request to any
# URL (the SSRF guard never sees it) that blocks the event loop. An empty registry fetches
# nothing: a $ref outside the schema is refused when the trigger is saved.
NO_REMOTE_REFS: Registry[Any] = Registry()


async def check_schema(schema: dict[str, Any]) -> list[str]:
    """Problems that make ``schema`` unusable as a JSON Schema (empty when it is fine), found
    without holding the event loop, as ``check`` does."""
    found = await _within_budget(functools.partial(schema_problems, schema))
    if found is None:
        return [
            f"$: checking this schema against its metaschema takes more than {THREAD_STEPS:,} steps (a "
            "very large schema, or a large array whose items must be unique, such as required holding "
            "values that are not strings); simplify the schema"
        ]
    return found


def schema_problems(
    schema: dict[str, Any], steps: int = THREAD_STEPS, seconds: float | None = None
) -> list[str]:
    """``check_schema``'s problems. Raises TooCostly past ``steps`` (or ``seconds``); runs
    where it is called."""
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    meta = metered(cls)(cls.META_SCHEMA, format_checker=REGEX_FORMAT)
    token = BUDGET.set(Budget(steps, seconds))
    try:
        problems = [_describe(err) for err in itertools.islice(meta.iter_errors(schema), MAX_REPORTED_ERRORS)]
    finally:
        BUDGET.reset(token)
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


def problems(
    schema: dict[str, Any] | None, instance: Any, steps: int = THREAD_STEPS, seconds: float | None = None
) -> list[str]:
    """Why ``instance`` does not satisfy ``schema``: one line per problem, naming the field.
    Raises TooCostly past ``steps`` (or ``seconds``); runs where it is called (see ``check``)."""
    if schema is None:
        return []
    validator, recompiling = _validator(json.dumps(schema, sort_keys=True))
    token = BUDGET.set(Budget(steps, seconds, recompiling))
    try:
        errors = sorted(validator.iter_errors(instance), key=exceptions.relevance)
    except (Unresolvable, regex.RegexError, RecursionError) as exc:
        # A $ref to nowhere shows only when an instance reaches it (and a schema saved before
        # patterns and references were checked may hold a bad one): the schema's fault.
        reason = "it refers to itself without end" if isinstance(exc, RecursionError) else str(exc)
        return [f"$: the schema cannot be applied: {_shorten(reason)}"]
    finally:
        BUDGET.reset(token)
    return [_describe(err) for err in errors[:MAX_REPORTED_ERRORS]]


async def check(schema: dict[str, Any] | None, instance: Any) -> list[str]:
    """``problems``, without holding the event loop: a check needing more than INLINE_STEPS
    starts over in a thread; one needing more than THREAD_STEPS is a problem of its own."""
    found = await _within_budget(functools.partial(problems, schema, instance))
    if found is None:
        return [
            f"$: checking this against the schema takes more than {THREAD_STEPS:,} steps (large arrays "
            "under uniqueItems, or deeply combined allOf/anyOf/oneOf); send less, or simplify the schema"
        ]
    return found


async def _within_budget(run: Callable[[int, float | None], list[str]]) -> list[str] | None:
    """``run`` on the event loop within INLINE_STEPS and INLINE_SECONDS; past either, again
    from the start in a thread within THREAD_STEPS (the same answer, given the steps); None
    past those."""
    try:
        return run(INLINE_STEPS, INLINE_SECONDS)
    except TooCostly:
        pass
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_THREADS, run, THREAD_STEPS, None)
    except TooCostly:
        return None


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str) -> tuple[Validator, bool]:
    """The validator for a schema, and whether it has more patterns than regex.py caches."""
    schema = json.loads(schema_text)
    cls = metered(validators.validator_for(schema, default=validators.Draft202012Validator))
    return cls(schema, registry=NO_REMOTE_REFS), len(_patterns(schema)) > _REGEX_CACHE


_REGEX_CACHE = regex.compile_pattern.cache_parameters()["maxsize"] or 0


def _patterns(schema: Any) -> set[str]:
    """The patterns a schema may search with (additionalProperties joins patternProperties')."""
    found: set[str] = set()
    for node in _subschemas(schema):
        if isinstance(node.get("pattern"), str):
            found.add(node["pattern"])
        if isinstance(node.get("patternProperties"), dict):
            found.update(node["patternProperties"])
            found.add("|".join(node["patternProperties"]))
    return found


def _describe(err: exceptions.ValidationError) -> str:
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    if err.validator == "format" and err.cause is not None:  # an unusable regex: RE2's reason
        return f"{where}: {_shorten(str(err.cause))}"
    return f"{where}: {_shorten(err.message)}"


def _shorten(message: str) -> str:
    return message if len(message) <= 300 else message[:300] + "…"
