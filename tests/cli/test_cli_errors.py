"""Every failure: one ``exvault: error:`` line, its exit code, no traceback, vault unchanged.

Exit codes (cli/main.py): 2 usage, 3 wrong passphrase or damaged vault, 4 not found,
5 already exists, 7 invalid input, 8 no vault, 10 insecure file, 12 database error.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import (
    BINANCE_API_KEY,
    BINANCE_SECRET,
    KUCOIN_API_KEY,
    KUCOIN_PASSPHRASE,
    KUCOIN_SECRET,
    PASSPHRASE,
    without_blocking_on,
    write_secret_file,
)

ALL_SECRETS = (BINANCE_API_KEY, BINANCE_SECRET, KUCOIN_API_KEY, KUCOIN_SECRET, KUCOIN_PASSPHRASE)
WRONG = "wrong passphrase or damaged vault"


def assert_no_secret(text: str) -> None:
    for value in ALL_SECRETS:
        assert value not in text


def run(cli, args: tuple[str, ...], vault: Path, passphrase_file: Path | None, stdin: str = ""):  # type: ignore[no-untyped-def]
    extra = ["--vault", str(vault)]
    if passphrase_file is not None:
        extra += ["--passphrase-file", str(passphrase_file)]
    return cli(*args, *extra, input=stdin)


def binance_json() -> str:
    return json.dumps({"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET})


# Commands that unlock the vault, with the stdin they need; each must refuse a bad key.
UNLOCKING = {
    "add": (("add", "new-one", "-e", "binance", "--from-json", "-"), binance_json()),
    "show-field": (("show", "binance-main", "--field", "secret"), ""),
    "show-reveal": (("show", "binance-main", "--reveal", "--yes"), ""),
    "edit": (("edit", "binance-main", "--permissions", "read"), ""),
    "remove": (("remove", "binance-main", "--yes"), ""),
    "passwd": (("passwd",), "new passphrase\nnew passphrase\n"),
}

# Commands that only read metadata (no passphrase).
KEYLESS = {
    "list": ("list",),
    "show": ("show", "binance-main"),
    "history": ("history", "binance-main"),
    "info": ("info",),
}


# ------------------------------------------------------------------------------ 3


@pytest.mark.parametrize("command", list(UNLOCKING))
def test_wrong_passphrase(stocked_cli, tmp_path, snapshot, one_error_line, command) -> None:
    args, stdin = UNLOCKING[command]
    wrong = write_secret_file(tmp_path / "wrong", "Correct Horse Battery Staple")
    before = snapshot()
    r = run(stocked_cli, args, stocked_cli.vault_path, wrong, stdin)
    assert one_error_line(r, 3) == f"exvault: error: {WRONG}"
    assert_no_secret(r.output)
    assert snapshot() == before


def test_wrong_passphrase_at_the_prompt(stocked_cli, terminal, snapshot, one_error_line) -> None:
    before = snapshot()
    r = stocked_cli.v("show", "binance-main", "--field", "secret", input="wrong\n" * 3)
    assert r.exit_code == 3, r.output
    assert r.stderr.splitlines()[-1] == f"exvault: error: {WRONG}"
    # Three attempts at a terminal: "try again" after the first two.
    assert r.stderr.count("try again") == 2
    assert "Traceback" not in r.output
    assert_no_secret(r.output)
    assert snapshot() == before


def _garbage_whole(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


def _garbage_sqlite_header(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(os.urandom(100) + data[100:])


def _garbage_credentials_page(path: Path) -> None:
    """Garbage over the root page of the ``credentials`` table (the schema stays readable)."""
    con = sqlite3.connect(path)
    try:
        (root,) = con.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'credentials'"
        ).fetchone()
        (size,) = con.execute("PRAGMA page_size").fetchone()
    finally:
        con.close()
    data = bytearray(path.read_bytes())
    data[(root - 1) * size : root * size] = os.urandom(size)
    path.write_bytes(bytes(data))


DAMAGE = [
    pytest.param(_garbage_whole, id="whole-file"),
    pytest.param(_garbage_sqlite_header, id="sqlite-header"),
    pytest.param(_garbage_credentials_page, id="table-page"),
]


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize(
    ("args", "unlocks"),
    [
        (("list",), False),
        (("show", "binance-main"), False),
        (("history", "binance-main"), False),
        (("show", "binance-main", "--field", "secret"), True),
    ],
    ids=["list", "show", "history", "show-field"],
)
def test_damaged_vault_file(
    stocked_cli, tmp_path, file_sha256, one_error_line, damage, args, unlocks
) -> None:
    original_sha = file_sha256(stocked_cli.vault_path)
    copy = tmp_path / "damaged" / "vault.db"
    copy.parent.mkdir(mode=0o700)
    shutil.copyfile(stocked_cli.vault_path, copy)
    damage(copy)
    os.chmod(copy, 0o600)
    damaged_sha = file_sha256(copy)
    r = run(stocked_cli, args, copy, stocked_cli.passphrase_file if unlocks else None)
    line = one_error_line(r, 3)
    assert "damaged vault" in line
    assert file_sha256(copy) == damaged_sha
    assert file_sha256(stocked_cli.vault_path) == original_sha


def _sql(path: Path, statement: str) -> None:
    con = sqlite3.connect(path)
    try:
        con.execute(statement)
        con.commit()
    finally:
        con.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE payloads SET ciphertext = zeroblob(length(ciphertext))",
        "UPDATE dek_wraps SET body = zeroblob(48)",
        "UPDATE credential_versions SET permissions = 'read,trade,withdraw'",
        "UPDATE keyslots SET wrapped = zeroblob(length(wrapped)) WHERE kind != 'recovery'",
    ],
    ids=["payload", "wrapped-key", "metadata", "keyslot"],
)
def test_tampered_rows_refused_by_show_field(stocked_cli, one_error_line, statement) -> None:
    _sql(stocked_cli.vault_path, statement)
    r = stocked_cli.unlocked("show", "binance-main", "--field", "secret")
    assert one_error_line(r, 3) == f"exvault: error: {WRONG}"
    assert_no_secret(r.output)


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_list_reports_a_credential_with_a_missing_version(
    stocked_cli, one_error_line, as_json
) -> None:
    # Not hidden: a credential whose current version row is gone is a damaged vault.
    _sql(stocked_cli.vault_path, "UPDATE credentials SET current_version = 7")
    r = stocked_cli.v("list", *(["--json"] if as_json else []))
    line = one_error_line(r, 3)
    assert "damaged vault" in line
    assert '"binance-main"' in line


# ------------------------------------------------------------------------------ 8


MISSING_VAULT_CASES = [
    *[pytest.param(KEYLESS[k], "", False, id=k) for k in KEYLESS],
    *[pytest.param(*UNLOCKING[k], True, id=k) for k in UNLOCKING],
    pytest.param(("recover",), "AAAA\nnew\nnew\n", False, id="recover"),
]


@pytest.mark.parametrize(("args", "stdin", "unlocks"), MISSING_VAULT_CASES)
def test_missing_vault(cli, tmp_path, one_error_line, args, stdin, unlocks) -> None:
    missing = tmp_path / "nowhere" / "vault.db"
    r = run(cli, args, missing, cli.passphrase_file if unlocks else None, stdin)
    line = one_error_line(r, 8)
    assert "no vault" in line
    assert "exvault init" in line
    assert not missing.parent.exists()  # nothing created on the way


def test_missing_vault_path_is_escaped(cli, tmp_path, one_error_line) -> None:
    missing = tmp_path / "new\nline" / "vault.db"
    line = one_error_line(cli("list", "--vault", str(missing)), 8)
    assert f"no vault at {tmp_path}/new\\nline/vault.db;" in line


def test_missing_vault_from_environment(cli, tmp_path, one_error_line) -> None:
    missing = tmp_path / "env" / "vault.db"
    r = cli("list", env={"EXVAULT_PATH": str(missing), "EXVAULT_URL": ""})
    assert str(missing) in one_error_line(r, 8)


# ------------------------------------------------------------------------------ 4


@pytest.mark.parametrize(
    ("args", "stdin", "unlocks"),
    [
        (("show", "nosuch"), "", False),
        (("show", "nosuch", "--reveal", "--yes"), "", True),
        (("show", "nosuch", "--field", "secret"), "", True),
        (("edit", "nosuch", "--permissions", "read"), "", True),
        (("history", "nosuch"), "", False),
        (("remove", "nosuch", "--yes"), "", True),
        (("remove", "nosuch"), "y\n", True),
    ],
    ids=["show", "show-reveal", "show-field", "edit", "history", "remove-yes", "remove-ask"],
)
def test_unknown_name(stocked_cli, snapshot, one_error_line, args, stdin, unlocks) -> None:
    before = snapshot()
    r = (stocked_cli.unlocked if unlocks else stocked_cli.v)(*args, input=stdin)
    line = one_error_line(r, 4)
    assert '"nosuch"' in line
    assert snapshot() == before


def test_unknown_stage(stocked_cli, one_error_line) -> None:
    r = stocked_cli.unlocked("show", "binance-main", "--stage", "pending", "--field", "secret")
    assert "pending" in one_error_line(r, 4)


# ------------------------------------------------------------------------------ 5


def test_duplicate_name_on_add(stocked_cli, snapshot, one_error_line) -> None:
    before = snapshot()
    other = {"api_key": "another-key-000000", "secret": "An0therSecretValue0123456789abcdef"}
    r = stocked_cli.unlocked(
        "add",
        "binance-main",
        "-e",
        "binance",
        "--permissions",
        "withdraw",
        "--from-json",
        "-",
        input=json.dumps(other),
    )
    line = one_error_line(r, 5)
    assert '"binance-main"' in line
    assert other["secret"] not in r.output
    assert snapshot() == before
    shown = stocked_cli.unlocked("show", "binance-main", "--field", "secret")
    assert shown.stdout == BINANCE_SECRET + "\n"


# ------------------------------------------------------------------------------ 7


def _add(cli, *extra: str, stdin: str, exchange: str = "binance"):  # type: ignore[no-untyped-def]
    return cli.unlocked("add", "new-one", "--exchange", exchange, *extra, input=stdin)


@pytest.mark.parametrize(
    "text",
    [
        '{"api_key": "' + BINANCE_API_KEY + '", "secret": "' + BINANCE_SECRET + '"',
        "{'api_key': '" + BINANCE_API_KEY + "'}",
        '{"api_key": "' + BINANCE_API_KEY + '", "secret": ' + BINANCE_SECRET + "}",
        "",
    ],
    ids=["unterminated", "single-quotes", "unquoted-value", "empty"],
)
def test_malformed_json(stocked_cli, snapshot, one_error_line, text) -> None:
    before = snapshot()
    line = one_error_line(_add(stocked_cli, "--from-json", "-", stdin=text), 7)
    assert "JSON" in line
    assert_no_secret(line)
    assert snapshot() == before


@pytest.mark.parametrize(
    "text",
    [json.dumps([BINANCE_API_KEY, BINANCE_SECRET]), json.dumps(BINANCE_SECRET), "42", "null"],
    ids=["array", "string", "number", "null"],
)
def test_json_not_an_object(stocked_cli, snapshot, one_error_line, text) -> None:
    before = snapshot()
    line = one_error_line(_add(stocked_cli, "--from-json", "-", stdin=text), 7)
    assert "object" in line
    assert_no_secret(line)
    assert snapshot() == before


def test_json_value_not_a_string(stocked_cli, snapshot, one_error_line) -> None:
    before = snapshot()
    text = json.dumps({"api_key": BINANCE_API_KEY, "secret": 12345678901234567890})
    line = one_error_line(_add(stocked_cli, "--from-json", "-", stdin=text), 7)
    assert '"secret"' in line
    assert "12345678901234567890" not in line
    assert snapshot() == before


def test_malformed_json_on_edit(stocked_cli, snapshot, one_error_line) -> None:
    before = snapshot()
    r = stocked_cli.unlocked("edit", "binance-main", "--from-json", "-", input="{nope")
    assert "JSON" in one_error_line(r, 7)
    assert snapshot() == before


def test_unknown_exchange(stocked_cli, snapshot, one_error_line) -> None:
    before = snapshot()
    r = _add(stocked_cli, "--from-json", "-", stdin=binance_json(), exchange="binanse")
    line = one_error_line(r, 7)
    assert 'unknown exchange "binanse"' in line
    assert snapshot() == before


def test_unknown_exchange_reported_before_any_prompt(stocked_cli, terminal, one_error_line):
    r = stocked_cli.v("add", "new-one", "--exchange", "binanse", input="")
    assert "unknown exchange" in one_error_line(r, 7)


@pytest.mark.parametrize("ip", ["999.1.1.1", "203.0.113.7/33", "not-an-ip", "203.0.113"])
def test_bad_ip_on_add(stocked_cli, snapshot, one_error_line, ip) -> None:
    before = snapshot()
    one_error_line(_add(stocked_cli, "--ip", ip, "--from-json", "-", stdin=binance_json()), 7)
    assert snapshot() == before


def test_bad_ip_on_edit(stocked_cli, snapshot, one_error_line) -> None:
    before = snapshot()
    r = stocked_cli.unlocked("edit", "binance-main", "--ip", "203.0.113.300")
    one_error_line(r, 7)
    assert snapshot() == before


def test_unknown_permission(stocked_cli, snapshot, one_error_line) -> None:
    before = snapshot()
    r = _add(stocked_cli, "--permissions", "read,fly", "--from-json", "-", stdin=binance_json())
    assert '"fly"' in one_error_line(r, 7)
    assert snapshot() == before


@pytest.mark.parametrize(
    "payload",
    [
        {"api_key": KUCOIN_API_KEY, "secret": KUCOIN_SECRET},
        {"api_key": KUCOIN_API_KEY, "secret": KUCOIN_SECRET, "passphrase": ""},
    ],
    ids=["absent", "empty"],
)
def test_missing_kucoin_passphrase(stocked_cli, snapshot, one_error_line, payload) -> None:
    before = snapshot()
    r = _add(stocked_cli, "--from-json", "-", stdin=json.dumps(payload), exchange="kucoin")
    line = one_error_line(r, 7)
    assert "kucoin" in line
    assert '"passphrase"' in line
    assert_no_secret(line)
    assert snapshot() == before


def test_missing_kucoin_passphrase_at_the_prompt(stocked_cli, terminal, snapshot):
    before = snapshot()
    r = _add(stocked_cli, stdin=f"{KUCOIN_API_KEY}\n{KUCOIN_SECRET}\n\n", exchange="kucoin")
    assert r.exit_code == 7, r.output
    assert r.stderr.splitlines()[-1].startswith("exvault: error: kucoin needs the field")
    assert_no_secret(r.output)
    assert snapshot() == before


@pytest.mark.parametrize(
    "args",
    [
        ("add", "new-one", "-e", "binance", "--issued", "2025-13-01"),
        ("add", "new-one", "-e", "binance", "--expires", "01/03/2026"),
        ("add", "new-one", "-e", "binance", "--issued", "20250901"),
        ("add", "new-one", "-e", "binance", "--issued", "2025-09-01", "--expires", "2025-08-01"),
        ("edit", "binance-main", "--expires", "2027-02-30"),
        ("edit", "binance-main", "--issued", "yesterday"),
        ("edit", "binance-main", "--expires", "2025-08-01"),  # before issued 2025-09-01
    ],
    ids=[
        "add-month-13",
        "add-us-format",
        "add-basic-iso",
        "add-expires-before-issued",
        "edit-no-such-day",
        "edit-word",
        "edit-expires-before-issued",
    ],
)
def test_bad_date(stocked_cli, snapshot, one_error_line, args) -> None:
    before = snapshot()
    stdin = binance_json() if args[0] == "add" else ""
    extra = ("--from-json", "-") if args[0] == "add" else ()
    line = one_error_line(stocked_cli.unlocked(*args, *extra, input=stdin), 7)
    assert "date" in line
    assert snapshot() == before


def test_bad_name(stocked_cli, snapshot, one_error_line) -> None:
    before = snapshot()
    r = stocked_cli.unlocked(
        "add", "bad name!", "-e", "binance", "--from-json", "-", input=binance_json()
    )
    assert "bad credential name" in one_error_line(r, 7)
    assert snapshot() == before


def test_bad_secret_shape(stocked_cli, snapshot, one_error_line) -> None:
    before = snapshot()
    payload = {"api_key": BINANCE_API_KEY, "secret": "-----BEGIN PRIVATE KEY-----\nnope\n"}
    r = _add(stocked_cli, "--from-json", "-", stdin=json.dumps(payload))
    one_error_line(r, 7)
    assert BINANCE_API_KEY not in r.output
    assert snapshot() == before


@pytest.mark.parametrize("source", ["stdin", "file"])
def test_json_that_is_not_utf8(stocked_cli, tmp_path, snapshot, one_error_line, source) -> None:
    before = snapshot()
    data = b'{"api_key": "' + BINANCE_API_KEY.encode() + b'", "secret": "\xe9t\xe9"}'
    if source == "file":
        (tmp_path / "p.json").write_bytes(data)
        r = _add(stocked_cli, "--from-json", str(tmp_path / "p.json"), stdin="")
    else:
        r = _add(stocked_cli, "--from-json", "-", stdin=data)
    line = one_error_line(r, 7)
    assert (
        line == f"exvault: error: the JSON is not valid UTF-8 text (at byte {data.index(0xE9) + 1})"
    )
    assert snapshot() == before


@pytest.mark.parametrize("field", ["api_key", "secret", "apiKey"])
def test_json_with_a_lone_surrogate(stocked_cli, snapshot, one_error_line, field) -> None:
    before = snapshot()
    payload = {"api_key": BINANCE_API_KEY, "secret": BINANCE_SECRET}
    payload[field] = payload.pop(field, BINANCE_API_KEY)[:10] + "\udc80" + "x" * 30
    line = one_error_line(_add(stocked_cli, "--from-json", "-", stdin=json.dumps(payload)), 7)
    assert f'field "{field}" in the JSON is not valid UTF-8 text (at character 11)' in line
    assert_no_secret(line)
    assert payload[field][:10] not in line
    assert snapshot() == before


@pytest.mark.parametrize(
    ("args", "stdin", "what"),
    [
        (("add", "new-one", "-e", "binance"), b"\xff" + BINANCE_API_KEY.encode(), "API key"),
        (("recover",), b"AAAA\xc3(\nnew\nnew\n", "recovery key"),
        (("passwd",), b"new pass\x80\nnew pass\x80\n", "new passphrase"),
    ],
    ids=["secret-field", "recovery-key", "new-passphrase"],
)
def test_stdin_line_that_is_not_utf8(stocked_cli, snapshot, one_error_line, args, stdin, what):
    before = snapshot()
    runs = stocked_cli.v if args[0] == "recover" else stocked_cli.unlocked
    line = one_error_line(runs(*args, input=stdin), 7)
    assert line.startswith(f"exvault: error: the {what} on standard input is not valid UTF-8")
    assert snapshot() == before


def test_prompt_answer_that_is_not_utf8(stocked_cli, terminal, snapshot) -> None:
    before = snapshot()
    r = stocked_cli.v("show", "binance-main", "--field", "secret", input=b"pass\xff\n")
    assert r.exit_code == 7, r.output
    assert r.stderr.splitlines()[-1] == (
        "exvault: error: the passphrase typed is not valid UTF-8 text"
    )
    assert "Traceback" not in r.output
    assert snapshot() == before


def test_passphrase_with_undecodable_bytes(stocked_cli, monkeypatch, snapshot) -> None:
    """Under a C locale stdin decodes with surrogateescape: the bytes arrive as lone
    surrogates, which the passphrase check refuses rather than fail to encode."""
    import vault.cli.prompts

    monkeypatch.setattr(vault.cli.prompts, "stdin_is_terminal", lambda: True)
    monkeypatch.setattr(vault.cli.prompts, "ask_hidden", lambda *a, **k: "pass\udc80")
    before = snapshot()
    r = stocked_cli.v("show", "binance-main", "--field", "secret")
    assert r.exit_code == 7, r.output
    assert r.stderr == "exvault: error: the passphrase is not valid UTF-8 text (at character 5)\n"
    assert snapshot() == before


def test_passphrase_file_that_is_not_utf8(stocked_cli, tmp_path, snapshot, one_error_line):
    """Also: the file's path, whole, with its control character escaped."""
    path = tmp_path / "pass\rfile"
    path.write_bytes(b"correct horse\xff\n")
    path.chmod(0o600)
    before = snapshot()
    r = run(
        stocked_cli, ("show", "binance-main", "--field", "secret"), stocked_cli.vault_path, path
    )
    assert one_error_line(r, 7) == (
        f"exvault: error: passphrase file {tmp_path}/pass\\rfile is not valid UTF-8 text "
        "(at byte 14)"
    )
    assert snapshot() == before


