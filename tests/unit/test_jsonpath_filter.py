"""Subscription filters: JSONPath evaluated with Jayway JsonPath semantics."""

from __future__ import annotations

import pytest

from gateway.domain.jsonpath_filter import (
    MAX_FILTER_LENGTH,
    CompiledFilter,
    FilterSyntaxError,
    compile_filter,
    validate_filter,
)

# SailPoint's documented access-request trigger input.
ACCESS_REQUEST = {
    "requestedFor": {"id": "x", "name": "Ed Engineer"},
    "requestedItems": [{"name": "Engineering Access", "operation": "Add", "type": "ACCESS_PROFILE"}],
    "requestedBy": {"name": "Adam Admin"},
}

DATA = {
    "amount": 150,
    "ratio": 0.5,
    "name": "Ed Engineer",
    "active": True,
    "nothing": None,
    "tags": ["alpha", "beta"],
    "emptyList": [],
    "emptyText": "",
    "identity": {
        "name": "Ed Engineer",
        "attributes": {"department": "Engineering", "location": "Austin"},
    },
    "items": [
        {"name": "cheap", "price": 5, "tags": ["sale"]},
        {"name": "dear", "price": 20, "tags": []},
    ],
}


def matches(expression: str, data: object = DATA) -> bool:
    return compile_filter(expression).matches(data)


# --- SailPoint's documented examples --------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('$.requestedItems[?(@.operation == "Add")]', True),
        ('$[?($.requestedFor.name == "Ed Engineer")]', True),
        ("$[?($.requestedBy.name =~ /.*Admin/)]", True),
        ('$.requestedItems[?(@.type == "ROLE")]', False),
        ('$.requestedItems[?(@.operation == "Remove")]', False),
        ('$[?($.requestedFor.name == "Someone Else")]', False),
        ("$[?($.requestedBy.name =~ /.*Engineer/)]", False),
    ],
)
def test_sailpoint_access_request_examples(expression: str, expected: bool) -> None:
    assert matches(expression, ACCESS_REQUEST) is expected


# --- Jayway's rule: a filter on an object tests the object itself ------------------------


@pytest.mark.parametrize("expression", ["$[?($.amount > 100)]", "$[?(@.amount > 100)]"])
def test_object_filter_with_root_and_current(expression: str) -> None:
    assert matches(expression, {"amount": 150})
    assert not matches(expression, {"amount": 50})


def test_object_filter_on_nested_object() -> None:
    assert matches('$.identity[?(@.attributes.department == "Engineering")]')
    assert not matches('$.identity[?(@.attributes.department == "Sales")]')
    assert matches("$.identity[?(@.name == $.name)]")


def test_object_filter_can_be_followed_by_more_path() -> None:
    assert matches("$[?(@.amount > 100)].identity.name")
    assert not matches("$[?(@.amount > 100)].identity.missing")


# --- plain paths, nested paths, arrays ------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$.identity.name", True),
        ("$.identity.attributes.location", True),
        ("$['identity']['attributes']['department']", True),
        ("$.nothing", True),  # present with a null value still exists
        ("$.identity.missing", False),
        ("$.missing.name", False),
        ("$.items[1].name", True),
        ("$.items[5]", False),
        ("$.items[*].price", True),
        ("$..department", True),
        ("$..salary", False),
    ],
)
def test_plain_paths(expression: str, expected: bool) -> None:
    assert matches(expression) is expected


def test_array_filters_iterate_elements() -> None:
    assert matches("$.items[?(@.price > 10)]")
    assert not matches("$.items[?(@.price > 100)]")
    assert matches('$.tags[?(@ == "beta")]')
    assert not matches('$.tags[?(@ == "gamma")]')
    assert matches("$..items[?(@.price < 10)]")


def test_top_level_array_input() -> None:
    assert matches("$[?(@.id == 2)]", [{"id": 1}, {"id": 2}])
    assert not matches("$[?(@.id == 3)]", [{"id": 1}, {"id": 2}])


def test_existence_checks() -> None:
    assert matches("$.items[?(@.tags)]")
    assert matches("$[?(@.nothing)]")  # existence, not truthiness
    assert not matches("$[?(@.missing)]")
    assert matches("$[?(!@.missing)]")


