"""Fixtures shared by every test module.

Tests lower the Argon2 cost through the explicit ``insecure_test_kdf`` parameter of
:meth:`AdminVault.create` (and the hidden ``--insecure-test-kdf`` flag of ``init``);
production defaults are never touched.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import re
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pytest
from click.testing import CliRunner, Result
from hypothesis import settings

from tests.mock_exchange.fixtures import mock_exchanges  # noqa: F401  (a fixture for all tests)
from vault.agent import client as agent_client
from vault.db.store import EngineStore
from vault.db.transaction import Store
from vault.format.kdf_params import KdfParams
from vault.owner.admin import AdminVault

T = TypeVar("T")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run the reliability suites at their long settings (also: EXVAULT_LONG=1)",
    )


# Property tests that set no count of their own try Hypothesis's default of 100 examples
# in the default run, and ten times as many at the long settings.
settings.register_profile("long", max_examples=1000)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--long") or os.environ.get("EXVAULT_LONG") == "1":
        settings.load_profile("long")


@pytest.fixture(scope="session")
def long_run(request: pytest.FixtureRequest) -> bool:
    """True when the reliability suites should run their long settings."""
    return bool(request.config.getoption("--long")) or os.environ.get("EXVAULT_LONG") == "1"


@pytest.fixture(autouse=True)
def private_state_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own ``$XDG_STATE_HOME``: the audit witness and ``check``'s
    file of verified reads go there, never into the home of whoever runs the suite.
    A test that sets the variable itself overrides this one."""
    home = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


@pytest.fixture
def no_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with no state directory: no ``$XDG_STATE_HOME``, no ``$HOME``, and no
    passwd entry for the uid (a container's arbitrary uid)."""

    def no_entry(uid: int) -> pwd.struct_passwd:
        raise KeyError(uid)

    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)


@pytest.fixture(autouse=True)
def private_runtime_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Every test gets its own ``$XDG_RUNTIME_DIR``: an unlock agent a test starts
    lives there (and is stopped after it), and no test talks to the agent of whoever
    runs the suite."""
    run = tmp_path_factory.mktemp("run")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    yield run
    stop_agent(run / "exvault" / agent_client.SOCKET_NAME)


@pytest.fixture(autouse=True)
def no_controlling_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process CLI runs see no /dev/tty: a test behaves alike whether the suite runs
    in a terminal or not (the ``terminal`` fixture of tests/cli makes stdin one; a real
    terminal is tested through a pseudo-terminal, in a subprocess)."""
    monkeypatch.setattr("vault.cli.prompts.controlling_terminal_opens", lambda: False)


def stop_agent(path: Path) -> None:
    """Stop the unlock agent serving ``path``, if one does, and wait until it is gone."""
    conn = agent_client.connect(path) if path.exists() else None
    if conn is None:
        return
    with conn:
        pid = agent_client.status(conn).pid
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


TEST_KDF = KdfParams(time_cost=1, memory_kib=64, parallelism=1)
PASSPHRASE = "correct horse battery staple"

# Distinctive values, so that leak tests can search any output for them.
BINANCE_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
KUCOIN_API_KEY = "64f1c0ffee5ca1ab1e00d1e5"
KUCOIN_SECRET = "3b1f9c2e-7d4a-4e8b-9f6c-0a1b2c3d4e5f"
KUCOIN_PASSPHRASE = "Tr4d1ngB0t!pass"


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    """Where a SQLite test vault lives (its directory does not exist yet)."""
    return tmp_path / "vaultdir" / "vault.db"


# ----------------------------------------------------------------------------- backends
# A test module sets BACKENDS = ("sqlite", "postgresql") to run its tests that use the
# `backend` fixture (directly or through vault_location / created / admin / stocked)
# on both; a test that reads the SQLite file itself is marked @pytest.mark.sqlite_only,
# one about a PostgreSQL feature (roles, rules) @pytest.mark.postgresql_only.


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    backends = getattr(metafunc.module, "BACKENDS", ("sqlite",))
    if "backend" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("postgresql_only") is not None:
        metafunc.parametrize("backend", ["postgresql"])
    elif len(backends) > 1 and metafunc.definition.get_closest_marker("sqlite_only") is None:
        metafunc.parametrize("backend", backends)