def test_no_terminal_and_no_passphrase_file(stocked_cli, snapshot, one_error_line) -> None:
    before = snapshot()
    r = stocked_cli.v("show", "binance-main", "--field", "secret", input="")
    assert "--passphrase-file" in one_error_line(r, 7)
    assert snapshot() == before


# ------------------------------------------------------------------------------ 10


@pytest.mark.parametrize(
    ("command", "mode"),
    [
        *[(command, 0o644) for command in UNLOCKING],
        ("show-field", 0o640),
        ("show-field", 0o604),
        ("show-field", 0o620),
    ],
)
def test_passphrase_file_readable_by_others(
    stocked_cli, tmp_path, snapshot, one_error_line, mode, command
) -> None:
    loose = write_secret_file(tmp_path / "loose", PASSPHRASE, mode=mode)
    args, stdin = UNLOCKING[command]
    before = snapshot()
    line = one_error_line(run(stocked_cli, args, stocked_cli.vault_path, loose, stdin), 10)
    assert f"{mode:04o}" in line
    assert "chmod 600" in line
    assert PASSPHRASE not in line
    assert snapshot() == before


def test_passphrase_file_from_environment_readable_by_others(
    stocked_cli, tmp_path, snapshot, one_error_line
) -> None:
    loose = write_secret_file(tmp_path / "loose", PASSPHRASE, mode=0o644)
    before = snapshot()
    r = stocked_cli(
        "show",
        "binance-main",
        "--field",
        "secret",
        "--vault",
        str(stocked_cli.vault_path),
        env={"EXVAULT_PASSPHRASE_FILE": str(loose)},
    )
    one_error_line(r, 10)
    assert snapshot() == before


