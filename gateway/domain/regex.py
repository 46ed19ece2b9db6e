"""User regular expressions, run on RE2: time linear in the input, whatever the pattern.

Every regex a user gives the gateway runs here: JSONPath filters' ``=~`` and ``match()`` /
``search()``, trigger tenant paths, and JSON Schema's ``pattern`` and ``patternProperties``.
Python's ``re`` backtracks: ``(a+)+$`` on thirty characters held the event loop for seconds.
RE2 takes Python's and Perl's syntax without the features that need backtracking
(backreferences, lookahead and lookbehind, possessive quantifiers); a pattern using them is
refused when it is saved, with RE2's reason. ``\\d``, ``\\w`` and ``\\s`` match ASCII only.
"""

from __future__ import annotations

import functools
from typing import Protocol, TypeGuard

import re2

# What one compiled pattern may use. With 8 MiB, \pL{400} took 340 ms to compile and 200 such
# patterns held 800 MB; with 1 MiB it is refused ("pattern too large") in 7 ms, and everyday
# patterns compile as before.
MAX_PROGRAM_BYTES = 1 << 20
_OPTIONS = re2.Options()
_OPTIONS.max_mem = MAX_PROGRAM_BYTES
_OPTIONS.log_errors = False  # RE2 would write every refused pattern to stderr

# The flags Jayway's /pattern/flags and JSON Schema may use, as RE2's inline flags.
FLAGS = frozenset("ims")


class Match(Protocol):
    def group(self, index: int = 0) -> str: ...


class Pattern(Protocol):
    """What the gateway uses of a compiled pattern (RE2's, or Python's for its own)."""

    @property
    def pattern(self) -> str: ...
    def search(self, text: str) -> Match | None: ...
    def fullmatch(self, text: str) -> Match | None: ...


class RegexError(ValueError):
    """A pattern RE2 cannot run; the message says why, for the user."""


# Filters are compiled once per use: the cache keeps the patterns in use, and its size bounds
# what patterns taken from inputs (match(@.a, @.b)) can make it hold.
@functools.lru_cache(maxsize=128)
def compile_pattern(pattern: str, flags: str = "") -> Pattern:
    """``pattern`` compiled by RE2, with ``flags`` (of i, m, s) applied."""
    unknown = set(flags) - FLAGS
    if unknown:
        raise RegexError(f"the regex flag(s) {''.join(sorted(unknown))} are not supported; use i, m or s")
    try:
        compiled: Pattern = re2.compile(f"(?{flags}){pattern}" if flags else pattern, _OPTIONS)
    except re2.error as exc:
        raise RegexError(f"{pattern!r} is not a regular expression RE2 can run: {_reason(exc)}") from None
    return compiled


def is_pattern(value: object) -> TypeGuard[Pattern]:
    """Whether ``value`` is a pattern compiled here."""
    return isinstance(value, _RE2_PATTERN)


def _reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else exc
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


_RE2_PATTERN = type(re2.compile("", _OPTIONS))
