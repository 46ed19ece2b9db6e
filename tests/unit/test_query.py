"""Unit tests for gateway.query: filters, sorters and paging parameters."""

from __future__ import annotations

import pytest

from gateway.domain.list_query import (
    MAX_FILTERS_LENGTH,
    MAX_IN_VALUES,
    OPERATORS,
    Condition,
    QueryError,
    Sorter,
    parse_filters,
    parse_paging,
    parse_sorters,
)

ALL = frozenset(OPERATORS)
ALLOWED: dict[str, frozenset[str]] = {
    "id": frozenset({"eq", "in"}),
    "triggerId": frozenset({"eq", "in", "sw"}),
    "name": ALL,
    "created": ALL,
    "a.b_1": ALL,
}


def one(text: str) -> Condition:
    conditions = parse_filters(text, ALLOWED)
    assert len(conditions) == 1
    return conditions[0]


def error(text: str, allowed: dict[str, frozenset[str]] = ALLOWED) -> str:
    with pytest.raises(QueryError) as info:
        parse_filters(text, allowed)
    return str(info.value)


# --- filters: happy paths ------------------------------------------------------------------


def test_empty_and_missing_filters() -> None:
    assert parse_filters(None, ALLOWED) == []
    assert parse_filters("", ALLOWED) == []
    assert parse_filters("  \t ", ALLOWED) == []


def test_sailpoint_examples() -> None:
    assert one('id eq "2c9180835d2e5168015d32f890ca1581"') == Condition(
        "id", "eq", ("2c9180835d2e5168015d32f890ca1581",)
    )
    assert one('triggerId eq "idn:access-request-dynamic-approver"') == Condition(
        "triggerId", "eq", ("idn:access-request-dynamic-approver",)
    )


@pytest.mark.parametrize("op", ["eq", "ne", "sw", "co", "gt", "ge", "lt", "le"])
def test_each_binary_operator(op: str) -> None:
    assert one(f'name {op} "x"') == Condition("name", op, ("x",))


def test_isnull_is_unary() -> None:
    assert one("name isnull") == Condition("name", "isnull", ())
    assert parse_filters('name isnull and id eq "1"', ALLOWED) == [
        Condition("name", "isnull", ()),
        Condition("id", "eq", ("1",)),
    ]


def test_in_list() -> None:
    assert one('id in ("a","b")') == Condition("id", "in", ("a", "b"))
    assert one('id in ( "a" , "b" , "c" )') == Condition("id", "in", ("a", "b", "c"))
    assert one('id in ("only")') == Condition("id", "in", ("only",))
    assert one('name in ("a", 1, true, null)') == Condition("name", "in", ("a", 1, True, None))


def test_in_list_at_limit() -> None:
    values = ",".join(f'"{i}"' for i in range(MAX_IN_VALUES))
    assert len(one(f"id in ({values})").values) == MAX_IN_VALUES


def test_literals() -> None:
    assert one("name eq true").values == (True,)
    assert one("name eq FALSE").values == (False,)
    assert one("name eq Null").values == (None,)
    assert one("name eq 42").values == (42,)
    assert one("name eq -7").values == (-7,)
    assert one("name gt 1.5").values == (1.5,)
    assert one("name lt 2e3").values == (2000.0,)
    assert one('name eq ""').values == ("",)
    assert one('name co "a and b or c"').values == ("a and b or c",)


def test_escapes_inside_strings() -> None:
    assert one(r'name eq "say \"hi\""').values == ('say "hi"',)
    assert one(r'name eq "back\\slash"').values == ("back\\slash",)
    assert one(r'name eq "\\"').values == ("\\",)
    assert one(r'name eq "\\\""').values == ('\\"',)


def test_case_insensitive_keywords() -> None:
    assert parse_filters('id EQ "1" AND name Sw "x" aNd created ISNULL', ALLOWED) == [
        Condition("id", "eq", ("1",)),
        Condition("name", "sw", ("x",)),
        Condition("created", "isnull", ()),
    ]
    assert one('id IN ("a")') == Condition("id", "in", ("a",))


def test_field_names_are_case_sensitive() -> None:
    assert 'field "triggerid" is not filterable' in error('triggerid eq "x"')


def test_dotted_field_names() -> None:
    assert one('a.b_1 eq "x"').field == "a.b_1"


@pytest.mark.parametrize(
    "text",
    [
        'id eq "1" and name eq "2"',
        '  id   eq   "1"   and   name   eq   "2"  ',
        'id\teq\t"1"\nand\r\nname eq "2"',
        'id eq"1"and name eq"2"',
        '(id eq "1") and (name eq "2")',
        '((id eq "1" and name eq "2"))',
    ],
)
def test_and_chains_and_whitespace_variants(text: str) -> None:
    assert parse_filters(text, ALLOWED) == [
        Condition("id", "eq", ("1",)),
        Condition("name", "eq", ("2",)),
    ]