def test_passphrase_file_from_environment_accepted(stocked_cli) -> None:
    r = stocked_cli(
        "show",
        "binance-main",
        "--field",
        "secret",
        "--vault",
        str(stocked_cli.vault_path),
        env={"EXVAULT_PASSPHRASE_FILE": str(stocked_cli.passphrase_file)},
    )
    assert r.exit_code == 0, r.output
    assert r.stdout == BINANCE_SECRET + "\n"


def test_recovery_key_file_readable_by_others(cli, tmp_path, one_error_line) -> None:
    r = cli.init(["--json"])
    key = json.loads(r.stdout)["recovery_key"]
    loose = write_secret_file(tmp_path / "recovery", key, mode=0o644)
    r = cli.v("recover", "--recovery-key-file", str(loose), input="new pass\nnew pass\n")
    assert key not in one_error_line(r, 10)


# A FIFO (or another file that is not a regular file) given where a secret file is
# expected: refused at once with exit 7, never waited on.
FIFO_SOURCES = {
    "passphrase-file": lambda cli, fifo: cli.v("verify", "--passphrase-file", str(fifo)),
    "passphrase-file-env": lambda cli, fifo: cli(
        "verify",
        "--vault",
        str(cli.vault_path),
        env={"EXVAULT_PASSPHRASE_FILE": str(fifo)},
    ),
    "token-file": lambda cli, fifo: cli(
        "run",
        "--cred",
        "binance-main",
        "--env",
        "K=api_key",
        "--vault",
        str(cli.vault_path),
        "--",
        "true",
        env={"EXVAULT_TOKEN_FILE": str(fifo)},
    ),
    "recovery-key-file": lambda cli, fifo: cli.v(
        "recover", "--recovery-key-file", str(fifo), input="new pass\nnew pass\n"
    ),
    "backup-passphrase-file": lambda cli, fifo: cli.v(
        "restore", str(cli.vault_path), "--yes", "--backup-passphrase-file", str(fifo)
    ),
}


