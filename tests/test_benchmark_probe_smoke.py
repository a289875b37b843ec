"""``python -m benchmarks.probe`` keeps working: a small run against the mock exchanges
prints its figure line with every key probed. No time is asserted (machines are noisy;
docs/probe.md has the real run)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_small_probe_benchmark_prints_its_figure() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXVAULT_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.probe", "--keys", "25", "--rate", "50"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = proc.stdout.strip().splitlines()[-1]
    match = re.search(r"25 keys over 5 exchanges .*floor 0\.10 s, ratio [\d.]+.*; 25 ok", line)
    assert match is not None, line
