"""The benchmark entry point keeps working: ``python -m benchmarks --quick`` at tiny sizes.

No figure is asserted (machines are noisy; docs/benchmarks.md has the real run). Peers
are left out (``--no-peers``) so the test takes the same few seconds whether or not
pass, keepassxc-cli, age, pykeepass or eth-keyfile are installed; their figures must
then read "skipped", never a number.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIGURE_PREFIXES = ("1. ", "2. ", "3. ", "4. ", "5. ", "6. ")


def test_quick_run_prints_the_table(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXVAULT_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--no-peers",
            "--cache",
            str(tmp_path / "cache"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| figure"))
    assert [c.strip() for c in lines[header].strip("|").split("|")] == [
        "figure",
        "exvault",
        "peer",
        "ratio",
        "target",
        "met?",
    ]
    assert set(lines[header + 1]) <= {"|", "-"}
    rows = []
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    assert all(len(r) == 6 for r in rows)
    for prefix in FIGURE_PREFIXES:
        assert any(r[0].startswith(prefix) for r in rows), f"no row for figure {prefix}"
    assert not any(r[5] == "error" for r in rows), rows
    # Without peers, no peer column of figures 1 and 2 may hold a number.
    peer_rows = [
        r for r in rows if r[0].startswith("1. ") or (r[0].startswith("2. ") and " vs " in r[0])
    ]
    assert peer_rows and all(r[2].startswith("skipped") for r in peer_rows), peer_rows
    assert elapsed < 60, f"the quick run took {elapsed:.0f} s"


def test_only_takes_names_and_numbers() -> None:
    sys.path.insert(0, str(REPO))
    try:
        from benchmarks.__main__ import parse_only
    finally:
        sys.path.remove(str(REPO))
    assert parse_only("1,cli-help") == ["warm-read", "cli-help"]
    assert parse_only(None)[0] == "warm-read"


def test_signed_log_benchmark_runs_at_tiny_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import signed_log

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    common = ["--workdir", str(tmp_path), "--cache", str(tmp_path / "cache")]
    signed_log.main(["owner", "--entries", "40", "--batch", "3", "--repeats", "1", *common])
    signed_log.main(["check", "--credentials", "20", *common])
    lines = capsys.readouterr().out.splitlines()
    labels = [
        "edit one-shot",
        "edit one-shot, resumed",
        "edit repeated",
        "grant one-shot",
        "grant one-shot, resumed",
        "grant repeated",
        "batch of 3 grants, per grant",
        "check first run",
        "check second run",
    ]
    assert len(lines) == len(labels)
    for label, line in zip(labels, lines, strict=True):
        assert label in line and line.rstrip().endswith(("ms", " s")), line


def test_a_measured_command_reports_its_own_peak_memory_not_this_process() -> None:
    # Figure 4 builds its big vault in the benchmark's own process and then measures
    # commands as children: their peak RSS must be theirs, not the builder's (Linux
    # carries a parent's resident memory into a child's peak at fork and exec).
    from benchmarks.common import run_measured

    ballast = b"\1" * (256 * 2**20)  # 256 MiB, touched
    measured = run_measured([sys.executable, "-c", "pass"])
    assert len(ballast) == 256 * 2**20
    assert 0 < measured.maxrss_kib < 128 * 1024, measured
    assert measured.seconds > 0
    assert measured.returncode == 0


def test_agent_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import agent

    # A short directory: the agent's socket path must fit a Unix socket (107 bytes).
    top = Path(tempfile.mkdtemp(prefix="exvault-bench-"))
    try:
        agent.main(
            ["--repeats", "1", "--test-kdf", "--importtime", "--breakdown", "--workdir", str(top)]
        )
        assert not list(top.iterdir())  # its work directory, agent socket included, is gone
    finally:
        shutil.rmtree(top)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("exvault --version")
    for label in ("grant", "edit", "show --field secret"):
        line = next(line for line in lines if line.startswith(label + " "))
        assert line.count(" ms") == 3 and line.count("x ") == 1, line
    assert any(line.strip().startswith("import vault") for line in lines)
    layers = [line for line in lines if line.strip().startswith("imports: ")]
    assert len(layers) == len(agent.IMPORT_LAYERS) and all(" ms CPU" in line for line in layers)
