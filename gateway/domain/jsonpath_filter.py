"""Subscription filters: JSONPath with Jayway JsonPath semantics, as SailPoint documents them.

Built on python-jsonpath through its extension points (our own environment, lexer, parser,
infix expression and filter selector); the library's default environment is left untouched.
Differences from python-jsonpath's RFC 9535 behaviour that matter for Jayway:

- ``[?(...)]`` applied to an object tests the object itself (RFC 9535 tests its values).
- Definite paths (``@.a.b``, ``$.x[0]``) compare as their value; indefinite ones
  (``@.a[*].b``, ``$..x``) compare as the list of their values, whatever its length.
- Extra operators: ``nin``, ``anyof``, ``noneof``, ``subsetof``, ``size``, ``empty``;
  ``in``/``contains``/``=~`` follow Jayway's evaluators rather than Python's ``in``.

Every regular expression (``=~ /pattern/flags``, ``match()``, ``search()``) runs on RE2
(domain/regex.py): a pattern RE2 cannot run is refused when the filter is compiled.
``tenant_path`` compiles trigger tenant paths the same way, with the library's own
(RFC 9535) semantics.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeGuard

from jsonpath import (
    JSONPathEnvironment,
    JSONPathError,
    JSONPathMatch,
    JSONPathSyntaxError,
    Lexer,
    NodeList,
    Parser,
)
from jsonpath.filter import (
    UNDEFINED,
    BaseExpression,
    FilterQuery,
    InfixExpression,
    RegexLiteral,
    StringLiteral,
)
from jsonpath.function_extensions import ExpressionType, FilterFunction
from jsonpath.path import CompoundJSONPath, JSONPath
from jsonpath.selectors import Filter, FilterContext, KeysFilter
from jsonpath.stream import TokenStream
from jsonpath.token import TOKEN_RE_FLAGS, Token

from gateway.domain import regex

MAX_FILTER_LENGTH: Final = 4096
# A pattern that match() or search() takes from the input itself, not the filter: longer ones
# match nothing (RE2 compiles in time linear in the pattern, but each compile costs).
MAX_DYNAMIC_PATTERN: Final = 256

# Jayway's word operators, each with its own token kind so the parser can tell them apart.
_WORD_OPERATORS: Final = {
    f"TOKEN_JAYWAY_{word.upper()}": word for word in ("nin", "anyof", "noneof", "subsetof", "size", "empty")
}


class FilterSyntaxError(ValueError):
    """The filter expression is not a valid (Jayway) JSONPath; the message is user-facing."""


class _JaywayLexer(Lexer):
    def __init__(self, *, env: JSONPathEnvironment) -> None:
        super().__init__(env=env)
        # Jayway's regex flags (Java's `u` is implicit for Python str patterns).
        self.re_pattern = r"/(?P<G_RE>(?:(?!(?<!\\)/).)*)/(?P<G_RE_FLAGS>[imsxu]*)"
        self.rules = self.compile_rules()

    def compile_rules(self) -> re.Pattern[str]:
        # Word operators go first so they win over the generic name rule (no other
        # library rule matches these words; `.size` etc. still lex as property names).
        words = "|".join(rf"(?P<{kind}>{word}\b)" for kind, word in _WORD_OPERATORS.items())
        return re.compile(f"{words}|{super().compile_rules().pattern}", re.DOTALL)


class _Re2Literal(RegexLiteral):
    __slots__ = ()

    def __str__(self) -> str:
        return f"/{self.value.pattern}/"


class _Re2Parser(Parser):
    """Regex literals compiled by RE2; a literal pattern of match() or search() checked by it."""

    def parse_regex(self, stream: TokenStream) -> BaseExpression:
        token = stream.current()
        flags = ""
        if stream.peek().kind == TOKEN_RE_FLAGS:
            stream.next()
            flags = "".join(sorted(set(stream.next().value) - {"u"}))  # u: Python strings are Unicode
        try:
            return _Re2Literal(value=regex.compile_pattern(token.value, flags))  # type: ignore[arg-type]
        except regex.RegexError as exc:
            raise JSONPathSyntaxError(str(exc), token=token) from None


class _Re2Function(FilterFunction):
    """match() (the whole value) and search() (anywhere in it), on RE2."""

    arg_types = [ExpressionType.VALUE, ExpressionType.VALUE]  # noqa: RUF012 - as the base class
    return_type = ExpressionType.LOGICAL

    def __init__(self, whole: bool) -> None:
        self.whole = whole

    def __call__(self, value: object, pattern: object) -> bool:
        if not isinstance(value, str) or not isinstance(pattern, str) or len(pattern) > MAX_DYNAMIC_PATTERN:
            return False
        try:
            compiled = regex.compile_pattern(pattern)
        except regex.RegexError:
            return False  # RFC 9535: a pattern that is not one matches nothing
        found = compiled.fullmatch(value) if self.whole else compiled.search(value)
        return found is not None


class _Re2Environment(JSONPathEnvironment):
    """python-jsonpath's RFC 9535 semantics, with every regex on RE2."""

    parser_class = _Re2Parser

    def setup_function_extensions(self) -> None:
        super().setup_function_extensions()
        self.function_extensions["match"] = _Re2Function(whole=True)
        self.function_extensions["search"] = _Re2Function(whole=False)

    def validate_function_extension_signature(self, token: Token, args: list[Any]) -> list[Any]:
        if token.value in ("match", "search") and len(args) == 2 and isinstance(args[1], StringLiteral):
            try:
                regex.compile_pattern(args[1].value)
            except regex.RegexError as exc:
                raise JSONPathSyntaxError(str(exc), token=token) from None
        checked: list[Any] = super().validate_function_extension_signature(token, args)
        return checked


