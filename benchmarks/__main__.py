"""``python -m benchmarks``: run the figures and print one markdown table.

Options: ``--quick`` (tiny sizes, one repeat: a smoke run), ``--only NAME[,NAME]``
(names or numbers 1-6: warm-read, cold-start, admin-unlock, scale, bulk-insert,
cli-help), ``--scale N`` (figure 4's size, default 100,000), ``--repeat N`` (every
figure's repeat count), ``--no-peers`` (exvault only; peers reported as skipped),
``--cache DIR`` (where built vaults are kept), ``--keep`` (leave the work directory).
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python benchmarks/__main__.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import FIGURES
from benchmarks.common import Config, Results, Row, default_cache_dir, markdown_table

MODULES = {
    "warm-read": "benchmarks.warm_read",
    "cold-start": "benchmarks.cold_start",
    "admin-unlock": "benchmarks.admin_unlock",
    "scale": "benchmarks.scale",
    "bulk-insert": "benchmarks.bulk_insert",
    "cli-help": "benchmarks.cli_help",
}


def parse_only(text: str | None) -> list[str]:
    if not text:
        return list(FIGURES)
    chosen = []
    for item in text.split(","):
        item = item.strip().lower()
        if item.isdigit() and 1 <= int(item) <= len(FIGURES):
            item = FIGURES[int(item) - 1]
        if item not in MODULES:
            raise SystemExit(
                f"benchmarks: unknown figure {item!r} (use 1-6 or {', '.join(FIGURES)})"
            )
        chosen.append(item)
    return [f for f in FIGURES if f in chosen]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 2**20:.1f} GiB RAM"
    except OSError:
        pass
    return (
        f"{os.cpu_count()} x {cpu}{memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="exvault benchmarks against its peers"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke)")
    parser.add_argument("--only", metavar="NAME", help="comma-separated figures (names or 1-6)")
    parser.add_argument("--scale", type=int, default=100_000, help="figure 4 size")
    parser.add_argument("--repeat", type=int, default=None, help="repeats for every figure")
    parser.add_argument(
        "--no-peers", action="store_true", help="measure exvault only (peers reported skipped)"
    )
    parser.add_argument(
        "--python",
        default=None,
        help="Python for new-process figures: 'user' (a regular install of this checkout "
        "in a venv under the cache; default), 'current' (default with --quick), or a path",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--cache", type=Path, default=None, help=f"cache directory (default {default_cache_dir()})"
    )
    args = parser.parse_args(argv)
    figures = parse_only(args.only)

    def log(message: str) -> None:
        print(f"[benchmarks] {message}", file=sys.stderr, flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="exvault-bench-"))
    os.chmod(workdir, 0o700)
    cfg = Config(
        quick=args.quick,
        scale=args.scale,
        repeat=args.repeat,
        workdir=workdir,
        cache=args.cache or default_cache_dir(),
        peers=not args.no_peers,
        log=log,
    )
    results = Results()
    failed = False
    started = time.perf_counter()
    mode = args.python or ("current" if args.quick else "user")
    if mode == "user" and set(figures) & {"cold-start", "admin-unlock", "scale", "cli-help"}:
        from benchmarks.userenv import user_python

        cfg.python, described = user_python(cfg, want_peers=cfg.peers)
    elif mode not in ("user", "current"):
        cfg.python, described = mode, f"{mode} (--python)"
    else:
        described = f"the running interpreter {sys.executable}"
    results.note(f"New Python processes run {described}.")
    try:
        for name in figures:
            log(f"figure {FIGURES.index(name) + 1}: {name}")
            t0 = time.perf_counter()
            try:
                module = importlib.import_module(MODULES[name])
                results.extend(module.run(cfg))
            except Exception as exc:  # one broken figure must not hide the others
                failed = True
                log("".join(traceback.format_exception(exc)))
                results.add(
                    Row(
                        f"{FIGURES.index(name) + 1}. {name}",
                        f"error: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120] if str(exc) else ''}",
                        met="error",
                    )
                )
            log(f"figure {name} done in {time.perf_counter() - t0:.1f} s")
    finally:
        if args.keep:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    quick = " (--quick: tiny sizes, not figures)" if args.quick else ""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    busy = f"; load average at the end {load[0]:.1f}" if load else ""
    print(f"exvault benchmarks{quick} on {machine()}{busy}\n")
    print(markdown_table(results.rows))
    if results.notes:
        print()
        for note in results.notes:
            print(f"- {note}")
    print(f"\nTotal time: {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
