"""Subscriber URLs: their query string is kept apart (encrypted) and shown masked."""

from __future__ import annotations

from gateway.domain.urls import joined, split


def test_every_query_value_and_every_bare_name_is_masked() -> None:
    shown, query = split("https://hooks.example.com/in?api_key=s3cret&region=eu&sk_live_abc")
    assert shown == "https://hooks.example.com/in?api_key=***&region=***&***"
    assert query == "api_key=s3cret&region=eu&sk_live_abc"
    assert joined(shown, query) == "https://hooks.example.com/in?api_key=s3cret&region=eu&sk_live_abc"


def test_a_url_without_a_query_is_kept_as_it_is() -> None:
    assert split("https://hooks.example.com/in") == ("https://hooks.example.com/in", None)
    assert joined("https://hooks.example.com/in", None) == "https://hooks.example.com/in"
