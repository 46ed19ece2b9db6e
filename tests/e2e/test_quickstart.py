"""The README's quickstart, run as written against a real `gateway serve` process."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import bound_socket

README = Path(__file__).resolve().parents[2] / "README.md"
# What the README's `gateway serve` line sets; the demo subscriber is on loopback, which the
# SSRF guard refuses unless allowed.
SERVE_ENV = {
    "GATEWAY_BOOTSTRAP_CLIENT_ID": "admin",
    "GATEWAY_BOOTSTRAP_CLIENT_SECRET": "change-me-now",
    "GATEWAY_ALLOWED_TARGET_NETWORKS": "127.0.0.0/8",
}


def readme_block(marker: str) -> str:
    text = README.read_text()
    match = re.search(rf"<!-- {marker} -->\n```bash\n(.*?)\n```", text, re.S)
    assert match, f"README.md has no bash block after <!-- {marker} -->"
    return match.group(1)


def free_port() -> int:
    with bound_socket() as sock:
        return int(sock.getsockname()[1])


@pytest.fixture
def served_gateway(tmp_path: Path) -> Iterator[int]:
    """`gateway serve` with the quickstart's bootstrap client, in an empty directory."""
    gateway = shutil.which("gateway", path=os.path.dirname(sys.executable))
    assert gateway, "the `gateway` console script is not installed in this environment"
    port = free_port()
    env = {**os.environ, **SERVE_ENV, "GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    process = subprocess.Popen(
        [gateway, "serve", "--port", str(port)], cwd=tmp_path, env=env, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("gateway serve did not answer /health within 20 s")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stderr is not None
        stderr = process.stderr.read().decode()
        assert "change-me-now" not in stderr  # the secret is never echoed
    assert (tmp_path / "gateway.db").exists()  # the embedded default: ./gateway.db


def test_quickstart_curl_examples_work_as_written(served_gateway: int, tmp_path: Path) -> None:
    script = readme_block("quickstart")
    # Same script, on ports that are free on this machine.
    script = script.replace("8080", str(served_gateway)).replace("9000", str(free_port()))
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, timeout=60
    )
    output = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    # The long-poll's status, then the statuses a start with `Prefer: wait=10` answers with.
    assert output.count('"status":"COMPLETED"') == 2
    assert output.count('"output":{"approver":"ada"') == 2
    assert '"input":{"requestedFor":"ann"}' in output


def test_the_readme_serve_line_sets_what_this_test_serves_with() -> None:
    [line] = [line for line in README.read_text().splitlines() if line.endswith(" gateway serve")]
    assert line == " ".join(f"{name}={value}" for name, value in SERVE_ENV.items()) + " gateway serve"
