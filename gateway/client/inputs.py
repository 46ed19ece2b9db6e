"""What the user gives the commands: documents in files, JSON inputs, times. A bad one is a
usage error (exit code 2), found before anything is sent."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

RELATIVE = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class UsageError(Exception):
    """The command line asks for something impossible; nothing was sent."""


def read_document(name: str) -> Any:
    """A YAML or JSON file (JSON is YAML; a .json file is read as JSON for its error messages)."""
    try:
        text = Path(name).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
    if name.endswith(".json"):
        return _json(text, name)
    import yaml  # here: only `triggers apply` and `subscriptions create -f` read YAML

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{name} is not YAML or JSON: {exc}") from None


def read_input(value: str) -> Any:
    """`--input '{...}'`, or `--input @file.json`."""
    if value.startswith("@"):
        return read_document(value[1:])
    return _json(value, "--input")


def since(value: str) -> str:
    """An RFC 3339 time with an offset, as the API wants it, from one (UTC if it has none) or
    from an age such as `90m`, `2h` or `7d`."""
    relative = RELATIVE.match(value)
    if relative:
        try:
            moment = datetime.now(UTC) - timedelta(**{UNITS[relative[2]]: int(relative[1])})
        except (OverflowError, ValueError):
            raise UsageError(f"--since {value!r}: an age past year 1") from None
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise UsageError(
                f"--since {value!r}: neither a time (2026-12-01T00:00:00Z) nor an age (2h)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{where} is not JSON: {exc}") from None
