"""`gateway` commands as processes of their own, forked from a server process that imported
the gateway once (multiprocessing's forkserver).

Each runs ``gateway.cli.main(argv)`` as the `gateway` command does, in a process that can be
stopped, killed -9 and started again; what is skipped is the interpreter's start and the
imports, 2 s of CPU per process and most of the suite's CPU before. The tests of the command
itself (tests/e2e, the CLI's output in tests/integration/test_distributed.py) start the real
`gateway` executable.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

multiprocessing.set_forkserver_preload(["gateway.cli", "gateway.worker", "gateway.api.app"])
_FORKSERVER = multiprocessing.get_context("forkserver")


def _run(argv: list[str], env: dict[str, str], log: str | None, cwd: str | None) -> None:
    os.environ.clear()
    os.environ.update(env)
    if cwd is not None:
        os.chdir(cwd)
    if log is not None:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    from gateway import cli

    sys.exit(cli.main(argv))


class GatewayProcess:
    """What the tests use of subprocess.Popen, for a forked `gateway` command."""

    def __init__(
        self, argv: list[str], env: Mapping[str, str], *, log: Path | None = None, cwd: Path | None = None
    ) -> None:
        self.log = log  # where its stdout and stderr go (appended); None: the forkserver's
        self._process = _FORKSERVER.Process(
            target=_run,
            args=(argv, dict(env), None if log is None else str(log), None if cwd is None else str(cwd)),
            name="gateway " + " ".join(argv),
        )
        self._process.start()

    def output(self) -> str:
        """What it has written to its log so far."""
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")

    @property
    def pid(self) -> int:
        pid = self._process.pid
        assert pid is not None
        return pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def send_signal(self, sig: int) -> None:
        if self._process.exitcode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(self._process.name, timeout or 0)
        return self._process.exitcode
