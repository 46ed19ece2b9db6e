"""Parsing of the SailPoint V3/beta collection parameters ``filters``, ``sorters`` and paging.

Independent of any storage: callers declare which fields may be filtered (and with which
operators) or sorted, and get back plain values to translate into their own queries.

Filter grammar (keywords and operators are case-insensitive, field names are not)::

    filters   := term ("and" term)*
    term      := "(" filters ")" | field "isnull" | field "in" "(" literal ("," literal)* ")"
               | field op literal                 # op: eq ne sw co gt ge lt le
    literal   := "quoted string" | number | true | false | null

Only conjunctions are supported, so the result is a flat list of conditions that must all
hold; parentheses merely group and are flattened. ``or`` and ``not`` are rejected with a
clear message rather than silently misread. Error positions are 1-based character offsets.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "MAX_FILTERS_LENGTH",
    "MAX_IN_VALUES",
    "OPERATORS",
    "Condition",
    "ListQuery",
    "Listable",
    "QueryError",
    "Sorter",
    "parse_filters",
    "parse_list_query",
    "parse_paging",
    "parse_sorters",
]

MAX_FILTERS_LENGTH = 2000
MAX_IN_VALUES = 250
# Recursion guard: parentheses add nothing to an and-only expression beyond a few levels.
_MAX_DEPTH = 10

OPERATORS = frozenset({"eq", "ne", "in", "sw", "co", "gt", "ge", "lt", "le", "isnull"})
_STRING_ONLY = frozenset({"sw", "co"})  # prefix/substring matching only makes sense on text
_ORDERING = frozenset({"gt", "ge", "lt", "le"})  # comparing with true/false/null is meaningless
_CONSTANTS: dict[str, object] = {"true": True, "false": False, "null": None}


class QueryError(ValueError):
    """A query parameter is invalid; the message is meant to be shown to the API client."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # lower-case operator name
    values: tuple[object, ...]  # one for binary ops, one or more for "in", none for "isnull"


@dataclass(frozen=True)
class Sorter:
    field: str
    descending: bool


def _quote(text: str, limit: int = 40) -> str:
    # Echo user input safely: double-quoted, control characters escaped, bounded length.
    if len(text) > limit:
        text = text[:limit] + "..."
    return json.dumps(text, ensure_ascii=False)


def _choices(names: Iterable[str]) -> str:
    listed = ", ".join(names)
    return f"use one of: {listed}" if listed else "none are allowed here"


# --- tokenizer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # "ident", "string", "number", "(", ")", ",", "end"
    text: str  # source text (for messages); the unescaped value for strings
    pos: int  # 0-based offset into the source
    value: object = None


