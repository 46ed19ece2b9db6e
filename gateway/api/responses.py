"""How endpoints answer: JSON documents, and the headers some answers carry."""

from __future__ import annotations

import json
from typing import Any

from starlette import responses

# On every answer that carries a secret: no cache may keep it.
NO_STORE = {"Cache-Control": "no-store"}


class JSONResponse(responses.JSONResponse):
    """Starlette's, except that a string that is not Unicode (a lone surrogate, stored before
    the gateway refused them) is sent escaped, as JSON allows, instead of failing the read."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


def page(items: list[Any], total: int | None) -> JSONResponse:
    """One page of a collection, with its total when the caller asked for one (count=true)."""
    return JSONResponse(items, headers={} if total is None else {"X-Total-Count": str(total)})