@pytest.fixture
def backend() -> str:
    """The storage backend of the test vault (SQLite unless the module asks for both)."""
    return "sqlite"


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server for the session; its URL prefix (no database)."""
    from tests import postgres

    if postgres.find_bindir() is None:
        if os.environ.get("EXVAULT_REQUIRE_POSTGRES") == "1":
            pytest.fail(postgres.INSTALL_HINT)
        pytest.skip(postgres.INSTALL_HINT)
    with postgres.server(tmp_path_factory.mktemp("postgres")) as prefix:
        yield prefix


@pytest.fixture
def vault_location(backend: str, vault_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Where the test vault lives: a SQLite file path, or a fresh PostgreSQL database URL."""
    if backend == "sqlite":
        yield str(vault_path)
        return
    from tests import postgres

    with postgres.database(request.getfixturevalue("postgres_server")) as url:
        yield url


@pytest.fixture
def created(vault_location: str) -> Iterator[tuple[AdminVault, str]]:
    """A new vault with the cheap test KDF: the unlocked handle and its recovery key."""
    admin, recovery = AdminVault.create(
        vault_location, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True
    )
    with admin:
        yield admin, recovery


@pytest.fixture
def admin(created: tuple[AdminVault, str]) -> AdminVault:
    """An unlocked, empty test vault."""
    return created[0]


@pytest.fixture
def binance_payload() -> dict[str, str]:
    """Secret fields of a binance HMAC key (the exchange's published example secret)."""
    return {"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET}


@pytest.fixture
def kucoin_payload() -> dict[str, str]:
    """Secret fields of a kucoin key, with its API passphrase."""
    return {"api_key": KUCOIN_API_KEY, "secret": KUCOIN_SECRET, "passphrase": KUCOIN_PASSPHRASE}


@pytest.fixture
def stocked(
    admin: AdminVault, binance_payload: dict[str, str], kucoin_payload: dict[str, str]
) -> AdminVault:
    """A test vault holding binance-main and kucoin-sub1."""
    admin.add(
        "binance-main", "binance", binance_payload, permissions="read,trade", ips=["203.0.113.7"]
    )
    admin.add("kucoin-sub1", "kucoin", kucoin_payload, permissions="read", ips=["198.51.100.0/24"])
    return admin


def store_location(store: Store) -> str:
    """Where ``store``'s vault is, for :func:`db_exec`: its file, or its URL with the
    password (a test database's)."""
    if store.path is not None:
        return str(store.path)
    assert isinstance(store, EngineStore)
    return store.url.render_as_string(hide_password=False)


def db_exec(location: str | Path, statement: str, **params: object) -> list[tuple[object, ...]]:
    """Run raw SQL against a test vault on either backend, as a tamperer would.

    Named parameters (``:name``); returns the rows of a SELECT, [] otherwise.
    """
    from sqlalchemy import create_engine, text

    from vault.db.location import resolve

    engine = create_engine(resolve(str(location)))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def copy_rows(
    location: str | Path, table: str, where: str, **params: object
) -> list[dict[str, object]]:
    """Every column of the rows of ``table`` matching ``where``: a copy a tamperer keeps
    to put back later (:func:`put_rows`)."""
    from sqlalchemy import create_engine, text

    from vault.db.location import resolve

    engine = create_engine(resolve(str(location)))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(f"SELECT * FROM {table} WHERE {where}"), params)
            return [dict(r) for r in result.mappings()]
    finally:
        engine.dispose()


def put_rows(
    location: str | Path, table: str, rows: list[dict[str, object]], where: str, **params: object
) -> None:
    """Delete the rows of ``table`` matching ``where``, then insert ``rows`` (saved by
    :func:`copy_rows`) in one transaction: old rows put back."""
    from sqlalchemy import create_engine, text

    from vault.db.location import resolve

    engine = create_engine(resolve(str(location)))
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {table} WHERE {where}"), params)
            for row in rows:
                columns = ", ".join(row)
                values = ", ".join(f":{c}" for c in row)
                conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)
    finally:
        engine.dispose()


def restore_rows(location: str | Path, table: str, rows: list[dict[str, object]], key: str) -> None:
    """Give the rows of ``table`` with the ``key`` of ``rows`` (saved by :func:`copy_rows`)
    every value they had: an UPDATE, so that no foreign key cascades (PostgreSQL)."""
    from sqlalchemy import create_engine, text

    from vault.db.location import resolve

    engine = create_engine(resolve(str(location)))
    try:
        with engine.begin() as conn:
            for row in rows:
                values = ", ".join(f"{c} = :{c}" for c in row if c != key)
                conn.execute(text(f"UPDATE {table} SET {values} WHERE {key} = :{key}"), row)
    finally:
        engine.dispose()


