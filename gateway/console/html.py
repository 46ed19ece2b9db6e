"""HTML for the console: every value goes through ``esc`` (or ``attrs``) before it reaches a
page, and every page is served under a policy that allows no other origin and no inline code."""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from starlette.responses import HTMLResponse

BASE = "/console"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

CURRENT = ' aria-current="page"'
NAV = (("invocations", "Invocations"), ("triggers", "Triggers"), ("subscriptions", "Subscriptions"))


def esc(value: object) -> str:
    """Any value as HTML text (None as an empty string)."""
    return "" if value is None else escape(str(value), quote=True)


def when(moment: datetime | None) -> str:
    return "" if moment is None else esc(moment.strftime("%Y-%m-%d %H:%M:%S"))


def pretty_json(value: Any) -> str:
    return esc(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def href(path: str, **query: str) -> str:
    """A console URL, escaped for an attribute; empty query values left out."""
    kept = {key: value for key, value in query.items() if value}
    return esc(BASE + path + (("?" + urlencode(kept)) if kept else ""))


def csrf_input(csrf: str) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(csrf)}">'


def button_form(action: str, label: str, csrf: str, extra: str = "") -> str:
    """A POST form with one button (each action is a form: it works without the script)."""
    return (
        f'<form method="post" action="{esc(BASE + action)}" class="inline">{csrf_input(csrf)}'
        f'{extra}<button type="submit">{esc(label)}</button></form>'
    )


def page(
    title: str, body: str, current: str = "", status_code: int = 200, signed_in: bool = True
) -> HTMLResponse:
    nav = "".join(
        f'<a href="{esc(BASE)}/{key}"{CURRENT if key == current else ""}>{esc(label)}</a>'
        for key, label in NAV
    )
    header = (
        f'<nav aria-label="Console">{nav}'
        f'<form method="post" action="{esc(BASE)}/logout" class="inline">'
        '<button type="submit">Sign out</button></form></nav>'
        if signed_in
        else ""
    )
    document = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · Trigger gateway console</title>
<link rel="stylesheet" href="{esc(BASE)}/static/console.css">
<link rel="icon" href="data:,">
<script type="module" src="{esc(BASE)}/static/console.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><span class="brand">Trigger gateway</span>{header}</header>
<main id="main">
<h1>{esc(title)}</h1>
{body}
</main>
</body>
</html>
"""
    return HTMLResponse(document, status_code=status_code, headers=HEADERS)


def fragment(body: str) -> HTMLResponse:
    """A part of a page that the script fetches to refresh it."""
    return HTMLResponse(body, headers=HEADERS)


def table(caption: str, headings: list[str], rows: list[list[str]], empty: str) -> str:
    """Cells are HTML already (escaped by whoever built them)."""
    if not rows:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headings)
    # Each cell names its column, for the phone layout, where rows stack as cards.
    labels = [f' data-label="{esc(h)}"' for h in headings]
    body = "".join(
        "<tr>" + "".join(f"<td{label}>{cell}</td>" for label, cell in zip(labels, row, strict=True)) + "</tr>"
        for row in rows
    )
    return (
        f'<div class="scroll"><table><caption>{esc(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def status_badge(status: str) -> str:
    return f'<span class="status status-{esc(status.lower())}">{esc(status)}</span>'


def notice(message: str | None) -> str:
    return f'<p class="notice" role="status">{esc(message)}</p>' if message else ""
