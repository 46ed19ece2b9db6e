"""A subscriber URL's query string may carry a credential (``?api_key=…``): it is kept
encrypted, like the Basic and Bearer credentials, and shown with every value masked.

The masked URL is what a subscription's document shows and sends back: a URL that comes back
equal to it keeps the stored query.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

MASK = "***"


class Split(NamedTuple):
    shown: str  # the URL with every query value masked (the URL itself when it has no query)
    query: str | None  # the query string, to be kept encrypted


def split(url: str) -> Split:
    parts = urlsplit(url)
    if not parts.query:
        return Split(url, None)
    # A bare name (?sk_live_abc) may itself be the credential: it is masked whole.
    masked = "&".join(
        f"{name}={MASK}" if equals else MASK
        for name, equals, _ in (pair.partition("=") for pair in parts.query.split("&"))
    )
    return Split(urlunsplit(parts._replace(query=masked)), parts.query)


def joined(shown: str, query: str | None) -> str:
    """The URL to call: the shown one with its real query."""
    if query is None:
        return shown
    return urlunsplit(urlsplit(shown)._replace(query=query))
