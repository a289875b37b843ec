"""Figure 6: CLI responsiveness: ``exvault --help`` wall time (median of 20 runs).

Next to it, the interpreter's own floor (``python -c pass``, same interpreter), run
interleaved. When the target is missed, the notes list the heaviest imports of
``exvault --help`` from ``python -X importtime``.
"""

from __future__ import annotations

import re
import subprocess

from benchmarks.common import (
    Config,
    Results,
    Row,
    clean_env,
    exvault_argv,
    fmt_ratio,
    fmt_time,
    median,
    paired_ratio,
    run_measured,
    verdict,
)

FIGURE = "6. CLI responsiveness"
TARGET_S = 0.150


def run(cfg: Config) -> Results:
    res = Results()
    runs = cfg.repeats(default=20, quick=3)
    env = clean_env()
    exvault = [*exvault_argv(cfg.python), "--help"]
    floor = [cfg.python, "-c", "pass"]
    for _ in range(1 if cfg.quick else 2):  # warm-up
        run_measured(exvault, env=env)
        run_measured(floor, env=env)
    ours, theirs, cpu = [], [], []
    for _ in range(runs):
        m = run_measured(exvault, env=env)
        ours.append(m.seconds)
        cpu.append(m.cpu_seconds)
        theirs.append(run_measured(floor, env=env).seconds)
    t = median(ours)
    res.add(
        Row(
            f"{FIGURE}: exvault --help ({runs} runs)",
            f"{fmt_time(t)} ({fmt_time(median(cpu))} CPU)",
            f"{fmt_time(median(theirs))} (python -c pass, floor)",
            fmt_ratio(paired_ratio(ours, theirs)),
            f"≤ {TARGET_S * 1000:.0f} ms",
            verdict(t <= TARGET_S),
        )
    )
    if t > TARGET_S:
        heavy = heaviest_imports(exvault, env, cfg.python)
        res.note(
            "Figure 6: heaviest imports of `exvault --help` (python -X importtime, self "
            "time summed per package): " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in heavy)
        )
    return res


_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def heaviest_imports(
    argv: list[str], env: dict[str, str], python: str, top: int = 10
) -> list[tuple[str, float]]:
    """Packages (vault's own modules one by one) by the import time of all their
    modules (self time, ms), for ``argv`` run under ``python -X importtime``."""
    script = argv[0]
    cmd = [python, "-X", "importtime", script, *argv[1:]]
    if script == python:  # already "python -m ..."
        cmd = [python, "-X", "importtime", *argv[1:]]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    totals: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        parts = m.group(4).split(".")
        name = ".".join(parts[:2]) if parts[0] == "vault" else parts[0]
        totals[name] = totals.get(name, 0.0) + int(m.group(1)) / 1000
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]