@pytest.mark.parametrize("source", list(FIFO_SOURCES))
def test_fifo_as_secret_file_is_refused_at_once(
    stocked_cli, tmp_path, snapshot, one_error_line, source
) -> None:
    fifo = tmp_path / "secret"
    os.mkfifo(fifo, 0o600)
    before = snapshot()
    r = without_blocking_on(fifo, lambda: FIFO_SOURCES[source](stocked_cli, fifo))
    assert "is not a regular file" in one_error_line(r, 7)
    assert snapshot() == before


# ------------------------------------------------------------------------------ 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ip", "203.0.113.8", "--clear-ips"), "--ip and --clear-ips exclude each other"),
        (("--expires", "2027-03-01", "--no-expires"), "--expires and --no-expires exclude"),
        (("--stage", "pending"), "No such option"),
        (("extra-argument",), "unexpected extra argument"),
    ],
    ids=["ip-clear-ips", "expires-no-expires", "unknown-option", "extra-argument"],
)
def test_usage_errors_are_one_line(stocked_cli, snapshot, one_error_line, args, message):
    before = snapshot()
    r = stocked_cli.unlocked("edit", "binance-main", *args)
    line = one_error_line(r, 2)
    assert message in line
    assert snapshot() == before


@pytest.mark.parametrize(
    ("args", "parameter"),
    [
        (("show", "binance-\udcff"), "'NAME'"),
        (("grant", "bot", "binance-main", "x\udc80"), "'CREDENTIALS...'"),
        (("edit", "binance-main", "--ip", "203.0.113.8", "--ip", "\udc80"), "'--ip'"),
        (
            ("policy", "accept-risk", "binance-main", "withdraw-enabled", "--reason", "ok\udc80"),
            "'--reason'",
        ),
        (("backup", "/tmp/exvault-\udc80.db"), "'DESTINATION'"),
        (("list", "--vault", "/tmp/\udc80/vault.db"), "'--vault'"),
    ],
    ids=["argument", "nargs", "multiple-option", "option", "path", "vault"],
)
def test_argument_that_is_not_utf8(stocked_cli, snapshot, one_error_line, args, parameter):
    """Bytes that are not UTF-8 on the command line (Python keeps them as surrogates)
    are a usage error naming the parameter, with the value escaped; nothing runs."""
    before = snapshot()
    vault = () if "--vault" in args else ("--vault", str(stocked_cli.vault_path))
    line = one_error_line(stocked_cli(*args, *vault), 2)
    assert f"Invalid value for {parameter}: " in line
    assert "is not valid UTF-8 text (at character" in line
    assert "\\udc" in line  # escaped, and printable
    assert snapshot() == before
    assert not Path("/tmp/exvault-\udc80.db").exists()


