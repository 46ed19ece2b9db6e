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
- A check counts its cost in steps, a step being about what applying a keyword costs (3 to 8
  microseconds here). A step is each keyword applied and each subschema applied (one naming
  another draft in "$schema" too), and each error (plus its message's length over 128: it
  quotes values). A quarter step is each value compared (uniqueItems, enum, const; an object
  or array counts three) or counted to size one, and each item or property a keyword goes
  through in Python. A 64th of a step is each entry of a keyword's value or a subschema. A
  regex search is half a step plus the bytes searched times the RE2 program's size over 256
  (RE2 is linear in the text, times the program at worst: "a(a|b){500}c" takes 8.5 s over
  1 MiB), plus a compile's cost when the schema has more patterns than regex.py caches.
  uniqueItems compares each item with its neighbour once sorted when all are strings or all
  numbers (as jsonschema's ``_utils.uniq`` does), else each with every other: n(n-1)/2 pairs.
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
import re
import sys
import time
import types
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any

import jsonschema._format
import jsonschema._keywords
import jsonschema._legacy_keywords
import jsonschema._utils
import jsonschema.exceptions
from jsonschema import FormatChecker, exceptions, validators
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable

from gateway.domain import regex

MAX_REPORTED_ERRORS = 10
MAX_EXPANSION = 1000
INLINE_STEPS = 2_000
INLINE_SECONDS = 0.02  # also bounds the event loop's share when the counts underestimate
THREAD_STEPS = 500_000

# Costs are counted in ticks, TICKS_PER_STEP to a step: a tick is about a cheap operation in C
# (a key looked up), _VALUE ticks one in Python (two values compared, a property gone through).
TICKS_PER_STEP = 64
_VALUE = 16
_REGEX_WORK = 4  # bytes searched times RE2 program instructions, per tick


class TooCostly(Exception):
    """A check that would take more steps than its budget."""


class _Budget:
    __slots__ = ("deadline", "left", "recompiling")

    def __init__(self, steps: int, seconds: float | None = None, recompiling: bool = False) -> None:
        self.left = steps * TICKS_PER_STEP
        self.deadline = None if seconds is None else time.perf_counter() + seconds
        # With more patterns than regex.py's cache holds, a search may compile its pattern again.
        self.recompiling = recompiling

    def spend(self, ticks: int) -> None:
        self.left -= ticks
        if self.left < 0 or (self.deadline is not None and time.perf_counter() > self.deadline):
            raise TooCostly


_BUDGET: ContextVar[_Budget] = ContextVar("json_schema_budget")
# Checks too costly for the event loop run here, two at a time.
_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="json-schema")


# --- What jsonschema does that its keywords do not show: regexes and evaluated properties ---


def _search(pattern: str, text: str) -> regex.Match | None:
    budget = _BUDGET.get(None)
    if budget is not None:  # None outside a check
        size = len(text) if text.isascii() else 4 * len(text)  # RE2 searches UTF-8
        ticks = TICKS_PER_STEP // 2 + size * _program_size(pattern) // _REGEX_WORK
        if budget.recompiling:
            ticks += 2 * TICKS_PER_STEP + len(pattern) // 4
        budget.spend(ticks)
    return regex.compile_pattern(pattern).search(text)


@functools.lru_cache(maxsize=1024)
def _program_size(pattern: str) -> int:
    compiled = regex.compile_pattern(pattern)
    return max(getattr(compiled, "programsize", 1), getattr(compiled, "reverseprogramsize", 1))


def _compile(pattern: str) -> regex.Pattern:
    try:
        return regex.compile_pattern(pattern)
    except regex.RegexError as exc:
        raise re.error(str(exc)) from None  # what jsonschema's "regex" format catches


# jsonschema's modules call `re.search` (pattern, patternProperties, additionalProperties,
# unevaluatedProperties, draft 2019-09's too) and `re.compile` (the "regex" format): RE2's
# instead, in every module of jsonschema that imported `re`.
_RE2 = types.SimpleNamespace(search=_search, compile=_compile, error=re.error)
for _name, _module in list(sys.modules.items()):
    if _name.partition(".")[0] == "jsonschema" and getattr(_module, "re", None) is re:
        setattr(_module, "re", _RE2)  # noqa: B010 - mypy knows no `re` attribute there