def sql(location: str | Path, statement: str, *params: object) -> list[tuple[object, ...]]:
    """:func:`db_exec` with positional ``?`` placeholders, as sqlite3 writes them."""
    counter = iter(range(len(params)))
    named = re.sub(r"\?", lambda _m: f":p{next(counter)}", statement)
    return db_exec(location, named, **{f"p{i}": v for i, v in enumerate(params)})


def rewrite_schema(path: Path, table: str, old: str, new: str) -> None:
    """Edit a SQLite table's CREATE statement in place (``PRAGMA writable_schema``), as
    anyone with the file can; bump the schema cookie so that connections re-read it."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA writable_schema = ON")
        db.execute("BEGIN")
        db.execute(
            "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = ?",
            (old, new, table),
        )
        (cookie,) = db.execute("PRAGMA schema_version").fetchone()
        db.execute(f"PRAGMA schema_version = {cookie + 1}")
        db.execute("COMMIT")
        db.execute("PRAGMA writable_schema = OFF")
    finally:
        db.close()


def forge_version(location: str | Path, recipient: str, recipient_public: bytes) -> None:
    """Replace version 1 of binance-main (the ``stocked`` fixture's) by a forgery.

    What someone with write access to the database and the public keys only can do:
    a complete, consistent version of their own (right associated data, a wrap for
    ``recipient``), signed with a key of their own. Readers must refuse it.
    """
    from datetime import date

    from vault.format import identities, records
    from vault.format.keywrap import Recipient
    from vault.format.model import CredentialMetadata

    ((vault_id,),) = sql(location, "SELECT vault_id FROM vault_header")
    ((cid, issued, created_at),) = sql(
        location,
        "SELECT v.credential_id, v.issued_on, v.created_at FROM credential_versions v "
        "JOIN credentials c ON c.id = v.credential_id WHERE c.name = 'binance-main'",
    )
    assert isinstance(vault_id, bytes) and isinstance(cid, str)
    meta = CredentialMetadata(
        "binance-main",
        "binance",
        ("read", "trade"),
        ("203.0.113.7",),
        date.fromisoformat(str(issued)),
        None,
    )
    forged = records.seal_version(
        identities.RootIdentity.generate(),
        vault_id,
        cid,
        1,
        meta,
        {"api_key": "attacker-key-000000", "secret": "attacker-secret-000000000000"},
        int(str(created_at)),
    )
    wrap = records.wrap_dek(
        forged.dek, vault_id, forged.version, Recipient.stored(recipient), recipient_public
    )
    sql(
        location,
        "UPDATE payloads SET nonce = ?, ciphertext = ? WHERE credential_id = ?",
        forged.payload.nonce,
        forged.payload.ciphertext,
        cid,
    )
    sql(
        location,
        "UPDATE dek_wraps SET ephemeral_public = ?, body = ? "
        "WHERE credential_id = ? AND recipient = ?",
        wrap.ephemeral_public,
        wrap.body,
        cid,
        recipient,
    )
    sql(
        location,
        "UPDATE credential_versions SET payload_digest = ?, api_key_fingerprint = ?, "
        "signature = ? WHERE credential_id = ?",
        forged.version.payload_digest,
        forged.version.api_key_fingerprint,
        forged.version.signature,
        cid,
    )


def write_secret_file(path: Path, text: str, mode: int = 0o600) -> Path:
    """Write ``text`` to ``path`` with ``mode`` (for passphrase and token files)."""
    path.write_text(text + "\n")
    os.chmod(path, mode)
    return path


def without_blocking_on(fifo: Path, call: Callable[[], T], seconds: float = 30) -> T:
    """``call()``'s result; fails the test, instead of hanging the suite, when ``call``
    is still blocked on the FIFO ``fifo`` after ``seconds``.

    A reader stuck opening a FIFO is released by opening its other end, so the thread
    running ``call`` ends too.
    """
    box: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            box.append(call())
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # the blocked open returns
        worker.join(seconds)
        pytest.fail(f"still waiting on the FIFO {fifo} after {seconds} s")
    if errors:
        raise errors[0]
    return box[0]


@pytest.fixture(scope="session")
def keepass_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample KeePass database of tests/import_sources.py, made once per session
    (pykeepass makes a new database at its default Argon2 cost, seconds under load)."""
    from tests.import_sources import keepass_database

    return keepass_database(tmp_path_factory.mktemp("kdbx") / "keys.kdbx")


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    """A 0600 file holding the test passphrase."""
    return write_secret_file(tmp_path / "passphrase", PASSPHRASE)


class Cli:
    """Runs ``exvault`` in-process through click's CliRunner against one vault."""

    def __init__(self, vault_path: Path, passphrase_file: Path) -> None:
        self.vault_path = vault_path
        self.passphrase_file = passphrase_file
        self.runner = CliRunner()

    def __call__(
        self, *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None
    ) -> Result:
        from vault.cli.main import cli

        return self.runner.invoke(cli, list(args), input=input, env=env, catch_exceptions=True)

    def v(self, *args: str, input: str | bytes | None = None) -> Result:
        """Run a command with ``--vault`` and ``--passphrase-file`` appended where it takes them."""
        return self(*args, "--vault", str(self.vault_path), input=input)

    def unlocked(self, *args: str, input: str | bytes | None = None) -> Result:
        """Run a command that unlocks, with ``--vault`` and ``--passphrase-file``."""
        return self(
            *args,
            "--vault",
            str(self.vault_path),
            "--passphrase-file",
            str(self.passphrase_file),
            input=input,
        )

    def init(self, extra: Sequence[str] = ()) -> Result:
        """``exvault init`` with the test KDF, the passphrase on two stdin lines."""
        return self(
            "init",
            "--vault",
            str(self.vault_path),
            "--insecure-test-kdf",
            *extra,
            input=f"{PASSPHRASE}\n{PASSPHRASE}\n",
        )


@pytest.fixture
def cli(vault_path: Path, passphrase_file: Path) -> Cli:
    """A CLI runner bound to a not-yet-created test vault."""
    return Cli(vault_path, passphrase_file)


@pytest.fixture
def cli_vault(cli: Cli) -> Cli:
    """A CLI runner bound to an initialized, empty test vault."""
    result = cli.init()
    assert result.exit_code == 0, result.output
    return cli


SCHEMA2_VAULT = Path(__file__).parent / "data" / "vault_schema2.sql"
"""A vault made by exvault's code at schema version 2, as SQL: binance-main (edited, then
rotated: version 3 current, 2 previous), kucoin-sub1, the client "bot" granted both and
"old-bot", granted kucoin-sub1 then revoked. Test KDF, passphrase :data:`PASSPHRASE`."""

SCHEMA2_BOT_TOKEN = (
    "exv1-M_JSWZyMCve1H1OIiiu-lrRmTqQcnjmW07yRzj3xzKEJJ36nxA2iNRb3scaDHMUvXJxEUsB-yy-GGR6xy"
    "UxgTv577j9ElvhjuBIyt9lD9rqs2FCw2jjcGB3M54MJm-clsesoAg"
)
"""The token of "bot" in :data:`SCHEMA2_VAULT`."""


def load_schema2_vault(path: Path) -> Path:
    """Write the vault of :data:`SCHEMA2_VAULT` to a new SQLite file at ``path``."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    try:
        db.executescript(SCHEMA2_VAULT.read_text())
    finally:
        db.close()
    path.chmod(0o600)
    return path


# ------------------------------------------------------------------ a second uid

BOTS_GROUP = "exvault-test-bots"
BOT_USER = "exvault-test-bot"
ENV_REQUIRE_SECOND_UID = "EXVAULT_REQUIRE_SECOND_UID"


@pytest.fixture(scope="module")
def bot_ids() -> tuple[int, int]:
    """(uid, gid) of a system user other than the one running the suite, whose only
    group is the bots' group (created when missing: that needs root, as CI runs)."""
    if os.geteuid() != 0:
        message = "switching to a second uid needs root (CI runs as root)"
        if os.environ.get(ENV_REQUIRE_SECOND_UID):
            pytest.fail(message)
        pytest.skip(message)
    # Parallel workers (pytest-xdist) may both find the user missing: one creates it
    # while the other waits on the lock, then finds it.
    with open(Path(tempfile.gettempdir()) / "exvault-test-bot.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            grp.getgrnam(BOTS_GROUP)
        except KeyError:
            subprocess.run(["groupadd", "--system", BOTS_GROUP], check=True)
        try:
            pwd.getpwnam(BOT_USER)
        except KeyError:
            subprocess.run(
                [
                    *("useradd", "--system", "--no-create-home", "--gid", BOTS_GROUP),
                    *("--shell", "/usr/sbin/nologin", BOT_USER),
                ],
                check=True,
            )
    return pwd.getpwnam(BOT_USER).pw_uid, grp.getgrnam(BOTS_GROUP).gr_gid
