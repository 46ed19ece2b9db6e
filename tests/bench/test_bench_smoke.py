"""The benchmark's smoke run: it completes and fills every table with numbers. Not timed:
the figures themselves are only measured by a full `python -m bench`."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import BEGIN, END, TITLES
from tests.conftest import LOADS_THE_MACHINE

CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.mark.xdist_group(LOADS_THE_MACHINE)
def test_smoke_run_writes_every_table_with_numbers(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    out.write_text(f"# Benchmarks\n\nnotes kept\n\n{BEGIN}\nold\n{END}\n\nmore notes\n")
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nnotes kept\n") and text.endswith("more notes\n")
    assert "\nold\n" not in text
    setups = {"embedded (SQLite)"}
    if "skipping" not in result.stderr or os.environ.get("GATEWAY_REQUIRE_SERVICES") == "1":
        setups.add("PostgreSQL + Redis, 1 worker(s)")
    for scenario, title in TITLES.items():
        table = text.split(f"### {title}\n", 1)[1].strip().split("\n\n", 1)[0]
        header, _, *rows = [line for line in table.splitlines() if line.startswith("|")]
        columns = [c.strip() for c in header.strip("|").split("|")]
        assert {row.split("|")[1].strip() for row in rows} == setups, (scenario, rows)
        for row in rows:
            cells = dict(zip(columns, (c.strip() for c in row.strip("|").split("|")), strict=True))
            assert cells["errors"] == "0", (scenario, cells, errors_printed(result.stdout))
            for column, cell in cells.items():
                if column in ("setup", "load"):
                    continue
                number = float(re.sub(r"[,%]", "", cell))
                assert math.isfinite(number), (scenario, column, cell)


def errors_printed(stdout: str) -> list[str]:
    """The lines where the bench named its errors (the first of each run), for the failure message."""
    return [line for line in stdout.splitlines() if "error(s), the first:" in line or "failed" in line]
