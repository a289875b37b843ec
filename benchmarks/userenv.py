"""The Python that new-process figures run: exvault installed the way a user has it.

A development venv holds exvault as an *editable* install, whose import hook (a
``.pth`` file run by ``site`` at every interpreter start) costs tens of milliseconds
per process: more than some peers take in all. Users run ``pip install .`` (the
README's first command), which has no such hook and ships compiled ``.pyc`` files.
So figures 2, 4 and 6 run their Python processes from a venv under the cache
directory holding a regular install of this checkout (reinstalled whenever the
source changes) plus eth-keyfile for the hummingbot-style peer.

``--python current`` uses the running interpreter instead; ``--python PATH`` any
other. If the venv cannot be made (no network), the running interpreter is used
and the notes say so.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from benchmarks.common import REPO, Config, clean_env

MARKER = "exvault-source.sha256"


def source_digest() -> str:
    """Hash of everything ``pip install .`` would install from this checkout."""
    h = hashlib.sha256()
    files = sorted(
        p
        for top in ("vault", "cli")
        for p in (REPO / top).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".typed")
    )
    for p in [REPO / "pyproject.toml", *files]:
        h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def user_python(cfg: Config, want_peers: bool) -> tuple[str, str]:
    """(python executable, one line saying what it is)."""
    venv = cfg.cache / f"venv-user-py{sys.version_info[0]}{sys.version_info[1]}"
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    env = clean_env()
    try:
        if not python.exists():
            cfg.log(f"creating a user-install venv in {venv} (once)")
            cfg.cache.mkdir(mode=0o700, parents=True, exist_ok=True)
            _run([sys.executable, "-m", "venv", str(venv)], env)
            _run([*pip, str(REPO)], env)
        digest = source_digest()
        marker = venv / MARKER
        if not marker.exists() or marker.read_text().strip() != digest:
            cfg.log("installing this checkout into the user-install venv (pip install .)")
            _run([*pip, "--no-deps", "--force-reinstall", str(REPO)], env)
            marker.write_text(digest + "\n")
        if want_peers and not python_has(str(python), "eth_keyfile"):
            cfg.log("installing eth-keyfile into the user-install venv")
            try:
                _run([*pip, "eth-keyfile"], env)
            except RuntimeError as exc:
                cfg.log(f"eth-keyfile not installed there: {exc}")
    except (RuntimeError, OSError) as exc:
        return sys.executable, (
            f"running interpreter {sys.executable} (the user-install venv failed: "
            f"{str(exc).splitlines()[0][:160]})"
        )
    return str(python), f"a regular install (pip install .) in {venv}"


def python_has(python: str, module: str) -> bool:
    """True when ``python`` can import ``module``."""
    proc = subprocess.run([python, "-c", f"import {module}"], capture_output=True, env=clean_env())
    return proc.returncode == 0


def _run(argv: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=Path("/"))
    if proc.returncode != 0:
        tail = [ln for ln in proc.stderr.splitlines() if not ln.startswith("WARNING")][-5:]
        raise RuntimeError(f"{' '.join(argv[:4])}... failed: {' / '.join(tail)}")