Find = Callable[[Any, Any, Any], list[Any]]


def _charging(find: Find) -> Find:
    """jsonschema's search for what unevaluatedProperties/Items must skip, counted: at each
    subschema it goes through the input's properties (or items) several times in Python."""

    def charged(validator: Any, instance: Any, schema: Any) -> list[Any]:
        budget = _BUDGET.get(None)
        if budget is not None:
            budget.spend(TICKS_PER_STEP + _VALUE * _length(instance))
        return find(validator, instance, schema)

    return charged


class _Evaluated(list[Any]):
    """The property names or item indexes a schema evaluated, as jsonschema lists them, but
    looked up in constant time: unevaluatedProperties looks up each property of the input in
    that list (100,000 properties in a list of 100,000 would take minutes)."""

    def __init__(self, members: Iterable[Any]) -> None:
        super().__init__(members)
        self._members = set(self)

    def __contains__(self, member: object) -> bool:
        return member in self._members


def _evaluated(find: Find) -> Find:
    def evaluated(validator: Any, instance: Any, schema: Any) -> list[Any]:
        return _Evaluated(find(validator, instance, schema))

    return evaluated


for _find in ("find_evaluated_property_keys_by_schema", "find_evaluated_item_indexes_by_schema"):
    # Draft 2020-12's recurse through _utils' name, draft 2019-09's through _legacy_keywords'.
    _charged = _charging(getattr(jsonschema._utils, _find))
    setattr(jsonschema._utils, _find, _charged)
    setattr(jsonschema._keywords, _find, _evaluated(_charged))
    setattr(
        jsonschema._legacy_keywords, _find, _evaluated(_charging(getattr(jsonschema._legacy_keywords, _find)))
    )


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
    meta = _metered(cls)(cls.META_SCHEMA, format_checker=REGEX_FORMAT)
    token = _BUDGET.set(_Budget(steps, seconds))
    try:
        problems = [_describe(err) for err in itertools.islice(meta.iter_errors(schema), MAX_REPORTED_ERRORS)]
    finally:
        _BUDGET.reset(token)
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
    token = _BUDGET.set(_Budget(steps, seconds, recompiling))
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
    cls = _metered(validators.validator_for(schema, default=validators.Draft202012Validator))
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


# --- Counting: jsonschema's validator classes, with each keyword, subschema and error counted ---


@functools.cache
def _metered(cls: type[Validator]) -> type[Validator]:
    """``cls`` counting its steps against the current check's budget."""
    if getattr(cls, "_METERED", False):
        return cls
    metered: type[Validator] = validators.create(
        meta_schema=cls.META_SCHEMA,
        validators={name: _spending(name, keyword) for name, keyword in cls.VALIDATORS.items()},
        type_checker=cls.TYPE_CHECKER,
        format_checker=cls.FORMAT_CHECKER,
        id_of=getattr(cls, "ID_OF"),  # noqa: B009 - not in jsonschema's types
        applicable_validators=_applying(getattr(cls, "_APPLICABLE_VALIDATORS")),  # noqa: B009
    )
    fields = [(field.name, field.alias) for field in getattr(metered, "__attrs_attrs__") if field.init]  # noqa: B009
    setattr(metered, "evolve", _evolving(fields))  # noqa: B010 - a method of the class create() made
    setattr(metered, "_METERED", True)  # noqa: B010
    return metered


def _evolving(fields: list[tuple[str, str]]) -> Callable[..., Any]:
    """jsonschema's ``evolve`` (the validator for a subschema), but keeping to metered classes:
    jsonschema's switches to the unmetered class of a subschema's "$schema" (the metaschemas'
    own subschemas name theirs)."""

    def evolve(self: Any, **changes: Any) -> Any:
        schema = changes.setdefault("schema", self.schema)
        cls = _metered(validators.validator_for(schema, default=type(self)))
        for name, alias in fields:
            changes.setdefault(alias, getattr(self, name))
        return cls(**changes)

    return evolve


Keywords = Callable[[Any], Iterable[tuple[str, Any]]]


