"""Output: tables for people (rich, imported only when a table is drawn, so that the server's
commands never load it) and plain JSON for scripts."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

Row = Sequence[Any]
PIPED_WIDTH = 250


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    drawn = Console(stderr=stderr, highlight=False)
    if not drawn.is_terminal and "COLUMNS" not in os.environ:
        drawn.width = PIPED_WIDTH  # into a file or a pager: whole rows, not 80 columns' worth
    return drawn


def table(columns: Sequence[str], rows: Iterable[Row], title: str | None = None) -> Table:
    """One line per row (a long value ends in …), as `kubectl get` prints, with ids whole: they
    are copied into the next command."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    cells = [[Text(cell(value)) for value in row] for row in rows]  # Text: "[x]" is no markup
    drawn = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for index, name in enumerate(columns):
        whole = max((len(row[index]) for row in cells), default=0) if name == "id" else None
        drawn.add_column(name, no_wrap=True, overflow="ellipsis", min_width=whole)
    for row in cells:
        drawn.add_row(*row)
    return drawn


def show(columns: Sequence[str], rows: Iterable[Row], empty: str, title: str | None = None) -> None:
    rows = list(rows)
    if not rows:
        print(empty, file=sys.stderr)
        return
    console().print(table(columns, rows, title))


def cell(value: Any) -> str:
    """A value as table text: nothing for None, JSON for documents, a short time."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def when(timestamp: str | None) -> str | None:
    """An API time, to the second and without the offset: tables are read, not parsed."""
    return timestamp[:19].replace("T", " ") if timestamp else None


def excerpt(text: str | None, length: int = 60) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1] + "…"


def json_line(data: Any) -> str:
    """One document per line: what a script reading a stream splits on."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
