"""What every figure shares: the run's settings, table rows, timing and formatting."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DASH = "—"
SKIPPED = "skipped (not installed)"


# ----------------------------------------------------------------------------- settings


@dataclass
class Config:
    """The settings of one benchmark run."""

    quick: bool = False
    scale: int = 100_000
    repeat: int | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    cache: Path = field(default_factory=lambda: default_cache_dir())
    python: str = sys.executable
    peers: bool = True
    log: Callable[[str], None] = field(default=lambda _msg: None)

    def repeats(self, default: int, quick: int = 1) -> int:
        """How many repeated runs a figure takes (``--repeat`` wins)."""
        if self.repeat is not None:
            return max(1, self.repeat)
        return quick if self.quick else default


def skip_reason(cfg: Config, available: bool) -> str | None:
    """Why a peer is not measured (None when it is)."""
    if not cfg.peers:
        return "skipped (--no-peers)"
    return None if available else SKIPPED


def default_cache_dir() -> Path:
    """Where built vaults and peer databases are kept between runs (keyed by size)."""
    return Path(os.environ.get("EXVAULT_BENCH_CACHE", "/tmp/exvault-bench-cache"))


# ----------------------------------------------------------------------------- results


@dataclass
class Row:
    """One line of the table."""

    figure: str
    exvault: str
    peer: str = DASH
    ratio: str = DASH
    target: str = DASH
    met: str = DASH


@dataclass
class Results:
    """Rows of the table and notes printed under it."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *rows: Row) -> None:
        self.rows.extend(rows)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def extend(self, other: Results) -> None:
        self.rows.extend(other.rows)
        self.notes.extend(other.notes)


def markdown_table(rows: Sequence[Row]) -> str:
    """The rows as one markdown table."""
    header = ("figure", "exvault", "peer", "ratio", "target", "met?")
    cells = [header, *((r.figure, r.exvault, r.peer, r.ratio, r.target, r.met) for r in rows)]
    cells = [tuple(c.replace("|", "\\|") for c in row) for row in cells]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    out = [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in cells[1:]]
    return "\n".join(out)


# ----------------------------------------------------------------------------- statistics


def median(values: Sequence[float]) -> float:
    """The median (NaN for no values)."""
    return statistics.median(values) if values else float("nan")


def paired_ratio(ours: Sequence[float], theirs: Sequence[float]) -> float:
    """Median of ours[i] / theirs[i]: each pair was measured back to back in this run."""
    pairs = [a / b for a, b in zip(ours, theirs, strict=False) if b > 0]
    return median(pairs)


# ----------------------------------------------------------------------------- formatting


def fmt_time(seconds: float) -> str:
    """12 µs, 3.4 ms, 1.23 s."""
    if seconds != seconds:  # NaN
        return DASH
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms" if seconds < 0.1 else f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.2f} s"


def fmt_mib(kib: float) -> str:
    """Memory given in KiB, shown in MiB."""
    return f"{kib / 1024:.0f} MiB" if kib >= 10 * 1024 else f"{kib / 1024:.1f} MiB"


def fmt_ratio(ratio: float) -> str:
    if ratio != ratio:
        return DASH
    if ratio == float("inf"):
        return "∞"
    return f"{ratio:.2f}" if ratio < 100 else f"{ratio:.0f}"


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


# ----------------------------------------------------------------------------- processes


@dataclass
class Measured:
    """A finished child process: wall time, its CPU time (user + system), its own
    peak RSS, exit code, stderr."""

    seconds: float
    maxrss_kib: int
    returncode: int
    stderr: str
    cpu_seconds: float = 0.0


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any EXVAULT_* setting, plus ``extra``.

    PYTHONDONTWRITEBYTECODE is dropped too: an installed exvault has its .pyc files
    (pip compiles them), so a child Python must not recompile every module from
    source on each start, as it would in a sandbox that sets that variable.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EXVAULT_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(extra or {})
    return env


# Runs the command given as its arguments and prints, as JSON, the command's wall time,
# peak RSS and CPU time from its own wait4. It runs in a fresh small process because
# Linux carries the parent's RSS into a child's peak (exec records the high-water mark
# of the memory the child was forked with): a command started directly by a
# benchmark that has just built a 100,000-credential vault in-process would report
# the builder's peak, whatever it used itself.
_MEASURE_CHILD = """
import json, os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdin=0, stdout=subprocess.DEVNULL, stderr=2)
_pid, status, usage = os.wait4(proc.pid, 0)
seconds = time.perf_counter() - start
print(json.dumps({
    "seconds": seconds,
    "maxrss_kib": usage.ru_maxrss,
    "returncode": os.waitstatus_to_exitcode(status),
    "cpu_seconds": usage.ru_utime + usage.ru_stime,
}))
"""


def run_measured(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    ok_codes: tuple[int, ...] = (0,),
    cwd: str | Path | None = None,
) -> Measured:
    """Run ``argv`` with stdout to /dev/null; its wall time and its own peak RSS and CPU
    time (``wait4``'s rusage, read by a small measuring process that starts it, so
    neither earlier children nor this process's own memory count).

    :raises RuntimeError: on an exit code outside ``ok_codes`` (stderr in the message).
    """
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as inp:
        if stdin is not None:
            inp.write(stdin)
            inp.seek(0)
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _MEASURE_CHILD, *argv],
            stdin=inp if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env=dict(env) if env is not None else clean_env(),
            cwd=cwd,
            check=False,
        )
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    try:
        found = json.loads(proc.stdout)
    except ValueError:
        raise RuntimeError(
            f"{' '.join(argv[:3])}... could not be measured: {stderr.strip()[-800:]}"
        ) from None
    if found["returncode"] not in ok_codes:
        raise RuntimeError(
            f"{' '.join(argv[:3])}... exited {found['returncode']}: {stderr.strip()[-800:]}"
        )
    return Measured(
        found["seconds"], found["maxrss_kib"], found["returncode"], stderr, found["cpu_seconds"]
    )


def run_checked(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    cwd: str | Path | None = None,
) -> str:
    """Run a setup command; its stdout (raises RuntimeError with stderr on failure)."""
    proc = subprocess.run(
        list(argv), input=stdin, capture_output=True, env=dict(env) if env else clean_env(), cwd=cwd
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:3])}... exited {proc.returncode}: "
            f"{proc.stderr.decode('utf-8', 'replace').strip()[-800:]}"
        )
    return proc.stdout.decode("utf-8", "replace")


def which(tool: str) -> str | None:
    return shutil.which(tool)


def has_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def exvault_argv(python: str = sys.executable) -> list[str]:
    """How to run the ``exvault`` console script of this environment."""
    script = Path(python).parent / "exvault"
    if script.is_file():
        return [str(script)]
    found = shutil.which("exvault")
    return [found] if found else [python, "-m", "vault.cli.main"]


def write_secret(path: Path, text: str) -> Path:
    """A 0600 file holding ``text`` (token and passphrase files)."""
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path