def test_program_arguments_of_run_may_be_any_bytes(stocked_cli) -> None:
    """``run`` hands its program's arguments over as they came: they are not ours."""
    r = stocked_cli(
        "run",
        "--cred",
        "binance-main",
        "--env",
        "K=api_key",
        "--vault",
        "/nonexistent/v.db",
        "--",
        "true",
        "\udc80",
    )
    assert r.exit_code == 8, r.output  # got as far as opening the vault


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("show", "binance-main", "a\rb"), "Got unexpected extra argument (a\\rb)"),
        (("\x1b[2J",), "No such command '\\x1b[2J'"),
        (("list", "--\x1b[31m"), "No such option '--\\x1b[31m'"),
    ],
    ids=["extra-argument", "command", "option"],
)
def test_usage_errors_escape_control_characters(stocked_cli, one_error_line, args, shown):
    line = one_error_line(stocked_cli(*args, "--vault", str(stocked_cli.vault_path)), 2)
    assert shown in line


def test_bare_exvault_prints_the_help(cli) -> None:
    r = cli()
    assert r.exit_code in (0, 2), r.output
    assert "Commands:" in r.output
    assert "exvault: error:" not in r.output


def test_help(cli) -> None:
    r = cli("--help")
    assert r.exit_code == 0, r.output
    assert "Commands:" in r.stdout
    assert "exvault: error:" not in r.output


