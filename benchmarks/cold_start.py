"""Figure 2: cold start to secret: a new process that ends holding an API key and secret.

exvault::

    EXVAULT_PATH=vault.db EXVAULT_TOKEN_FILE=token \\
        python -c "import vault; c = vault.load('x'); c.api_key.reveal(); c.secret.reveal()"

Peers, each set up in a temporary directory:

* ``pass show`` (a GnuPG key without passphrase, ``GNUPGHOME`` in the temp dir; the
  gpg-agent that gpg starts on first use stays up, as on a desktop);
* ``keepassxc-cli show -s -a UserName -a Password`` (database made by
  ``keepassxc-cli db-create`` with its default settings, password on stdin), and a
  second database made with ``-t 1000`` (KeePassXC's 1 s default decryption time);
* a hummingbot-style store: two eth-keyfile v3 keystores (key, secret), PBKDF2-SHA256
  1,000,000 iterations, hex-encoded JSON as hummingbot's config files keep them,
  decrypted by ``eth_keyfile.decode_keyfile_json`` in a new Python process;
* ``age -d -i identity`` (the floor: no KDF at all);
* the same Python importing only the cryptography modules a bot's read needs
  (Ed25519, X25519, AES-GCM, HKDF): the floor of any Python client, whatever it does.

Timed with hyperfine when installed (one invocation, all commands; the ratio pairs
run i of exvault with run i of the peer), else with an interleaved loop of
subprocess runs.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    Config,
    Results,
    Row,
    clean_env,
    fmt_ratio,
    fmt_time,
    median,
    paired_ratio,
    run_checked,
    run_measured,
    skip_reason,
    verdict,
    which,
    write_secret,
)
from benchmarks.userenv import python_has
from benchmarks.vaults import credential_name, get_vault, sample_payload

FIGURE = "2. cold start to secret"
PASSWORD = "cold-start benchmark password"

EXVAULT_SNIPPET = "import vault; c = vault.load({name!r}); c.api_key.reveal(); c.secret.reveal()"

PYTHON_FLOOR_SNIPPET = (
    "import cryptography.hazmat.primitives.asymmetric.ed25519, "
    "cryptography.hazmat.primitives.asymmetric.x25519, "
    "cryptography.hazmat.primitives.ciphers.aead, cryptography.hazmat.primitives.kdf.hkdf"
)

HUMMINGBOT_SNIPPET = textwrap.dedent(
    """
    import binascii, json, sys
    import eth_keyfile
    store, password_file = sys.argv[1:3]
    password = open(password_file).read().strip().encode()
    conf = json.load(open(store))
    values = [
        eth_keyfile.decode_keyfile_json(json.loads(binascii.unhexlify(conf[k])), password)
        for k in ("binance_api_key", "binance_api_secret")
    ]
    assert all(values)
    """
)


@dataclass
class Contender:
    """One command of the figure."""

    key: str
    label: str
    shell: str  # the command for hyperfine (run by sh)
    argv: list[str]  # the same for the fallback loop
    stdin: bytes | None = None
    target: str = "—"
    check: object = None  # callable(ratio) -> bool, or None for no target


def run(cfg: Config) -> Results:
    res = Results()
    work = cfg.workdir / "cold-start"
    work.mkdir(mode=0o700, exist_ok=True)
    n = 50 if cfg.quick else 1_000
    runs = cfg.repeats(default=15, quick=1)
    warmup = 0 if cfg.quick else 3

    index = n // 2
    fields = sample_payload(index)
    plaintext = f"{fields['secret']}\napi_key: {fields['api_key']}\n".encode()
    env = clean_env()

    bench = get_vault(cfg, n, clients=1)
    token_file = bench.token_file(index, work)
    env.update(EXVAULT_PATH=str(bench.path), EXVAULT_TOKEN_FILE=str(token_file))
    snippet = EXVAULT_SNIPPET.format(name=credential_name(index))
    contenders = [
        Contender(
            "exvault",
            "exvault load",
            f"{shlex.quote(cfg.python)} -c {shlex.quote(snippet)}",
            [cfg.python, "-c", snippet],
        )
    ]
    skipped: list[tuple[str, str, str]] = []
    faster = ("< 1 (faster)", lambda r: r < 1)

    # --- pass
    skip = skip_reason(cfg, bool(which("pass") and which("gpg")))
    if skip is None:
        try:
            contenders.append(_setup_pass(work, plaintext, env))
            contenders[-1].target, contenders[-1].check = "≤ 2", lambda r: r <= 2
        except (RuntimeError, OSError) as exc:
            res.note(f"Figure 2: pass could not be set up: {exc}")
            skipped.append(("pass show", "error", "≤ 2"))
    else:
        skipped.append(("pass show", skip, "≤ 2"))

    # --- keepassxc-cli (--quick: only the default database; -t 1000 costs seconds)
    skip = skip_reason(cfg, bool(which("keepassxc-cli")))
    if skip is None:
        try:
            for decryption_ms in (None,) if cfg.quick else (None, 1000):
                c = _setup_keepassxc(work, fields, decryption_ms, res)
                c.target, c.check = faster
                contenders.append(c)
        except (RuntimeError, OSError) as exc:
            res.note(f"Figure 2: keepassxc-cli could not be set up: {exc}")
            skipped.append(("keepassxc-cli show", "error", faster[0]))
    else:
        skipped.append(("keepassxc-cli show (db-create defaults)", skip, faster[0]))
        skipped.append(("keepassxc-cli show (db-create -t 1000)", skip, faster[0]))

    # --- hummingbot-style eth-keyfile keystores
    skip = skip_reason(cfg, python_has(cfg.python, "eth_keyfile"))
    if skip is None:
        c = _setup_hummingbot(cfg, work, fields)
        c.target, c.check = faster
        contenders.append(c)
    else:
        skipped.append(("hummingbot-style (eth-keyfile)", skip, faster[0]))

    # --- age
    skip = skip_reason(cfg, bool(which("age") and which("age-keygen")))
    if skip is None:
        contenders.append(_setup_age(work, plaintext))
    else:
        skipped.append(("age -d -i identity (floor)", skip, "—"))

    # --- the Python floor (nothing to install; left out with the peers by --no-peers)
    floor_label = "python + cryptography imports (floor of a Python client)"
    skip = skip_reason(cfg, True)
    if skip is None:
        contenders.append(
            Contender(
                "python-floor",
                floor_label,
                f"{shlex.quote(cfg.python)} -c {shlex.quote(PYTHON_FLOOR_SNIPPET)}",
                [cfg.python, "-c", PYTHON_FLOOR_SNIPPET],
            )
        )
    else:
        skipped.append((floor_label, skip, "—"))

    try:
        if which("hyperfine") and cfg.peers:
            times = _hyperfine(contenders, env, work, runs, warmup)
            method = f"hyperfine {_hyperfine_version()}, {runs} runs + {warmup} warm-up"
        else:
            times = _loop(contenders, env, runs, warmup)
            method = f"interleaved subprocess loop, {runs} runs + {warmup} warm-up"
    finally:
        if any(c.key == "pass" for c in contenders):
            subprocess.run(
                ["gpgconf", "--kill", "gpg-agent"],
                env={**env, "GNUPGHOME": str(work / "gnupg")},
                capture_output=True,
            )

    ours = times["exvault"]
    res.add(Row(FIGURE + ": exvault load (client token)", fmt_time(median(ours))))
    for c in contenders[1:]:
        theirs = times[c.key]
        ratio = paired_ratio(ours, theirs)
        ok = c.check(ratio) if callable(c.check) else None  # type: ignore[operator]
        res.add(
            Row(
                f"{FIGURE}: vs {c.label}",
                fmt_time(median(ours)),
                fmt_time(median(theirs)),
                fmt_ratio(ratio),
                c.target,
                "—" if ok is None else verdict(ok),
            )
        )
    for label, why, target in skipped:
        res.add(Row(f"{FIGURE}: vs {label}", fmt_time(median(ours)), why, target=target))
    res.note(f"Figure 2: {method}; vault of {n:,} credentials; ratio = exvault / peer.")
    if _CPU:
        res.note(
            "Figure 2: mean CPU time (user + system) per run: "
            + ", ".join(f"{c.label} {fmt_time(_CPU[c.key])}" for c in contenders if c.key in _CPU)
        )
    return res


# ----------------------------------------------------------------------------- peers


def _setup_pass(work: Path, plaintext: bytes, env: dict[str, str]) -> Contender:
    home = work / "gnupg"
    store = work / "password-store"
    home.mkdir(mode=0o700, exist_ok=True)
    os.chmod(home, 0o700)
    env.update(GNUPGHOME=str(home), PASSWORD_STORE_DIR=str(store))
    gpg = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    run_checked(
        [
            *gpg,
            "--quick-gen-key",
            "exvault benchmark <bench@example.invalid>",
            "default",
            "default",
            "never",
        ],
        env=env,
    )
    listing = run_checked(["gpg", "--batch", "--with-colons", "--list-keys"], env=env)
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    run_checked(["pass", "init", fpr], env=env)
    run_checked(["pass", "insert", "-m", "-f", "exchange/binance-main"], env=env, stdin=plaintext)
    shown = run_checked(["pass", "show", "exchange/binance-main"], env=env)
    assert shown.encode() == plaintext, "pass show returned something else"
    return Contender(
        "pass",
        "pass show",
        "pass show exchange/binance-main",
        ["pass", "show", "exchange/binance-main"],
    )


def _setup_keepassxc(
    work: Path, fields: dict[str, str], decryption_ms: int | None, res: Results
) -> Contender:
    suffix = "default" if decryption_ms is None else f"t{decryption_ms}"
    db = work / f"keepassxc-{suffix}.kdbx"
    if db.exists():
        db.unlink()
    pw = f"{PASSWORD}\n".encode()
    extra = [] if decryption_ms is None else ["-t", str(decryption_ms)]
    run_checked(["keepassxc-cli", "db-create", "-q", *extra, "-p", str(db)], stdin=pw * 2)
    secret = f"{fields['secret']}\n".encode()
    run_checked(
        ["keepassxc-cli", "add", "-q", "-u", fields["api_key"], "-p", str(db), "binance-main"],
        stdin=pw + secret + secret,
    )
    argv = [
        "keepassxc-cli",
        "show",
        "-q",
        "-s",
        "-a",
        "UserName",
        "-a",
        "Password",
        str(db),
        "binance-main",
    ]
    shown = run_checked(argv, stdin=pw)
    assert fields["secret"] in shown and fields["api_key"] in shown
    kdf = keepassxc_kdf(db)
    res.note(f"Figure 2: keepassxc-cli db-create {' '.join(extra) or '(no options)'} chose {kdf}.")
    label = (
        "keepassxc-cli show (db-create defaults)"
        if decryption_ms is None
        else f"keepassxc-cli show (db-create -t {decryption_ms})"
    )
    pw_file = write_secret(work / "keepassxc-password", PASSWORD)
    return Contender(
        f"keepassxc-{suffix}",
        label,
        " ".join(shlex.quote(a) for a in argv) + f" < {shlex.quote(str(pw_file))}",
        argv,
        stdin=pw,
    )


def keepassxc_kdf(db: Path) -> str:
    """What ``keepassxc-cli db-info`` says of a database's KDF, e.g. "AES (1000000 rounds)"."""
    info = run_checked(["keepassxc-cli", "db-info", "-q", str(db)], stdin=f"{PASSWORD}\n".encode())
    for line in info.splitlines():
        if line.startswith("KDF:"):
            return "KDF " + line.split(":", 1)[1].strip()
    return "an unknown KDF"