def _applying(keywords_of: Keywords) -> Keywords:
    """jsonschema's list of a subschema's keywords, which it makes (twice) to apply a subschema."""

    def keywords(schema: Any) -> Iterable[tuple[str, Any]]:
        budget = _BUDGET.get(None)
        if budget is not None:  # None while a validator is built outside a check
            budget.spend(TICKS_PER_STEP // 2 + _length(schema))
        return keywords_of(schema)

    return keywords


Keyword = Callable[[Any, Any, Any, Any], Any]
# Keywords that go through each item or property of the input in Python.
_THROUGH_INPUT = frozenset(
    {
        "items", "additionalItems", "contains", "unevaluatedItems",
        "additionalProperties", "patternProperties", "propertyNames", "unevaluatedProperties",
    }
)  # fmt: skip


def _spending(name: str, keyword: Keyword) -> Keyword:
    through_input = name in _THROUGH_INPUT

    def spend(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        budget = _BUDGET.get()
        ticks = TICKS_PER_STEP + _length(value)
        if through_input:
            ticks += _VALUE * _length(instance)
        elif name in _COMPARING:
            ticks += _VALUE * _COMPARING[name](value, instance, budget)
        elif name in ("dependentRequired", "dependencies") and isinstance(value, dict):
            ticks += sum(len(names) for names in value.values() if isinstance(names, list))
        budget.spend(ticks)
        return _counted(keyword(validator, value, instance, schema) or (), budget)

    return spend


def _counted(
    errors: Iterable[exceptions.ValidationError], budget: _Budget
) -> Iterator[exceptions.ValidationError]:
    for error in errors:  # a message quotes values of the input or the schema, of any size
        budget.spend(TICKS_PER_STEP + len(error.message) // 2)
        yield error


def _unique_items(unique: Any, items: Any, budget: _Budget) -> int:
    """How many values jsonschema's uniqueItems (``_utils.uniq``) may compare: when it can sort
    the items (all strings, or all numbers, which true and false are not to it), each with its
    neighbour; else each with every other, as deep as the smaller of the two."""
    if not unique or not isinstance(items, list) or len(items) < 2:
        return 0
    n = len(items)
    if all(isinstance(item, str) for item in items) or all(
        isinstance(item, int | float) and not isinstance(item, bool) for item in items
    ):
        return n
    pairs = n * (n - 1) // 2
    budget.spend(_VALUE * pairs)  # too many pairs: refused before sizing the items
    sizes = sorted(_size(item, budget) for item in items)
    return sum(size * (n - 1 - rank) for rank, size in enumerate(sizes)) - pairs


def _enum(enums: Any, instance: Any, budget: _Budget) -> int:
    """How many values enum compares: each entry with the input, as deep as the smaller."""
    if not isinstance(enums, list):
        return 0
    containers = (
        sum(isinstance(each, dict | list) for each in enums) if isinstance(instance, dict | list) else 0
    )
    return len(enums) + containers * (_size(instance, budget) - 1)


def _const(const: Any, instance: Any, budget: _Budget) -> int:
    both = isinstance(const, dict | list) and isinstance(instance, dict | list)
    return _size(instance, budget) if both else 1


_COMPARING: dict[str, Callable[[Any, Any, _Budget], int]] = {
    "uniqueItems": _unique_items,
    "enum": _enum,
    "const": _const,
}


def _size(value: Any, budget: _Budget) -> int:
    """What comparing ``value`` may cost, in values compared: one for each value it holds, and
    three for each object or array (itself included). Sizing it is counted."""
    if not isinstance(value, dict | list):
        return 1
    affordable = budget.left // _VALUE
    count = containers = 0
    stack = [value]
    while stack:
        node = stack.pop()
        count += 1
        if count > affordable:
            raise TooCostly
        if isinstance(node, dict):
            containers += 1
            stack.extend(node.values())
        elif isinstance(node, list):
            containers += 1
            stack.extend(node)
    budget.spend(_VALUE * count)
    return count + 2 * containers


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | list | dict) else 0


def _describe(err: exceptions.ValidationError) -> str:
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    if err.validator == "format" and err.cause is not None:  # an unusable regex: RE2's reason
        return f"{where}: {_shorten(str(err.cause))}"
    return f"{where}: {_shorten(err.message)}"


def _shorten(message: str) -> str:
    return message if len(message) <= 300 else message[:300] + "…"