@pytest.mark.parametrize(
    "args",
    [
        ("add", "x", "--exchange", "binance", "--secret", BINANCE_SECRET),
        ("add", "x", "--exchange", "binance", "--api-key", BINANCE_API_KEY),
        ("show", "binance-main", "--passphrase", "hunter2"),
    ],
    ids=["secret", "api-key", "passphrase"],
)
def test_secret_options_do_not_exist(stocked_cli, snapshot, args) -> None:
    before = snapshot()
    r = stocked_cli.v(*args)
    assert r.exit_code == 2, r.output
    assert "No such option" in r.stderr
    assert_no_secret(r.output)
    assert "hunter2" not in r.output
    assert snapshot() == before


# ------------------------------------------------------------------------------ 70, 130


def test_internal_error_is_one_line_without_its_message(
    stocked_cli, monkeypatch, one_error_line
) -> None:
    from vault.owner.admin import AdminVault

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"unexpected, carrying {BINANCE_SECRET}")

    monkeypatch.setattr(AdminVault, "get", broken)
    monkeypatch.delenv("EXVAULT_DEBUG", raising=False)
    r = stocked_cli.unlocked("show", "binance-main", "--field", "secret")
    assert r.exit_code == 70, r.output
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        "exvault: internal error (RuntimeError); run again with EXVAULT_DEBUG=1 to see the "
        "traceback"
    ]
    assert BINANCE_SECRET not in r.output


