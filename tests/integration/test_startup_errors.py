"""A misconfigured `gateway` command ends at once with exit code 2 and one line that names the
setting, what is wrong and what to do: the real command, in a process of its own."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings, open_store, settings_env, start_gateway
from tests.servers import Subscriber, answer, bound_socket
from tests.services import POSTGRES, RedisProxy, Store


def free_port() -> int:
    with bound_socket() as sock:
        return int(sock.getsockname()[1])


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


class Running:
    """The real `gateway` command while it runs, its stderr read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    @classmethod
    async def start(cls, cwd: Path, *args: str, env: dict[str, str]) -> Running:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", *args, env=env, cwd=cwd, stderr=asyncio.subprocess.PIPE
        )
        return cls(process)

    async def line(self, starting: str, within: float = 15) -> str:
        """Read on until a line starts with ``starting``; that line."""
        assert self.process.stderr is not None
        async with asyncio.timeout(within):
            while True:
                raw = await self.process.stderr.readline()
                assert raw, f"the gateway ended ({await self.process.wait()}) after: {self.lines}"
                self.lines.append(raw.decode().rstrip("\n"))
                if self.lines[-1].startswith(starting):
                    return self.lines[-1]

    async def stop(self) -> str:
        """Stop it (SIGTERM); what it wrote after the last line read."""
        if self.process.returncode is None:
            self.process.terminate()
        _, rest = await asyncio.wait_for(self.process.communicate(), 20)
        return rest.decode()


def files_bytes(db_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(db_path.parent.glob(db_path.name + "*")))


def clean_env(**env: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}, **env}


CREDENTIALS = re.compile(r"client_id:\s+(\S+)\s+client_secret:\s+(\S+)")


async def test_a_port_in_use_is_one_line_and_the_next_start_still_shows_the_credentials(
    tmp_path: Path,
) -> None:
    """The admin client's credentials are created and shown once the port is bound, so a start
    that fails before (here: the port is taken) uses nothing up."""
    with bound_socket() as taken:
        taken.listen()
        port = taken.getsockname()[1]
        ended = gateway(tmp_path, "serve", "--port", str(port))
        assert ended.returncode == 2, ended.stderr
        assert ended.stderr.splitlines() == [
            f"gateway: cannot listen on 127.0.0.1:{port} (Address already in use); stop what uses it, "
            "or choose another port with --port (GATEWAY_PORT)"
        ]
    env = clean_env(GATEWAY_SECRET_KEY=KEY, GATEWAY_LOG_LEVEL="WARNING")
    first = await Running.start(tmp_path, "serve", "--port", str(port), env=env)
    try:
        serving = await first.line("gateway: serving on")
        await first.line("Set GATEWAY_BOOTSTRAP_CLIENT_ID")
    finally:
        await first.stop()
    assert serving == f"gateway: serving on http://127.0.0.1:{port} (database {tmp_path / 'gateway.db'})"
    found = CREDENTIALS.search("\n".join(first.lines))
    assert found is not None, first.lines
    assert first.lines.index(serving) < first.lines.index(next(x for x in first.lines if "client_id:" in x))

    again = await Running.start(tmp_path, "serve", "--port", str(port), env=env)
    try:
        await again.line("gateway: serving on")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            form = {"grant_type": "client_credentials", "client_id": found[1], "client_secret": found[2]}
            token = await http.post("/oauth/token", data=form)
        assert token.status_code == 200, token.text
        assert "triggers:manage" in token.json()["scope"].split()
    finally:
        rest = await again.stop()
    assert "client_id:" not in "\n".join([*again.lines, rest])  # shown only once
    stored = files_bytes(tmp_path / "gateway.db")
    assert found[1].encode() in stored and found[2].encode() not in stored  # only its hash is kept


