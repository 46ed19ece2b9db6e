"""ARCHITECTURE.md is true: the folders and modules it names exist, every folder of gateway/
is named in it, and the imports keep the layers' rules it states."""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "gateway"
MAP = (ROOT / "ARCHITECTURE.md").read_text()
NAMED = re.compile(r"`([A-Za-z0-9_./-]+(?:/|\.py|\.yaml))`")
SECTION = re.compile(r"^### `([A-Za-z0-9_/]+)`", re.MULTILINE)


def named_paths() -> Iterator[tuple[str, Path]]:
    """Every path the map names, with the folder it is relative to: its section's."""
    base = ROOT
    for line in MAP.splitlines():
        heading = SECTION.match(line)
        if heading:
            base = ROOT / heading.group(1)
        for name in NAMED.findall(line):
            yield name, base


def resolve(name: str, base: Path) -> Path | None:
    for root in (ROOT, GATEWAY, base):
        if (root / name).exists():
            return root / name
    matches = list(base.rglob(name.rstrip("/"))) if "/" not in name.rstrip("/") else []
    return matches[0] if matches else None


def test_every_folder_and_module_the_map_names_exists() -> None:
    missing = [name for name, base in named_paths() if resolve(name, base) is None]
    assert not missing, f"ARCHITECTURE.md names what does not exist: {missing}"


def test_every_folder_of_the_gateway_is_in_the_map() -> None:
    named = {resolve(name, base) for name, base in named_paths()}
    folders = [
        path
        for path in GATEWAY.rglob("*")
        if path.is_dir() and "__pycache__" not in path.parts and path.parent.name != "migrations"
    ]
    unnamed = [str(f.relative_to(ROOT)) for f in folders if f not in named]
    assert not unnamed, f"ARCHITECTURE.md's codemap does not name: {unnamed}"


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def modules(layer: str) -> list[Path]:
    return sorted(path for path in (GATEWAY / layer).rglob("*.py") if "migrations" not in path.parts)


def offending(path: Path, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    return sorted(
        name
        for name in imports_of(path)
        if name.startswith(forbidden) and not name.startswith(allowed) and name not in allowed
    )


ENTRYPOINTS = ("gateway.cli", "gateway.worker", "gateway.serve", "gateway.startup", "gateway.bootstrap")


@pytest.mark.parametrize(
    ("layer", "forbidden", "allowed"),
    [
        ("domain", ("gateway.",), ("gateway.domain",)),
        ("adapters", ("gateway.usecases", "gateway.api", "gateway.runtime", *ENTRYPOINTS), ()),
        ("usecases", ("gateway.api", *ENTRYPOINTS), ()),
        ("telemetry", ("gateway.",), ("gateway.domain", "gateway.settings", "gateway.telemetry")),
        (
            "api",
            ("gateway.adapters", "sqlalchemy", "sqlmodel", *ENTRYPOINTS),
            ("gateway.adapters.limiter",),
        ),
        ("console", ("gateway.adapters", "sqlalchemy", "sqlmodel", *ENTRYPOINTS), ()),
        (
            "subscriber",
            ("gateway.", "sqlalchemy", "sqlmodel", "arq", "asyncpg", "aiosqlite", "redis", "pydantic"),
            ("gateway.subscriber", "gateway.domain.signing"),
        ),
    ],
)
def test_layers_import_only_what_the_map_allows(
    layer: str, forbidden: tuple[str, ...], allowed: tuple[str, ...]
) -> None:
    found = {
        str(path.relative_to(ROOT)): bad
        for path in modules(layer)
        if path.name != "app.py" or layer != "api"  # the app opens the runtime (bootstrap)
        for bad in [offending(path, forbidden, allowed)]
        if bad
    }
    assert not found, f"{layer}/ imports what ARCHITECTURE.md forbids it: {found}"


# The client commands are a client of the HTTP API: nothing of the server, and only these.
CLIENT_LIBRARIES = ("httpx", "rich", "yaml")


def test_the_client_commands_import_nothing_of_the_server() -> None:
    found = {
        str(path.relative_to(ROOT)): bad
        for path in modules("client")
        for bad in [
            sorted(
                name
                for name in imports_of(path)
                if not name.startswith("gateway.client")
                and name.split(".")[0] not in (*sys.stdlib_module_names, *CLIENT_LIBRARIES)
            )
        ]
        if bad
    }
    assert not found, f"client/ imports what ARCHITECTURE.md forbids it: {found}"


def test_the_api_app_imports_bootstrap_and_nothing_else_forbidden() -> None:
    bad = offending(
        GATEWAY / "api" / "app.py", ("gateway.adapters", "sqlalchemy", "gateway.cli", "gateway.worker")
    )
    assert not bad, bad


def test_the_rules_would_catch_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from gateway.adapters.database import rows\nimport sqlalchemy\n")
    assert offending(module, ("gateway.adapters", "sqlalchemy"), ("gateway.adapters.limiter",)) == [
        "gateway.adapters.database.rows",
        "sqlalchemy",
    ]