def _setup_hummingbot(cfg: Config, work: Path, fields: dict[str, str]) -> Contender:
    store = work / "hummingbot-binance.json"
    password_file = write_secret(work / "hummingbot-password", PASSWORD)
    request = json.dumps(
        {
            "store": str(store),
            "password": PASSWORD,
            "values": {
                "binance_api_key": fields["api_key"],
                "binance_api_secret": fields["secret"],
            },
        }
    )
    run_checked([cfg.python, "-c", HUMMINGBOT_WRITER], stdin=request.encode())
    argv = [cfg.python, "-c", HUMMINGBOT_SNIPPET, str(store), str(password_file)]
    return Contender(
        "hummingbot",
        "hummingbot-style (2 eth-keyfile v3, PBKDF2 1M)",
        " ".join(shlex.quote(a) for a in argv),
        argv,
    )


# hummingbot's ETHKeyFileSecretManger.encrypt_secret_value: each value becomes a v3
# keystore (hummingbot's own copy of eth-keyfile's v3 writer, without the "address"
# field that only fits an Ethereum private key), JSON, hex-encoded in the config file.
HUMMINGBOT_WRITER = textwrap.dedent(
    """
    import binascii, json, os, sys
    from eth_keyfile.keyfile import _pbkdf2_hash, encrypt_aes_ctr
    from eth_utils import big_endian_to_int, keccak

    request = json.load(sys.stdin)
    password = request["password"].encode()

    def keystore(value, iterations=1_000_000):
        salt, iv = os.urandom(16), os.urandom(16)
        derived = _pbkdf2_hash(password, "sha256", salt, iterations, 32)
        ciphertext = encrypt_aes_ctr(value.encode(), derived[:16], big_endian_to_int(iv))
        keyfile = {
            "crypto": {
                "cipher": "aes-128-ctr",
                "cipherparams": {"iv": iv.hex()},
                "ciphertext": ciphertext.hex(),
                "kdf": "pbkdf2",
                "kdfparams": {
                    "c": iterations, "dklen": 32, "prf": "hmac-sha256", "salt": salt.hex()
                },
                "mac": keccak(derived[16:32] + ciphertext).hex(),
            },
            "version": 3,
            "alias": "",
        }
        return binascii.hexlify(json.dumps(keyfile).encode()).decode()

    conf = {k: keystore(v) for k, v in request["values"].items()}
    fd = os.open(request["store"], os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(conf, f)
    """
)