class _JaywayParser(_Re2Parser):
    PRECEDENCES = {  # noqa: RUF012 - same (mutable) shape as the base class attribute
        **Parser.PRECEDENCES,
        **dict.fromkeys(_WORD_OPERATORS, Parser.PRECEDENCE_MEMBERSHIP),
    }
    BINARY_OPERATORS = {**Parser.BINARY_OPERATORS, **_WORD_OPERATORS}  # noqa: RUF012
    INFIX_LITERAL_OPERATORS = Parser.INFIX_LITERAL_OPERATORS | frozenset(_WORD_OPERATORS.values())

    def parse_filter_selector(self, stream: TokenStream, *, keys: bool = False) -> Filter | KeysFilter:
        selector = super().parse_filter_selector(stream, keys=keys)
        if isinstance(selector, KeysFilter):
            return selector
        return _JaywayFilter(env=self.env, token=selector.token, expression=selector.expression)

    def parse_infix_expression(self, stream: TokenStream, left: BaseExpression) -> BaseExpression:
        token = stream.current()
        if token.kind not in self.BINARY_OPERATORS:
            # The base class would raise a KeyError that surfaces as a misleading message.
            raise JSONPathSyntaxError(f"expected an operator, found {token.value!r}", token=token)
        expr = super().parse_infix_expression(stream, left)
        if isinstance(expr, InfixExpression):
            return _JaywayInfix(expr.left, expr.operator, expr.right)
        return expr


def _is_indefinite(expr: BaseExpression) -> bool:
    return isinstance(expr, FilterQuery) and not expr.path.singular_query()


def _operand(result: object, indefinite: bool) -> object:
    """Turn a query's node list into the value Jayway compares: value, list or UNDEFINED."""
    if not isinstance(result, NodeList):
        return result
    values = result.values()
    if indefinite:
        return values
    return values[0] if values else UNDEFINED


class _JaywayInfix(InfixExpression):
    __slots__ = ("indefinite",)

    def __init__(self, left: BaseExpression, operator: str, right: BaseExpression) -> None:
        super().__init__(left, operator, right)
        # Decided at parse time: caching may later wrap the operands in other node types.
        self.indefinite = (_is_indefinite(left), _is_indefinite(right))

    def evaluate(self, context: FilterContext) -> bool:
        if self.logical:  # && and || take existence checks (node lists) as they are
            return bool(super().evaluate(context))
        left = _operand(self.left.evaluate(context), self.indefinite[0])
        right = _operand(self.right.evaluate(context), self.indefinite[1])
        return context.env.compare(left, self.operator, right)

    async def evaluate_async(self, context: FilterContext) -> bool:
        return self.evaluate(context)  # filters only ever see in-memory data


class _JaywayFilter(Filter):
    __slots__ = ()

    def resolve(self, node: JSONPathMatch) -> Iterable[JSONPathMatch]:
        if isinstance(node.obj, Mapping):
            # Jayway: a filter on an object tests the object itself and yields it.
            context = FilterContext(
                env=self.env, current=node.obj, root=node.root, extra_context=node.filter_context()
            )
            if self.expression.evaluate(context):
                yield node
        else:
            yield from super().resolve(node)

    async def resolve_async(self, node: JSONPathMatch) -> AsyncIterable[JSONPathMatch]:
        for match in self.resolve(node):
            yield match