def test_long_and_chain() -> None:
    text = " and ".join(f'name ne "{i}"' for i in range(50))
    assert [c.values for c in parse_filters(text, ALLOWED)] == [(str(i),) for i in range(50)]


# --- filters: errors ---------------------------------------------------------------------


def test_unknown_field() -> None:
    assert error('foo eq "x"', {"id": frozenset({"eq"}), "triggerId": frozenset({"eq"})}) == (
        'filters: field "foo" is not filterable; use one of: id, triggerId'
    )


def test_nothing_filterable() -> None:
    assert error('id eq "x"', {}) == 'filters: field "id" is not filterable; none are allowed here'


def test_disallowed_operator() -> None:
    assert error('id gt "x"') == ('filters: operator "gt" is not supported for "id"; use one of: eq, in')
    assert error("id isnull") == ('filters: operator "isnull" is not supported for "id"; use one of: eq, in')


def test_unknown_operator() -> None:
    assert error('id like "x"') == ('filters: unknown operator "like" at position 4; use one of: eq, in')


def test_missing_operator() -> None:
    assert error("id") == ('filters: expected an operator after "id" at end of input; use one of: eq, in')
    assert error('id "x"') == ('filters: expected an operator after "id" at position 4; use one of: eq, in')


def test_missing_value() -> None:
    assert error("name eq") == (
        "filters: expected a value (quoted string, number, true, false or null) at end of input"
    )
    assert error('name eq and id eq "1"').endswith("at position 9")
    assert error("name eq bogus").startswith("filters: expected a value")


def test_string_required_for_sw_and_co() -> None:
    assert error("triggerId sw 12") == "filters: expected a quoted string at position 14"
    assert error("name co true") == "filters: expected a quoted string at position 9"


def test_ordering_rejects_constants() -> None:
    assert error("created gt null") == ("filters: expected a quoted string or number at position 12")


def test_unterminated_string() -> None:
    assert error('id eq "abc') == "filters: unterminated string starting at position 7"
    assert error('id eq "abc\\"') == "filters: unterminated string starting at position 7"


def test_invalid_escape() -> None:
    msg = error(r'id eq "a\nb"')
    assert msg.startswith('filters: invalid escape "\\\\n" at position 9')
    assert 'only \\" and \\\\ are allowed' in msg


def test_trailing_garbage() -> None:
    assert error('id eq "1" extra') == (
        'filters: unexpected "extra" at position 11; expected "and" or end of input'
    )
    assert error('id eq "1")').startswith('filters: unexpected ")" at position 10')
    assert error('id eq "1" and').endswith("expected a field name at end of input")
    assert error("name isnull 5").startswith('filters: unexpected "5" at position 13')


def test_unexpected_character() -> None:
    assert error('id eq "1" & id eq "2"') == 'filters: unexpected character "&" at position 11'
    assert error("id == 1") == 'filters: unexpected character "=" at position 4'


def test_or_and_not_are_rejected() -> None:
    assert error('id eq "1" or id eq "2"') == (
        'filters: "or" is not supported (at position 11); combine conditions with "and"'
    )
    assert error('id eq "1" OR id eq "2"').startswith('filters: "or" is not supported')
    assert error('not id eq "1"').startswith('filters: "not" is not supported (at position 1)')


def test_in_list_errors() -> None:
    assert error("id in ()") == 'filters: "in" needs at least one value at position 8'
    assert error('id in "a"') == 'filters: expected "(" after "in" at position 7'
    assert error('id in ("a" "b")') == 'filters: expected "," or ")" in "in" list at position 12'
    assert error('id in ("a",)').startswith("filters: expected a value")
    assert error('id in ("a"').endswith("at end of input")


def test_in_list_too_long() -> None:
    values = ",".join("1" for _ in range(MAX_IN_VALUES + 1))
    assert error(f"id in ({values})") == f'filters: "in" accepts at most {MAX_IN_VALUES} values'


def test_filters_too_long() -> None:
    text = 'name eq "' + "x" * MAX_FILTERS_LENGTH + '"'
    assert error(text) == (f"filters: must be at most {MAX_FILTERS_LENGTH} characters (got {len(text)})")
    padded = 'name eq "x"'.ljust(MAX_FILTERS_LENGTH)
    assert parse_filters(padded, ALLOWED) == [Condition("name", "eq", ("x",))]


