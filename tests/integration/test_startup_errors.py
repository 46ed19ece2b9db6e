"""A misconfigured `gateway` command ends at once with exit code 2 and one line that names the
setting, what is wrong and what to do: the real command, in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import POSTGRES

KEY = "k" * 40
SERVER = POSTGRES.replace("postgresql://", "postgresql+asyncpg://")


def gateway(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env={**clean, "GATEWAY_SECRET_KEY": KEY, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"GATEWAY_DATABASE_URL": "garbage"}, "gateway: GATEWAY_DATABASE_URL must be a URL such as"),
        (
            {"GATEWAY_DATABASE_URL": "postgresql://postgres@127.0.0.1/test"},
            "gateway: GATEWAY_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://",
        ),
        ({"GATEWAY_DATABASE_URL": "sqlite:///gateway.db"}, "gateway: GATEWAY_DATABASE_URL must start with"),
        ({"GATEWAY_LOG_LEVEL": "verbose"}, "gateway: GATEWAY_LOG_LEVEL must be one of DEBUG"),
        (
            {"GATEWAY_MAX_RESPONSE_DEADLINE": "banana"},
            "gateway: GATEWAY_MAX_RESPONSE_DEADLINE must be an ISO-8601",
        ),
        ({"GATEWAY_TRIGGERS_FILE": "missing.yaml"}, "gateway: GATEWAY_TRIGGERS_FILE names 'missing.yaml'"),
        (
            {"GATEWAY_REDIS_URL": "redis://127.0.0.1:6379"},
            "gateway: GATEWAY_REDIS_URL needs a shared database",
        ),
        (
            {"GATEWAY_DATABASE_URL": "sqlite+aiosqlite:////proc/no-such-dir/gateway.db"},
            "gateway: GATEWAY_DATABASE_URL: cannot open the SQLite file '/proc/no-such-dir/gateway.db'",
        ),
        (
            {"GATEWAY_DATABASE_URL": SERVER.rsplit("/", 1)[0] + "/no_such_database"},
            "gateway: GATEWAY_DATABASE_URL: there is no database 'no_such_database' on",
        ),
        (
            {"GATEWAY_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/test"},
            "gateway: GATEWAY_DATABASE_URL: cannot reach PostgreSQL at 127.0.0.1:1",
        ),
    ],
)
def test_a_misconfiguration_is_one_line_and_exit_code_2(
    tmp_path: Path, env: dict[str, str], line: str
) -> None:
    ended = gateway(tmp_path, "serve", **env)
    assert ended.returncode == 2, ended.stderr
    [only] = ended.stderr.splitlines()
    assert only.startswith(line), only
    assert ended.stdout == ""


def test_a_misspelt_setting_is_named_with_what_was_meant(tmp_path: Path) -> None:
    ended = gateway(tmp_path, "serve", GATEWAY_DATABSE_URL="x", GATEWAY_LOG_LEVEL="verbose")
    assert ended.returncode == 2
    # Refused for the log level; the misspelt name is only a warning, after the settings parse.
    assert ended.stderr.splitlines() == [
        "gateway: GATEWAY_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not 'verbose'"
    ]
    migrated = gateway(tmp_path, "migrate", GATEWAY_DATABSE_URL="x")
    assert migrated.returncode == 0
    assert migrated.stderr.splitlines()[0] == (
        "gateway: warning: GATEWAY_DATABSE_URL is not a setting and is ignored; "
        "did you mean GATEWAY_DATABASE_URL?"
    )


def test_version(tmp_path: Path) -> None:
    shown = gateway(tmp_path, "--version")
    assert (shown.returncode, shown.stdout.strip()) == (0, "gateway 0.1.0")
