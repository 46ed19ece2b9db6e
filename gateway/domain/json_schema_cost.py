"""What a JSON Schema check costs, counted as it runs (domain/json_schema.py decides where
a check runs and what budget it gets).

jsonschema's validator classes are remade with each keyword, subschema and error counted
against the budget of the current check (BUDGET), and every jsonschema module that imports
``re`` gets RE2's instead (domain/regex.py), searches counted too.

A step is about what applying a keyword costs (3 to 8 microseconds here). A step is each
keyword applied and each subschema applied (one naming another draft in "$schema" too), and
each error (plus its message's length over 128: it quotes values). A quarter step is each
value compared (uniqueItems, enum, const; an object or array counts three) or counted to size
one, and each item or property a keyword goes through in Python. A 64th of a step is each
entry of a keyword's value or a subschema. A regex search is half a step plus the bytes
searched times the RE2 program's size over 256 (RE2 is linear in the text, times the program
at worst: "a(a|b){500}c" takes 8.5 s over 1 MiB), plus a compile's cost when the schema has
more patterns than regex.py caches. uniqueItems compares each item with its neighbour once
sorted when all are strings or all numbers (as jsonschema's ``_utils.uniq`` does), else each
with every other: n(n-1)/2 pairs.
"""

from __future__ import annotations

import functools
import re
import sys
import time
import types
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import jsonschema._format
import jsonschema._keywords
import jsonschema._legacy_keywords
import jsonschema._utils
import jsonschema.exceptions
from jsonschema import exceptions, validators
from jsonschema.protocols import Validator

from gateway.domain import regex

# Costs are counted in ticks, TICKS_PER_STEP to a step: a tick is about a cheap operation in C
# (a key looked up), _VALUE ticks one in Python (two values compared, a property gone through).
TICKS_PER_STEP = 64
_VALUE = 16
_REGEX_WORK = 4  # bytes searched times RE2 program instructions, per tick


class TooCostly(Exception):
    """A check that would take more steps than its budget."""


class Budget:
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


BUDGET: ContextVar[Budget] = ContextVar("json_schema_budget")


# --- What jsonschema does that its keywords do not show: regexes and evaluated properties ---


def _search(pattern: str, text: str) -> regex.Match | None:
    budget = BUDGET.get(None)
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
        budget = BUDGET.get(None)
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


# --- Counting: jsonschema's validator classes, with each keyword, subschema and error counted ---


@functools.cache
def metered(cls: type[Validator]) -> type[Validator]:
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
        cls = metered(validators.validator_for(schema, default=type(self)))
        for name, alias in fields:
            changes.setdefault(alias, getattr(self, name))
        return cls(**changes)

    return evolve


Keywords = Callable[[Any], Iterable[tuple[str, Any]]]


def _applying(keywords_of: Keywords) -> Keywords:
    """jsonschema's list of a subschema's keywords, which it makes (twice) to apply a subschema."""

    def keywords(schema: Any) -> Iterable[tuple[str, Any]]:
        budget = BUDGET.get(None)
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
        budget = BUDGET.get()
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
    errors: Iterable[exceptions.ValidationError], budget: Budget
) -> Iterator[exceptions.ValidationError]:
    for error in errors:  # a message quotes values of the input or the schema, of any size
        budget.spend(TICKS_PER_STEP + len(error.message) // 2)
        yield error


def _unique_items(unique: Any, items: Any, budget: Budget) -> int:
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


def _enum(enums: Any, instance: Any, budget: Budget) -> int:
    """How many values enum compares: each entry with the input, as deep as the smaller."""
    if not isinstance(enums, list):
        return 0
    containers = (
        sum(isinstance(each, dict | list) for each in enums) if isinstance(instance, dict | list) else 0
    )
    return len(enums) + containers * (_size(instance, budget) - 1)


def _const(const: Any, instance: Any, budget: Budget) -> int:
    both = isinstance(const, dict | list) and isinstance(instance, dict | list)
    return _size(instance, budget) if both else 1


_COMPARING: dict[str, Callable[[Any, Any, Budget], int]] = {
    "uniqueItems": _unique_items,
    "enum": _enum,
    "const": _const,
}


def _size(value: Any, budget: Budget) -> int:
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