# --- comparison operators -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$[?(@.amount == 150)]", True),
        ("$[?(@.amount == 151)]", False),
        ("$[?(@.name == 'Ed Engineer')]", True),  # single-quoted strings
        ("$[?(@.active == true)]", True),
        ("$[?(@.active == false)]", False),
        ("$[?(@.nothing == null)]", True),
        ("$[?(@.missing == null)]", False),
        ("$[?(@.amount != 151)]", True),
        ("$[?(@.amount != 150)]", False),
        ("$[?(@.amount < 151)]", True),
        ("$[?(@.amount < 150)]", False),
        ("$[?(@.amount <= 150)]", True),
        ("$[?(@.amount <= 149)]", False),
        ("$[?(@.amount > 149)]", True),
        ("$[?(@.amount > 150)]", False),
        ("$[?(@.amount >= 150)]", True),
        ("$[?(@.amount >= 151)]", False),
        ("$[?(@.ratio < 1)]", True),
        ('$[?(@.name > "A")]', True),  # strings compare lexicographically
        ('$[?(@.name < "A")]', False),
    ],
)
def test_comparisons(expression: str, expected: bool) -> None:
    assert matches(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$[?(@.name =~ /Ed.*/)]", True),
        ("$[?(@.name =~ /Engineer/)]", False),  # Jayway matches the whole string
        ("$[?(@.name =~ /ed engineer/i)]", True),
        ("$[?(@.name =~ /ed engineer/)]", False),
        ("$[?(@.amount =~ /1\\d+/)]", True),  # numbers match by their text
        ("$[?(@.active =~ /true/)]", True),
        ("$[?(@.tags =~ /b.*/)]", True),  # arrays: any element
        ("$[?(@.tags =~ /z.*/)]", False),
        ("$[?(@.missing =~ /.*/)]", False),
    ],
)
def test_regex(expression: str, expected: bool) -> None:
    assert matches(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('$[?(@.name in ["Ed Engineer", "Adam Admin"])]', True),
        ('$[?(@.name in ["Adam Admin"])]', False),
        ("$[?(@.amount in [100, 150])]", True),
        ('$[?(@.identity.attributes.location in ["Austin"])]', True),
        ('$[?(@.name nin ["Adam Admin"])]', True),
        ('$[?(@.name nin ["Ed Engineer", "Adam Admin"])]', False),
        ('$[?(@.missing nin ["x"])]', True),  # Jayway: undefined is not in the list
        ("$[?(@.amount in $.items[*].price)]", False),
        ("$[?(@.items[0].price in $.items[*].price)]", True),
    ],
)
def test_in_and_nin(expression: str, expected: bool) -> None:
    assert matches(expression) is expected


def test_in_does_not_confuse_booleans_with_numbers() -> None:
    assert not matches("$[?(@.flag in [1])]", {"flag": True})
    assert matches("$[?(@.flag in [true])]", {"flag": True})


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('$[?(@.name contains "Engine")]', True),
        ('$[?(@.name contains "Admin")]', False),
        ('$[?(@.tags contains "beta")]', True),
        ('$[?(@.tags contains "gamma")]', False),
        ('$[?(@.items[*].name contains "dear")]', True),  # indefinite path -> list
        ('$[?(@.items[*].name contains "ear")]', False),  # element, not substring
        ('$.items[?(@.tags contains "sale")]', True),
    ],
)
def test_contains(expression: str, expected: bool) -> None:
    assert matches(expression) is expected


def test_indefinite_path_with_one_result_is_still_a_list() -> None:
    data = {"items": [{"name": "dear"}]}
    assert matches('$[?(@.items[*].name contains "dear")]', data)
    assert not matches('$[?(@.items[*].name contains "ear")]', data)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$[?(@.tags size 2)]", True),
        ("$[?(@.tags size 3)]", False),
        ("$[?(@.name size 11)]", True),
        ("$[?(@.identity size 2)]", True),
        ("$[?(@.emptyList empty true)]", True),
        ("$[?(@.emptyList empty false)]", False),
        ("$[?(@.tags empty false)]", True),
        ("$[?(@.tags empty true)]", False),
        ("$[?(@.emptyText empty true)]", True),
        ('$[?(@.tags anyof ["beta", "gamma"])]', True),
        ('$[?(@.tags anyof ["gamma"])]', False),
        ('$[?(@.tags noneof ["gamma", "delta"])]', True),
        ('$[?(@.tags noneof ["beta"])]', False),
        ('$[?(@.tags subsetof ["alpha", "beta", "gamma"])]', True),
        ('$[?(@.tags subsetof ["alpha"])]', False),
        ('$[?(@.emptyList subsetof ["alpha"])]', True),
    ],
)
def test_jayway_word_operators(expression: str, expected: bool) -> None:
    assert matches(expression) is expected


def test_word_operators_are_still_usable_as_property_names() -> None:
    data = {"size": 3, "empty": False, "nin": "x"}
    assert matches("$[?(@.size == 3)]", data)
    assert matches("$.empty", data)
    assert matches("$['nin']", data)


