"""A real PostgreSQL server for the tests, from the Debian binaries (initdb, pg_ctl).

Started once per test session on a free loopback port in a temporary directory;
each test gets a database of its own. When the binaries are missing the PostgreSQL
half of the suite is skipped with a message saying how to install them, unless
EXVAULT_REQUIRE_POSTGRES=1 (set by .ci/run), which turns that into a failure.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL server binaries not found: install them to run the PostgreSQL half of "
    "the suite (Debian/Ubuntu: apt-get install postgresql)"
)
SUPERUSER = "exvault"


# The grants docs/deploy.md gives the role of bot hosts.
READER_GRANTS = [
    'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"',
    # Audit appends only through these functions (no INSERT on audit_log).
    'REVOKE INSERT ON audit_log FROM "{role}"',
    'GRANT EXECUTE ON FUNCTION exvault_lock_writes() TO "{role}"',
    "GRANT EXECUTE ON FUNCTION exvault_audit_append(integer, bigint, text, text, integer, "
    'text, text, integer, text, text, bytea, text, bytea, bytea) TO "{role}"',
    "REVOKE EXECUTE ON FUNCTION exvault_lock_writes(), exvault_audit_chain(), "
    "exvault_audit_append(integer, bigint, text, text, integer, text, text, integer, "
    "text, text, bytea, text, bytea, bytea) FROM PUBLIC",
    # The wrapped root key is none of a bot host's business: only the KDF columns.
    'REVOKE SELECT ON keyslots FROM "{role}"',
    "GRANT SELECT (id, kind, kdf_time_cost, kdf_memory_kib, kdf_parallelism) "
    'ON keyslots TO "{role}"',
]


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl, if PostgreSQL is installed."""
    override = os.environ.get("EXVAULT_PG_BINDIR")
    candidates = [override] if override else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).parent))
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as(user: str | None, argv: list[str]) -> None:
    # initdb refuses to run as root; CI runs as root, so the server runs as "postgres".
    command = ["runuser", "-u", user, "--", *argv] if user else argv
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def _start(user: str | None, bindir: Path, data: Path, sockets: Path, log: Path) -> int:
    """Start the server on a free loopback port; its port.

    A port found free may be taken before the server binds it (parallel test workers
    start servers of their own at the same moment): then another port is tried.

    :raises subprocess.CalledProcessError: when the server fails to start five times.
    """
    attempts = 5
    while True:
        port = _free_port()
        options = (
            f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 "
            # Durability is not what these tests measure; speed is welcome.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        argv = [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log)]
        try:
            _run_as(user, [*argv, "-w", "start"])
        except subprocess.CalledProcessError:
            attempts -= 1
            if attempts == 0:
                raise
            continue
        return port


@contextmanager
def server(base: Path) -> Iterator[str]:
    """Start a throwaway server; yields the SQLAlchemy URL prefix (no database name)."""
    bindir = find_bindir()
    if bindir is None:
        raise FileNotFoundError(INSTALL_HINT)
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        pwd.getpwnam(user)  # KeyError if the package did not create it
        # pytest's temporary directories are private to root: the server, which runs
        # as "postgres", gets a directory of its own.
        base = Path(tempfile.mkdtemp(prefix="exvault-pg-"))
        shutil.chown(base, user)
    data, sockets = base / "data", base / "run"
    base.mkdir(parents=True, exist_ok=True)
    sockets.mkdir(exist_ok=True)
    if user:
        shutil.chown(sockets, user)
    _run_as(
        user,
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
    )
    port = _start(user, bindir, data, sockets, base / "server.log")
    try:
        yield f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}"
    finally:
        _run_as(user, [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        if user:
            shutil.rmtree(base, ignore_errors=True)


def _admin_connection(prefix: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(
        prefix.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True
    )


@contextmanager
def database(prefix: str) -> Iterator[str]:
    """A fresh, empty database on the server; dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:16]
    with _admin_connection(prefix) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{prefix}/{name}"
    finally:
        with _admin_connection(prefix) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_role(prefix: str, role: str, statements: list[str], database_url: str) -> str:
    """Create a login role and run ``statements`` (grants) in ``database_url``'s database.

    :returns: the URL of that database for the new role.
    """
    import psycopg

    with _admin_connection(prefix) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    db_name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(
        database_url.replace("postgresql+psycopg", "postgresql"), autocommit=True
    ) as conn:
        for statement in statements:
            conn.execute(statement)
    host = prefix.split("@", 1)[1]
    return f"postgresql+psycopg://{role}@{host}/{db_name}"