def test_parentheses_errors() -> None:
    assert error('(id eq "1"') == 'filters: expected ")" at end of input'
    assert error("()") == "filters: expected a field name at position 2"
    assert error('(id eq "1" x)').endswith('expected "and" or ")"')
    deep = "(" * 11 + 'id eq "1"' + ")" * 11
    assert error(deep) == "filters: parentheses nested deeper than 10 levels"
    ok = "(" * 10 + 'id eq "1"' + ")" * 10
    assert parse_filters(ok, ALLOWED) == [Condition("id", "eq", ("1",))]


def test_error_is_value_error() -> None:
    assert issubclass(QueryError, ValueError)


def test_long_input_is_truncated_in_messages() -> None:
    msg = error("x" * 500 + ' eq "1"')
    assert len(msg) < 200


# --- sorters -----------------------------------------------------------------------------

SORTABLE = ["created", "subscriptionName", "name"]


def test_sorters_empty_and_missing() -> None:
    assert parse_sorters(None, SORTABLE) == []
    assert parse_sorters("", SORTABLE) == []
    assert parse_sorters("  ", SORTABLE) == []


def test_sorters_ascending_and_descending() -> None:
    assert parse_sorters("-created,subscriptionName", SORTABLE) == [
        Sorter("created", True),
        Sorter("subscriptionName", False),
    ]
    assert parse_sorters(" name , -created ", SORTABLE) == [
        Sorter("name", False),
        Sorter("created", True),
    ]


def test_sorters_accept_any_iterable() -> None:
    assert parse_sorters("-name", iter(SORTABLE)) == [Sorter("name", True)]


def sorter_error(text: str) -> str:
    with pytest.raises(QueryError) as info:
        parse_sorters(text, SORTABLE)
    return str(info.value)


def test_sorters_unknown_field() -> None:
    assert sorter_error("-foo") == (
        'sorters: field "foo" is not sortable; use one of: created, subscriptionName, name'
    )
    assert sorter_error("Created").startswith('sorters: field "Created" is not sortable')
    assert sorter_error("--created").startswith('sorters: field "-created" is not sortable')
    assert sorter_error("- created").startswith('sorters: field " created" is not sortable')


@pytest.mark.parametrize(
    ("text", "index"), [("name,,created", 2), (",name", 1), ("name,", 2), ("-", 1), ("name, -", 2)]
)
def test_sorters_empty_segments(text: str, index: int) -> None:
    assert sorter_error(text) == (
        f"sorters: entry {index} is empty; expected a field name, optionally prefixed with - for descending"
    )


def test_sorters_duplicate_field() -> None:
    assert sorter_error("name,-name") == 'sorters: field "name" is listed more than once'


def test_sorters_nothing_sortable() -> None:
    with pytest.raises(QueryError, match="none are allowed here"):
        parse_sorters("name", [])


# --- paging ------------------------------------------------------------------------------


def paging_error(limit: str | None = None, offset: str | None = None, count: str | None = None) -> str:
    with pytest.raises(QueryError) as info:
        parse_paging(limit, offset, count)
    return str(info.value)


def test_paging_defaults() -> None:
    assert parse_paging(None, None, None) == (250, 0, False)
    assert parse_paging(None, None, None, default_limit=50, max_limit=100) == (50, 0, False)


def test_paging_bounds() -> None:
    assert parse_paging("0", "0", "true") == (0, 0, True)
    assert parse_paging("250", "1000000", "false") == (250, 1000000, False)
    assert parse_paging("007", None, None) == (7, 0, False)
    assert paging_error(limit="251") == 'limit: must be an integer from 0 to 250 (got "251")'
    assert paging_error(limit="-1") == 'limit: must be an integer from 0 to 250 (got "-1")'
    with pytest.raises(QueryError, match='from 0 to 100 \\(got "101"\\)'):
        parse_paging("101", None, None, max_limit=100)
    assert paging_error(offset="-1") == 'offset: must be an integer of at least 0 (got "-1")'
    assert paging_error(offset="9" * 30).startswith("offset: must be an integer of at least 0")


@pytest.mark.parametrize("bad", ["", "abc", "1.5", "+5", " 5", "1_0", "1e2", "٣"])
def test_paging_non_integers(bad: str) -> None:
    assert paging_error(limit=bad).startswith("limit: must be an integer from 0 to 250")
    assert paging_error(offset=bad).startswith("offset: must be an integer of at least 0")


@pytest.mark.parametrize("bad", ["", "yes", "1", "TRUE", "False"])
def test_paging_count_values(bad: str) -> None:
    assert paging_error(count=bad) == f'count: must be "true" or "false" (got "{bad}")'