def _setup_age(work: Path, plaintext: bytes) -> Contender:
    identity = work / "age-identity.txt"
    if identity.exists():
        identity.unlink()
    run_checked(["age-keygen", "-o", str(identity)])
    recipient = next(
        line.split(":", 1)[1].strip()
        for line in identity.read_text().splitlines()
        if line.startswith("# public key:")
    )
    sealed = work / "binance-main.age"
    run_checked(["age", "-r", recipient, "-o", str(sealed)], stdin=plaintext)
    argv = ["age", "-d", "-i", str(identity), str(sealed)]
    assert run_checked(argv).encode() == plaintext
    return Contender(
        "age", "age -d -i identity (floor, no KDF)", " ".join(shlex.quote(a) for a in argv), argv
    )


# ----------------------------------------------------------------------------- timing


def _hyperfine_version() -> str:
    out = run_checked(["hyperfine", "--version"]).strip()
    return out.split()[-1] if out else "?"


def _hyperfine(
    contenders: list[Contender], env: dict[str, str], work: Path, runs: int, warmup: int
) -> dict[str, list[float]]:
    export = work / "hyperfine.json"
    argv = [
        "hyperfine",
        "--style",
        "none",
        "--warmup",
        str(warmup),
        "--runs",
        str(runs),
        "--export-json",
        str(export),
    ]
    for c in contenders:
        argv += ["-n", c.key, c.shell]
    run_checked(argv, env=env)
    data = json.loads(export.read_text())
    _CPU.clear()
    _CPU.update({r["command"]: r["user"] + r["system"] for r in data["results"]})
    return {r["command"]: list(r["times"]) for r in data["results"]}


def _loop(
    contenders: list[Contender], env: dict[str, str], runs: int, warmup: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {c.key: [] for c in contenders}
    cpu: dict[str, list[float]] = {c.key: [] for c in contenders}
    for i in range(warmup + runs):
        for c in contenders:
            m = run_measured(c.argv, env=env, stdin=c.stdin)
            if i >= warmup:
                times[c.key].append(m.seconds)
                cpu[c.key].append(m.cpu_seconds)
    _CPU.clear()
    _CPU.update({k: sum(v) / len(v) for k, v in cpu.items() if v})
    return times


_CPU: dict[str, float] = {}
"""Mean CPU time (user + system) per command of the last timing run."""
