"""`gateway demo --exit`, the README's first example, run as a user runs it: it walks through
every way a trigger is answered, prints each journey, and exits 0."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from gateway.demo import WALK_THROUGH

GATEWAY = Path(sys.executable).parent / "gateway"


def test_the_demo_prints_every_journey_and_exits_0(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(GATEWAY), "demo", "--port", "0", "--exit"],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
        env={"PATH": str(GATEWAY.parent), "HOME": str(tmp_path)},
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr + out
    assert done.stderr == "", done.stderr
    for step in WALK_THROUGH:
        assert step.name in out
        for input in step.inputs:
            assert f"started {step.trigger_id} with {json.dumps(input)}" in out
    starts = sum(len(step.inputs) * len(step.subscriptions) for step in WALK_THROUGH)
    assert out.count("COMPLETED") == starts  # every journey ends, and completes
    assert out.count("acknowledged; its callback came") == 2  # ASYNC, and DYNAMIC's 202
    assert re.search(r"attempt 1: answered 503 in \d+ ms\n\s+attempt 2: answered 200", out)
    assert '{"approved": true, "by": "demo approver"}' in out
    assert re.search(r"id demo, secret \S{20,}", out)