def _is_list(value: object) -> TypeGuard[Sequence[object]]:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _regex_input(value: object) -> str | None:
    """Jayway matches strings, numbers and booleans by their text; nothing else matches."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


class _JaywayEnvironment(_Re2Environment):
    lexer_class = _JaywayLexer
    parser_class = _JaywayParser

    def _has(self, items: Sequence[object], item: object) -> bool:
        # Library equality, so that True is not 1 as it would be for Python's `in`.
        return any(self._eq(candidate, item) for candidate in items)

    def compare(self, left: object, operator: str, right: object) -> bool:
        # Every branch checks types first: a mismatch is "no match", never an error.
        if regex.is_pattern(left):  # Jayway accepts the pattern on either side
            left, right = right, left
        match operator:
            case "in" | "nin":
                return _is_list(right) and self._has(right, left) == (operator == "in")
            case "contains":
                if isinstance(left, str):
                    return isinstance(right, str) and right in left
                return _is_list(left) and self._has(left, right)
            case "anyof" | "noneof" | "subsetof":
                if not (_is_list(left) and _is_list(right)):
                    return False
                if operator == "subsetof":
                    return all(self._has(right, item) for item in left)
                return any(self._has(right, item) for item in left) == (operator == "anyof")
            case "size":
                if isinstance(right, bool) or not isinstance(right, int | float):
                    return False
                return isinstance(left, str | list | dict) and len(left) == right
            case "empty":
                if not isinstance(right, bool) or not isinstance(left, str | list | dict):
                    return False
                return (len(left) == 0) == right
            case "=~":
                if not regex.is_pattern(right):
                    return False
                inputs = left if isinstance(left, list) else [left]  # arrays: any element
                texts = (_regex_input(item) for item in inputs)
                return any(text is not None and right.fullmatch(text) for text in texts)
        return super().compare(left, operator, right)


_ENV: Final = _JaywayEnvironment()
_TENANT_PATHS: Final = _Re2Environment()


class CompiledFilter:
    """A parsed subscription filter, ready to test trigger inputs."""

    __slots__ = ("_path", "expression")

    def __init__(self, expression: str, path: JSONPath | CompoundJSONPath) -> None:
        self.expression = expression
        self._path = path

    def matches(self, data: object) -> bool:
        """True when the expression selects at least one node in ``data``."""
        # Strings would be JSON-decoded by the library; only real containers are inputs.
        if not isinstance(data, Mapping | Sequence) or isinstance(data, str | bytes):
            return False
        try:
            return self._path.match(data) is not None
        except (JSONPathError, TypeError, RecursionError):
            return False

    def __repr__(self) -> str:
        return f"CompiledFilter({self.expression!r})"


def _describe(err: JSONPathError) -> str:
    message = str(err.message)
    # Library messages sometimes name token kinds ("found 'TOKEN_EOF'"): make them readable.
    message = re.sub(r"'?TOKEN_(\w+)'?", lambda m: m[1].lower().replace("_", " "), message)
    token = err.token
    if token is None:
        return message
    if token.index < 0:
        return f"{message} at end of expression"
    return f"{message} at position {token.index + 1} ({token.value!r})"


@functools.lru_cache(maxsize=1024)
def compile_filter(expression: str) -> CompiledFilter:
    """Parse a subscription filter; raises FilterSyntaxError with a user-facing message."""
    if len(expression) > MAX_FILTER_LENGTH:
        raise FilterSyntaxError(f"filter is longer than {MAX_FILTER_LENGTH} characters")
    if not expression.strip():
        raise FilterSyntaxError("filter is empty")
    try:
        return CompiledFilter(expression, _ENV.compile(expression))
    except JSONPathError as err:
        raise FilterSyntaxError(f"invalid JSONPath: {_describe(err)}") from None
    except RecursionError:
        raise FilterSyntaxError("invalid JSONPath: expression is nested too deeply") from None


def validate_filter(expression: str, data: object) -> tuple[bool, bool, bool]:
    """SailPoint's validate-filter answer: (isValid, isValidJSONPath, isPathExist)."""
    try:
        compiled = compile_filter(expression)
    except FilterSyntaxError:
        return False, False, False
    exists = compiled.matches(data)
    return exists, True, exists


@functools.lru_cache(maxsize=1024)
def tenant_path(expression: str) -> JSONPath | CompoundJSONPath:
    """A trigger's tenantIdPath, compiled (RFC 9535 semantics, regexes on RE2); raises
    FilterSyntaxError saying why it is not a JSONPath."""
    try:
        return _TENANT_PATHS.compile(expression)
    except JSONPathError as err:
        raise FilterSyntaxError(_describe(err)) from None
    except RecursionError:
        raise FilterSyntaxError("expression is nested too deeply") from None