async def test_redis_unreachable_is_waited_for_a_line_per_attempt_or_one_line_with_no_wait(
    tmp_path: Path,
) -> None:
    async with open_store("distributed", tmp_path) as store:
        proxy = RedisProxy(store.redis_url)  # not up yet: nothing listens on its port
        with_password = proxy.url.replace("redis://", "redis://:hunter2@")
        env = {**settings_env(make_settings(store, "http://127.0.0.1:1")), "GATEWAY_LOG_LEVEL": "WARNING"}
        for command in ("serve", "worker"):
            ended = await asyncio.to_thread(
                gateway, tmp_path, command, "--no-wait", **{**env, "GATEWAY_REDIS_URL": with_password}
            )
            assert ended.returncode == 2, ended.stderr
            masked = with_password.replace("hunter2", "***")
            assert ended.stderr.splitlines() == [
                f"gateway: GATEWAY_REDIS_URL: Redis at {masked} is unreachable (Connection refused); "
                "start it or fix the URL (without --no-wait, the gateway waits for it)"
            ]
        port = free_port()
        waiting = await Running.start(
            tmp_path, "serve", "--port", str(port), env=clean_env(**{**env, "GATEWAY_REDIS_URL": proxy.url})
        )
        try:
            retrying = f"gateway: Redis at {proxy.url} is unreachable (Connection refused); retrying in"
            assert await waiting.line(retrying) == f"{retrying} 1 s"
            await proxy.up()
            await waiting.line("gateway: serving on", within=20)
        finally:
            await waiting.stop()
            proxy.down()
        *attempts, serving = waiting.lines
        assert attempts[0] == f"{retrying} 1 s"
        assert all(line.startswith(retrying) for line in attempts), waiting.lines  # one per attempt
        assert serving.startswith(f"gateway: serving on http://127.0.0.1:{port}")


async def test_a_key_that_does_not_decrypt_what_is_stored_is_refused_by_serve_and_worker(
    store: Store, subscriber: Subscriber
) -> None:
    old_key, new_key = "o" * 40, "n" * 40
    async with start_gateway(store, worker=False, secret_key=old_key) as running:
        await running.create_trigger()
        sub = await running.subscribe("test:approver", subscriber.endpoint("a", answer(200, {})), "SYNC")
        settings = running.settings
    env = {**settings_env(settings), "GATEWAY_SECRET_KEY": new_key}
    for command in ("serve", "worker") if store.mode == "distributed" else ("serve",):
        port = ["--port", str(free_port())] if command == "serve" else []
        ended = await asyncio.to_thread(gateway, store.path, command, *port, **env)
        assert ended.returncode == 2, ended.stderr
        assert ended.stderr.splitlines() == [
            f"gateway: GATEWAY_SECRET_KEY does not decrypt what the database holds (the signing "
            f"secret of subscription {sub['id']}): was the key changed? Put the old key first in the "
            "comma-separated list (GATEWAY_SECRET_KEY=<old key>,<new key>), or follow the README's "
            "procedure for rotating the secret key"
        ]


def _without_root_powers() -> list[str]:
    """A prefix that runs a command without root's power to write where permissions forbid
    (CAP_DAC_OVERRIDE), when the tests run as root: a read-only directory stops it then too."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root, and without setpriv (util-linux) root writes into any directory")
    return ["setpriv", "--inh-caps=-dac_override", "--bounding-set=-dac_override", "--"]


@pytest.mark.parametrize("case", ["read-only working directory", "key file under a file"])
def test_a_key_file_that_cannot_be_written_is_one_line_naming_the_settings(tmp_path: Path, case: str) -> None:
    """No GATEWAY_SECRET_KEY: the key is kept in a file, which here cannot be created."""
    (tmp_path / "data").mkdir()
    cwd = tmp_path / "read-only"
    cwd.mkdir()
    env = clean_env(GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'data' / 'gateway.db'}")
    if case == "read-only working directory":
        cwd.chmod(0o555)
        key_file, reason, prefix = cwd / ".gateway-secret-key", "Permission denied", _without_root_powers()
    else:
        (tmp_path / "file").write_text("not a directory")
        key_file, reason, prefix = tmp_path / "file" / "key", "Not a directory", []
        env["GATEWAY_SECRET_KEY_FILE"] = str(key_file)
    command = [*prefix, sys.executable, "-m", "gateway.cli", "serve"]
    ended = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert ended.returncode == 2, ended.stderr
    assert ended.stderr.splitlines() == [
        f"gateway: GATEWAY_SECRET_KEY is not set and its key file {key_file} cannot be read or created "
        f"({reason}); set GATEWAY_SECRET_KEY, or GATEWAY_SECRET_KEY_FILE to a file in a writable directory"
    ]
