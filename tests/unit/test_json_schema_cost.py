"""The cost of JSON Schema checks is counted, so that a costly check is refused instead of
holding the event loop or a checking thread (domain/json_schema.py).

Each test uses sizes just past the budget it checks: a refused check stops when the count
passes the budget, before the work, so these tests are fast. None measures time."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest

from gateway.domain import json_schema
from gateway.domain.json_schema import INLINE_STEPS, THREAD_STEPS
from gateway.domain.json_schema_cost import TooCostly

DRAFT_2019 = "https://json-schema.org/draft/2019-09/schema"
DRAFT_7 = "http://json-schema.org/draft-07/schema#"
REFUSED = f"takes more than {THREAD_STEPS:,} steps"


def mixed(n: int) -> list[Any]:
    """Distinct numbers and strings: they cannot be sorted, so jsonschema compares every pair."""
    return [i if i % 2 == 0 else str(i) for i in range(n)]


def refused(schema: dict[str, Any], instance: Any, steps: int) -> bool:
    try:
        json_schema.problems(schema, instance, steps)
    except TooCostly:
        return True
    return False


# 1. Every regex jsonschema runs is RE2's, and each search is counted.


def test_no_jsonschema_module_holds_python_re() -> None:
    assert json_schema  # imported: its patches are applied
    modules = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "jsonschema"}
    assert "jsonschema._legacy_keywords" in modules
    holding = [
        f"{name}.{attribute}"
        for name, module in modules.items()
        for attribute, value in vars(module).items()
        if value is re or (callable(value) and getattr(value, "__module__", None) == "re")
    ]
    assert holding == []


def test_draft_2019_unevaluated_properties_run_patterns_on_re2() -> None:
    schema = {"$schema": DRAFT_2019, "patternProperties": {"^(a+)+$": {}}, "unevaluatedProperties": False}
    assert json_schema.schema_problems(schema) == []
    assert json_schema.problems(schema, {"aaaa": 1}) == []
    # Python's re backtracks on this key for seconds; RE2 does not.
    unevaluated = json_schema.problems(schema, {"a" * 27 + "!": 1})
    assert len(unevaluated) == 1 and "Unevaluated properties are not allowed" in unevaluated[0]
    # RE2's \d matches ASCII digits only, Python's any Unicode digit: the outcome says which ran.
    digits = {"$schema": DRAFT_2019, "patternProperties": {"^\\d+$": {}}, "unevaluatedProperties": False}
    assert json_schema.problems(digits, {"12": 1}) == []
    assert len(json_schema.problems(digits, {"\u0661\u0662": 1})) == 1


def test_regex_searches_are_counted() -> None:
    patterns: dict[str, Any] = {f"^p{i}$": {} for i in range(80)}
    instance = {f"k{i}": 0 for i in range(80)}  # 6,400 searches
    assert refused({"patternProperties": patterns}, instance, INLINE_STEPS)
    assert json_schema.problems({"patternProperties": patterns}, instance, THREAD_STEPS) == []
    # A search costs up to its text's length times the pattern's RE2 program size.
    text = "ab" * 5_000
    assert refused({"pattern": "a(a|b){500}c"}, text, INLINE_STEPS)
    assert not refused({"pattern": "^[ab]*$"}, text, INLINE_STEPS)


# 2. uniqueItems counts the comparisons jsonschema makes.


def test_unique_items_over_values_that_cannot_be_sorted_counts_every_pair() -> None:
    schema = {"type": "array", "uniqueItems": True}
    assert refused(schema, mixed(2_100), THREAD_STEPS)  # 2.2 million pairs
    assert refused(schema, mixed(200), INLINE_STEPS)
    assert not refused(schema, mixed(100), INLINE_STEPS)
    assert json_schema.problems(schema, mixed(1_000), THREAD_STEPS) == []
    assert len(json_schema.problems(schema, [*mixed(100), "1"], THREAD_STEPS)) == 1
    # Booleans are not numbers to uniqueItems (true differs from 1): no sorting either.
    assert refused(schema, [True, False, *range(200)], INLINE_STEPS)


async def test_unique_items_too_costly_for_a_thread_is_refused_saying_so() -> None:
    problems = await json_schema.check({"type": "array", "uniqueItems": True}, mixed(20_000))
    assert len(problems) == 1 and REFUSED in problems[0]


def test_unique_items_over_strings_or_numbers_is_sorted_and_cheap() -> None:
    schema = {"type": "array", "uniqueItems": True}
    assert json_schema.problems(schema, [str(i) for i in range(20_000)], THREAD_STEPS) == []
    assert json_schema.problems(schema, [i / 2 for i in range(20_000)], THREAD_STEPS) == []
    assert len(json_schema.problems(schema, [*range(20_000), 7.0], THREAD_STEPS)) == 1


def test_unique_items_over_objects_counts_their_size() -> None:
    schema = {"type": "array", "uniqueItems": True}
    # 63 objects of 300 keys: few pairs, but each comparison walks the keys.
    objects = [{**{f"k{j}": 0 for j in range(299)}, "z": i} for i in range(63)]
    assert refused(schema, objects, INLINE_STEPS)
    assert json_schema.problems(schema, objects, THREAD_STEPS) == []
    assert not refused(schema, [{"k": i} for i in range(30)], INLINE_STEPS)


# 3. The metaschema check when a schema is saved is counted too, and off the loop when large.


async def test_a_schema_too_costly_to_check_against_its_metaschema_is_refused() -> None:
    # The metaschema says required holds unique strings: with one number among 5,000 strings,
    # they cannot be sorted, and uniqueItems would compare 12.5 million pairs.
    problems = await json_schema.check_schema({"required": [*map(str, range(5_000)), 0]})
    assert len(problems) == 1 and "takes more than" in problems[0] and "metaschema" in problems[0]
    assert refused_schema({"required": [*map(str, range(2_100)), 0]}, THREAD_STEPS)
    assert refused_schema({"required": [*map(str, range(200)), 0]}, INLINE_STEPS)
    # Mostly numbers: the first ten problems are reported, and uniqueItems never runs.
    problems = await json_schema.check_schema({"required": mixed(5_000)})
    assert len(problems) == 10 and "$.required[0]: 0 is not of type 'string'" in problems


def refused_schema(schema: dict[str, Any], steps: int) -> bool:
    try:
        json_schema.schema_problems(schema, steps)
    except TooCostly:
        return True
    return False


async def test_ordinary_schemas_are_still_checked() -> None:
    assert await json_schema.check_schema({"type": "object", "required": ["a", "b"]}) == []
    problems = await json_schema.check_schema({"properties": {"a": {"type": "money"}}})
    assert problems and "money" in problems[0]
    assert await json_schema.check_schema({"properties": {"a": {"pattern": "(?=a)"}}}) != []
    large = {
        "type": "object",
        "properties": {f"p{i}": {"type": "string", "maxLength": 9} for i in range(2_000)},
    }
    assert refused_schema(large, INLINE_STEPS)  # so it is checked in a thread
    assert await json_schema.check_schema(large) == []


# Beyond those three: what else grows with the schema or the input is counted.


def test_a_subschema_naming_another_draft_is_still_counted() -> None:
    schema = {"items": {"$schema": DRAFT_7, "uniqueItems": True}}
    assert refused(schema, [mixed(200)], INLINE_STEPS)
    assert refused(schema, [mixed(2_100)], THREAD_STEPS)


def test_enum_counts_its_comparisons() -> None:
    schema = {"type": "array", "items": {"enum": list(range(100))}}
    assert refused(schema, [-1] * 100, INLINE_STEPS)  # 10,000 comparisons
    assert len(json_schema.problems(schema, [-1] * 100, THREAD_STEPS)) == 10  # reported: at most 10


def test_each_subschema_applied_is_counted_even_without_keywords() -> None:
    schema = {"type": "array", "items": {"description": "a subschema jsonschema still applies"}}
    assert refused(schema, list(range(5_000)), INLINE_STEPS)
    assert json_schema.problems(schema, list(range(5_000)), THREAD_STEPS) == []


def test_error_messages_are_counted_by_length() -> None:
    schema = {"type": "array", "items": {"not": {"description": "x" * 50_000}}}  # each message quotes it
    assert refused(schema, list(range(50)), INLINE_STEPS)
    assert len(json_schema.problems(schema, list(range(50)), THREAD_STEPS)) == 10


class Key(str):
    """A property name that counts how often it is compared for equality."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        Key.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_unevaluated_properties_look_up_evaluated_keys_in_constant_time() -> None:
    schema = {"additionalProperties": True, "unevaluatedProperties": False}
    instance = {Key(f"k{i}"): 0 for i in range(300)}
    Key.compared = 0
    assert json_schema.problems(schema, instance) == []
    assert Key.compared < 3 * len(instance)  # a list would compare about 45,000 times
    legacy = {"$schema": DRAFT_2019, **schema}
    Key.compared = 0
    assert json_schema.problems(legacy, instance) == []
    assert Key.compared < 3 * len(instance)


async def test_the_event_loop_time_limit_only_moves_a_check_to_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    with pytest.raises(TooCostly):
        json_schema.problems(schema, [1, "2"], INLINE_STEPS, seconds=-1)  # past its time at once
    monkeypatch.setattr(json_schema, "INLINE_SECONDS", -1)
    assert await json_schema.check(schema, [1, "2"]) == ["$[1]: '2' is not of type 'integer'"]
    assert await json_schema.check_schema({"type": "money"}) != []