# --- logical operators ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('$[?(@.amount > 100 && @.name == "Ed Engineer")]', True),
        ('$[?(@.amount > 100 && @.name == "Adam Admin")]', False),
        ('$[?(@.amount > 1000 || @.name == "Ed Engineer")]', True),
        ('$[?(@.amount > 1000 || @.name == "Adam Admin")]', False),
        ("$[?(!(@.amount > 1000))]", True),
        ("$[?(!(@.amount > 100))]", False),
        ("$[?((@.amount > 1000 || @.amount < 200) && @.active == true)]", True),
        ("$[?(@.amount > 1000 || @.amount < 200 && @.active == false)]", False),
        ("$[?((@.amount > 1000 || @.amount < 200) && @.active == false)]", False),
    ],
)
def test_logical_operators(expression: str, expected: bool) -> None:
    assert matches(expression) is expected


# --- type mismatches never raise ------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        '$[?(@.amount > "100")]',
        "$[?(@.name > 100)]",
        "$[?(@.amount contains 1)]",
        "$[?(@.name contains 1)]",
        '$[?(@.amount in "150")]',
        '$[?(@.name nin "Ed")]',
        "$[?(@.amount size 3)]",
        '$[?(@.tags size "2")]',
        "$[?(@.amount empty false)]",
        "$[?(@.tags empty 0)]",
        '$[?(@.name anyof ["Ed Engineer"])]',
        '$[?(@.tags subsetof "alpha beta")]',
        "$[?(@.identity =~ /.*/)]",
        "$[?(@.tags < 3)]",
        "$.amount[?(@ > 1)]",
        "$.name[0]",
    ],
)
def test_type_mismatch_is_no_match(expression: str) -> None:
    assert matches(expression) is False


@pytest.mark.parametrize("data", [None, 42, '{"amount": 150}', b"x", 1.5, True])
def test_non_container_input_is_no_match(data: object) -> None:
    assert compile_filter("$[?(@.amount > 100)]").matches(data) is False
    assert compile_filter("$").matches(data) is False


# --- syntax errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "   ",
        "$.",
        "$.a[",
        "$[?(@.a ==)]",
        "$[?(@.a == 1]",
        "$[?(@.a foo 1)]",
        "$[?(@.a == 1 @.b)]",
        "$[?(@.name =~ /(/)]",
        "$[?(true)]",
        "$.list.length()",
        "$[?(@.a == 'unterminated)]",
    ],
)
def test_syntax_errors(expression: str) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        compile_filter(expression)
    assert str(info.value).strip()


def test_syntax_error_says_where() -> None:
    with pytest.raises(FilterSyntaxError, match=r"position 9"):
        compile_filter("$[?(@.a foo 1)]")
    with pytest.raises(FilterSyntaxError, match=r"end of expression"):
        compile_filter("$.a[")


def test_syntax_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="invalid"):
        compile_filter("$[?(@.a ==)]")


def test_overlong_expression_is_rejected() -> None:
    expression = "$." + "a" * MAX_FILTER_LENGTH
    with pytest.raises(FilterSyntaxError, match=str(MAX_FILTER_LENGTH)):
        compile_filter(expression)
    limit = "$." + "a" * (MAX_FILTER_LENGTH - 2)
    assert not compile_filter(limit).matches(DATA)


def test_deeply_nested_expression_is_a_syntax_error() -> None:
    with pytest.raises(FilterSyntaxError):
        compile_filter("$[?" + "(" * 2000 + "@.a == 1" + ")" * 2000 + "]")


# --- compile cache and validate_filter --------------------------------------------------------


def test_compiled_filters_are_cached() -> None:
    first = compile_filter("$.identity.name")
    assert isinstance(first, CompiledFilter)
    assert compile_filter("$.identity.name") is first


@pytest.mark.parametrize(
    ("expression", "data", "expected"),
    [
        ('$.requestedItems[?(@.operation == "Add")]', ACCESS_REQUEST, (True, True, True)),
        ('$.requestedItems[?(@.type == "ROLE")]', ACCESS_REQUEST, (False, True, False)),
        ("$.requestedFor.id", ACCESS_REQUEST, (True, True, True)),
        ("$.requestedFor.email", ACCESS_REQUEST, (False, True, False)),
        ("$[?(@.requestedFor.name ==)]", ACCESS_REQUEST, (False, False, False)),
        ("$.requestedFor", None, (False, True, False)),
    ],
)
def test_validate_filter(expression: str, data: object, expected: tuple[bool, bool, bool]) -> None:
    assert validate_filter(expression, data) == expected