_LEXEME = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_.]*)"
    r"|(?P<punct>[(),])"
)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos] == '"':
            value, end = _scan_string(text, pos)
            tokens.append(_Token("string", value, pos, value))
            pos = end
            continue
        m = _LEXEME.match(text, pos)
        if m is None:
            raise QueryError(f"filters: unexpected character {_quote(text[pos])} at position {pos + 1}")
        kind, lexeme = m.lastgroup or "", m.group()
        if kind == "number":
            number = float(lexeme) if any(c in lexeme for c in ".eE") else int(lexeme)
            if not math.isfinite(number):
                raise QueryError(f"filters: number out of range at position {pos + 1}")
            tokens.append(_Token("number", lexeme, pos, number))
        elif kind == "ident":
            tokens.append(_Token("ident", lexeme, pos))
        elif kind == "punct":
            tokens.append(_Token(lexeme, lexeme, pos))
        # whitespace only separates tokens
        pos = m.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _scan_string(text: str, start: int) -> tuple[str, int]:
    """Read a double-quoted string at ``start``; return its value and the offset past it."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt not in ('"', "\\"):
                raise QueryError(
                    f"filters: invalid escape {_quote(c + nxt)} at position {i + 1}; "
                    'only \\" and \\\\ are allowed inside strings'
                )
            out.append(nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    raise QueryError(f"filters: unterminated string starting at position {start + 1}")


# --- parser ------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, allowed: Mapping[str, frozenset[str]]) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.allowed = allowed
        self.conditions: list[Condition] = []

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    @staticmethod
    def where(tok: _Token) -> str:
        return "at end of input" if tok.kind == "end" else f"at position {tok.pos + 1}"

    def keyword(self, tok: _Token) -> str | None:
        return tok.text.lower() if tok.kind == "ident" else None

    def expr(self, depth: int) -> None:
        self.term(depth)
        while self.keyword(self.peek()) == "and":
            self.take()
            self.term(depth)
        tok = self.peek()
        if self.keyword(tok) == "or":
            raise QueryError(
                f'filters: "or" is not supported ({self.where(tok)}); combine conditions with "and"'
            )
        if tok.kind != "end" and not (tok.kind == ")" and depth > 0):
            raise QueryError(
                f"filters: unexpected {_quote(tok.text)} {self.where(tok)}; "
                'expected "and"' + (' or ")"' if depth else " or end of input")
            )

    def term(self, depth: int) -> None:
        tok = self.take()
        if tok.kind == "(":
            if depth >= _MAX_DEPTH:
                raise QueryError(f"filters: parentheses nested deeper than {_MAX_DEPTH} levels")
            self.expr(depth + 1)
            close = self.take()
            if close.kind != ")":
                raise QueryError(f'filters: expected ")" {self.where(close)}')
            return
        if self.keyword(tok) == "not":
            raise QueryError(
                f'filters: "not" is not supported ({self.where(tok)}); use "ne" or "isnull" instead'
            )
        if tok.kind != "ident":
            raise QueryError(f"filters: expected a field name {self.where(tok)}")
        field = tok.text
        if field not in self.allowed:
            raise QueryError(f"filters: field {_quote(field)} is not filterable; {_choices(self.allowed)}")
        ops = sorted(self.allowed[field])
        op_tok = self.take()
        op = self.keyword(op_tok)
        if op is None:
            raise QueryError(
                f"filters: expected an operator after {_quote(field)} {self.where(op_tok)}; {_choices(ops)}"
            )
        if op not in OPERATORS:
            raise QueryError(
                f"filters: unknown operator {_quote(op_tok.text)} {self.where(op_tok)}; {_choices(ops)}"
            )
        if op not in self.allowed[field]:
            raise QueryError(
                f"filters: operator {_quote(op)} is not supported for {_quote(field)}; {_choices(ops)}"
            )
        if op == "isnull":
            values: tuple[object, ...] = ()
        elif op == "in":
            values = self.in_list()
        else:
            values = (self.literal(op),)
        self.conditions.append(Condition(field, op, values))

    def in_list(self) -> tuple[object, ...]:
        tok = self.take()
        if tok.kind != "(":
            raise QueryError(f'filters: expected "(" after "in" {self.where(tok)}')
        if self.peek().kind == ")":
            raise QueryError(f'filters: "in" needs at least one value {self.where(self.peek())}')
        values = [self.literal("in")]
        while (tok := self.take()).kind == ",":
            if len(values) >= MAX_IN_VALUES:
                raise QueryError(f'filters: "in" accepts at most {MAX_IN_VALUES} values')
            values.append(self.literal("in"))
        if tok.kind != ")":
            raise QueryError(f'filters: expected "," or ")" in "in" list {self.where(tok)}')
        return tuple(values)

    def literal(self, op: str) -> object:
        tok = self.take()
        if tok.kind == "string":
            return tok.value
        if op in _STRING_ONLY:
            raise QueryError(f"filters: expected a quoted string {self.where(tok)}")
        if tok.kind == "number":
            return tok.value
        if op in _ORDERING:
            raise QueryError(f"filters: expected a quoted string or number {self.where(tok)}")
        word = self.keyword(tok)
        if word is not None and word in _CONSTANTS:
            return _CONSTANTS[word]
        raise QueryError(
            f"filters: expected a value (quoted string, number, true, false or null) {self.where(tok)}"
        )


def parse_filters(text: str | None, allowed: Mapping[str, frozenset[str]]) -> list[Condition]:
    """Parse ``filters`` into conditions that must all hold.

    ``allowed`` maps each filterable field to the (lower-case) operators permitted on it.
    Missing, empty or blank input yields ``[]``.
    """
    if text is None or not text.strip():
        return []
    if len(text) > MAX_FILTERS_LENGTH:
        raise QueryError(f"filters: must be at most {MAX_FILTERS_LENGTH} characters (got {len(text)})")
    parser = _Parser(text, allowed)
    parser.expr(0)
    return parser.conditions


def parse_sorters(text: str | None, allowed: Iterable[str]) -> list[Sorter]:
    """Parse ``sorters``: comma-separated field names, ``-`` prefix for descending."""
    if text is None or not text.strip():
        return []
    names = list(dict.fromkeys(allowed))
    result: list[Sorter] = []
    for index, raw in enumerate(text.split(","), start=1):
        entry = raw.strip()
        descending = entry.startswith("-")
        field = entry[1:] if descending else entry
        if not field:
            raise QueryError(
                f"sorters: entry {index} is empty; expected a field name, "
                "optionally prefixed with - for descending"
            )
        if field not in names:
            raise QueryError(f"sorters: field {_quote(field)} is not sortable; {_choices(names)}")
        if any(s.field == field for s in result):
            raise QueryError(f"sorters: field {_quote(field)} is listed more than once")
        result.append(Sorter(field, descending))
    return result


def _bounded_int(name: str, text: str, low: int, high: int | None) -> int:
    allowed = f"from {low} to {high}" if high is not None else f"of at least {low}"
    # Plain ASCII digits only: int() would also accept "+5", " 5", "1_0" and other scripts.
    # The length cap keeps int() away from huge inputs; anything that long is out of range.
    if not re.fullmatch(r"[0-9]{1,18}", text):
        raise QueryError(f"{name}: must be an integer {allowed} (got {_quote(text)})")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise QueryError(f"{name}: must be an integer {allowed} (got {_quote(text)})")
    return value


def parse_paging(
    limit: str | None,
    offset: str | None,
    count: str | None,
    *,
    max_limit: int = 250,
    default_limit: int = 250,
) -> tuple[int, int, bool]:
    """Validate ``limit``/``offset``/``count``; return ``(limit, offset, count)``.

    Absent (``None``) parameters take their defaults: ``default_limit``, 0 and False.
    An empty string is a supplied-but-invalid value.
    """
    lim = default_limit if limit is None else _bounded_int("limit", limit, 0, max_limit)
    off = 0 if offset is None else _bounded_int("offset", offset, 0, None)
    if count is None or count == "false":
        cnt = False
    elif count == "true":
        cnt = True
    else:
        raise QueryError(f'count: must be "true" or "false" (got {_quote(count)})')
    return lim, off, cnt


@dataclass(frozen=True)
class Listable:
    """What a collection lets callers filter (field -> operators) and sort on."""

    filterable: Mapping[str, frozenset[str]]
    sortable: Sequence[str]


@dataclass(frozen=True)
class ListQuery:
    conditions: list[Condition]
    sorters: list[Sorter]
    limit: int
    offset: int
    count: bool


def parse_list_query(params: Mapping[str, str], listable: Listable) -> ListQuery:
    """``filters``, ``sorters``, ``limit``, ``offset`` and ``count`` of a list request."""
    limit, offset, count = parse_paging(params.get("limit"), params.get("offset"), params.get("count"))
    return ListQuery(
        conditions=parse_filters(params.get("filters"), listable.filterable),
        sorters=parse_sorters(params.get("sorters"), listable.sortable),
        limit=limit,
        offset=offset,
        count=count,
    )