def test_interrupted(stocked_cli, monkeypatch, snapshot) -> None:
    from vault.owner.admin import AdminVault

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    before = snapshot()
    monkeypatch.setattr(AdminVault, "edit", interrupted)
    r = stocked_cli.unlocked("edit", "binance-main", "--permissions", "read")
    assert r.exit_code == 130, r.output
    assert r.stderr == "exvault: interrupted\n"
    assert "Traceback" not in r.output
    assert snapshot() == before


# ------------------------------------------------------------------------------ order


def test_duplicate_name_reported_before_asking_for_secrets(
    stocked_cli, terminal, one_error_line
) -> None:
    r = stocked_cli.unlocked(
        "add", "binance-main", "-e", "binance", input=f"{BINANCE_API_KEY}\n{BINANCE_SECRET}\n"
    )
    assert '"binance-main"' in one_error_line(r, 5)  # the only line: no "API key" prompt


def test_closed_pipe_on_stdout_is_not_an_internal_error() -> None:
    script = Path(sys.executable).parent / "exvault"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "vault.cli.main"]
    proc = subprocess.Popen(
        [*command, "exchanges"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # like `| head -0`: the reader is gone before the first write
    _, err = proc.communicate(timeout=30)
    assert "internal error" not in err
    assert "Traceback" not in err
    assert proc.returncode != 70
