"""Child processes of the reliability suites, and the bookkeeping they share with the tests.

Run as ``python -m tests.reliability.workload MODE CONFIG [WORKER]`` from the
repository root; the tests start these processes themselves.

Modes:

``crash``
    Unlocks the vault and performs random operations (add, edit, rotate start /
    promote / finish / abort, grant, passwd, remove, and ``admin.batch()`` of adds,
    an edit and a grant: all or nothing) until it is killed. Around each
    operation it appends one line to the journal (``intent``, then ``commit`` once the
    operation has returned), each with flush + fsync, and prints ``c SEQ`` on stdout
    after the commit line. The parent SIGKILLs it at a random instant and checks the
    vault against the journal.

``writer`` / ``granter`` / ``reader``
    The workers of the concurrency suite; each runs until a shared deadline, logs what
    it committed or read, and writes a JSON result file with every exception it met.

Every child prints ``ready`` once its imports are done and waits for one ``go`` line
(JSON) on stdin, so that process start-up (about a second of imports) stays out of
the measured window; the crash suite keeps spare children warm this way.

Secrets are never written anywhere by these processes: journals and logs carry a
SHA-256 digest of each secret value (:func:`value_hash`), never the value.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import importlib
import json
import os
import random
import secrets
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

EXCHANGE = "binance"
PERMISSIONS = "read,trade"
CRASH_NAMES = tuple(f"cred-{i}" for i in range(6))
CRASH_CLIENT = "crash-bot"
SHARED = "shared"
MAX_EXCEPTIONS_KEPT = 20
MAX_EXTRA_CLIENTS = 8

State = dict[str, Any]
"""The committed state of the crash vault, as plain JSON data::

    {"creds": {name: {"cur": [version, hash], "pend": [v, h] | None,
                      "prev": [v, h] | None, "max": highest version number}},
     "granted": [names granted to the crash client, sorted],
     "pp": index of the current passphrase (0 or 1)}
"""


# --------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------


def value_hash(api_key: str, secret: str) -> str:
    """The digest that journals and logs carry instead of a secret value."""
    return hashlib.sha256(f"{api_key}\0{secret}".encode()).hexdigest()[:32]


def credential_hash(cred: Any) -> str:
    """:func:`value_hash` of a decrypted :class:`vault.Credential`."""
    return value_hash(cred.api_key.reveal(), cred.secret.reveal())


def new_payload() -> tuple[dict[str, str], str]:
    """Fresh, unique binance-shaped secret fields and their digest."""
    api_key = "k" + secrets.token_hex(24)
    secret = secrets.token_hex(24)
    return {"api_key": api_key, "secret": secret}, value_hash(api_key, secret)


# --------------------------------------------------------------------------------------
# Journal lines: JSON, one per line, appended with flush + fsync
# --------------------------------------------------------------------------------------


def append_line(fd: int, record: Mapping[str, Any]) -> None:
    """Append one JSON line to an ``O_APPEND`` descriptor and make it durable."""
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    written = os.write(fd, data)
    if written != len(data):  # a short write to a local file: disk full
        raise OSError(f"short write to the journal ({written} of {len(data)} bytes)")
    os.fsync(fd)


def read_new_lines(
    path: Path, offset: int, *, repair: bool = False
) -> tuple[list[dict[str, Any]], int]:
    """Complete JSON lines of ``path`` after byte ``offset``, and the offset after them.

    A last line without its newline was cut by a kill: it is ignored and, with
    ``repair``, cut off the file so that the next writer starts on a fresh line.
    """
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    if repair and end < len(data):
        os.truncate(path, offset + end)
    lines = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
    return lines, offset + end


# --------------------------------------------------------------------------------------
# The crash model
# --------------------------------------------------------------------------------------


def empty_state() -> State:
    """A vault with no credential, nothing granted, the first passphrase current."""
    return {"creds": {}, "granted": [], "pp": 0}


def apply_entry(state: State, entry: Mapping[str, Any]) -> State:
    """The state after one committed operation (a new object; ``state`` is unchanged)."""
    new = copy.deepcopy(state)
    op = entry["op"]
    creds = new["creds"]
    if op == "passwd":
        new["pp"] = entry["to"]
        return new
    if op == "batch":  # one transaction: all of its operations, or none
        for sub in entry["ops"]:
            new = apply_entry(new, sub)
        return new
    name = entry["name"]
    if op == "add":
        creds[name] = {"cur": [entry["v"], entry["h"]], "pend": None, "prev": None, "max": 1}
    elif op == "edit":
        creds[name]["cur"] = [entry["v"], entry["h"]]
        creds[name]["max"] = entry["v"]
    elif op == "start":
        creds[name]["pend"] = [entry["v"], entry["h"]]
        creds[name]["max"] = entry["v"]
    elif op == "promote":
        cred = creds[name]
        cred["prev"], cred["cur"], cred["pend"] = cred["cur"], cred["pend"], None
    elif op == "finish":
        creds[name]["prev"] = None
    elif op == "abort":
        creds[name]["pend"] = None
    elif op == "grant":
        new["granted"] = sorted(set(new["granted"]) | {name})
    elif op == "remove":
        del creds[name]
        new["granted"] = [n for n in new["granted"] if n != name]
    else:
        raise ValueError(f"unknown journal operation {op!r}")
    return new


def choose_operation(rng: random.Random, state: State) -> dict[str, Any]:
    """A random operation that is valid in ``state`` (without its payload digest yet)."""
    creds = state["creds"]
    names = sorted(creds)
    free = [n for n in CRASH_NAMES if n not in creds]
    quiet = [n for n in names if creds[n]["pend"] is None]
    pending = [n for n in names if creds[n]["pend"] is not None]
    previous = [n for n in names if creds[n]["prev"] is not None]
    ungranted = [n for n in names if n not in state["granted"]]
    choices: list[tuple[str, list[str], int]] = [
        ("add", free, 3),
        ("edit", quiet, 3),
        ("start", quiet, 3),
        ("promote", pending, 3),
        ("abort", pending, 1),
        ("finish", previous, 2),
        ("grant", ungranted, 2),
        ("remove", names if len(names) > 2 else [], 1),
        ("passwd", ["-"], 1),
        ("batch", free, 2),
    ]
    available = [(op, pool, weight) for op, pool, weight in choices if pool]
    op, pool, _weight = rng.choices(available, weights=[w for _o, _p, w in available])[0]
    if op == "passwd":
        return {"op": "passwd", "to": 1 - state["pp"]}
    if op == "batch":
        # admin.batch(): a few adds, an edit and a grant of existing credentials.
        ops: list[dict[str, Any]] = [
            {"op": "add", "name": n, "v": 1}
            for n in rng.sample(free, rng.randint(1, min(3, len(free))))
        ]
        if quiet:
            name = rng.choice(quiet)
            ops.append({"op": "edit", "name": name, "v": creds[name]["max"] + 1})
        if ungranted:
            ops.append({"op": "grant", "name": rng.choice(ungranted)})
        return {"op": "batch", "ops": ops}
    name = rng.choice(pool)
    entry: dict[str, Any] = {"op": op, "name": name}
    if op == "add":
        entry["v"] = 1
    elif op in ("edit", "start"):
        entry["v"] = creds[name]["max"] + 1
    return entry


def observe(admin: Any, client_name: str, pp: int) -> State:
    """The state an unlocked vault actually holds, in the model's terms.

    Reads every stage of every credential with the root key (each read verified and
    decrypted), the highest version number from the history, and the client's grants.
    """
    state: State = {"creds": {}, "granted": [], "pp": pp}
    for name in admin.names():
        info = admin.describe(name)
        cred: dict[str, Any] = {}
        for key, stage, version in (
            ("cur", "current", info.version),
            ("pend", "pending", info.pending_version),
            ("prev", "previous", info.previous_version),
        ):
            cred[key] = [version, _root_read(admin, name, stage)] if version else None
        cred["max"] = max(v.version for v in admin.history(name))
        state["creds"][name] = cred
    state["granted"] = sorted(admin.client(client_name).grants)
    return state


def _root_read(admin: Any, name: str, stage: str) -> str:
    # What AdminVault.get does (verify the rows, unwrap with the root key, decrypt),
    # without its audit entry: checking after every kill must not grow the log.
    writer = admin.writer
    with writer.read() as session:
        head = writer.head(session, name)
        _meta, fields = writer.open_version(session, head, stage)
    return value_hash(fields["api_key"], fields["secret"])


def half_written(store: Any) -> list[str]:
    """Rows a crash could leave half-written, found with plain SQL (no cryptography).

    Every credential has a current version; every labelled version (current, pending,
    previous) has its version row, payload and root wrap; no retired version keeps a
    payload or wrap; every live grant has a wrap on every labelled version.
    """
    from sqlalchemy import select

    from vault.db.store import orm_session
    from vault.db.tables import (
        ClientRecord,
        CredentialRecord,
        GrantRecord,
        PayloadRecord,
        VersionRecord,
        WrapRecord,
    )

    problems: list[str] = []
    with store.read() as transaction:
        session = orm_session(transaction)
        heads = list(session.scalars(select(CredentialRecord)))
        versions = {(r.credential_id, r.version) for r in session.scalars(select(VersionRecord))}
        payloads = {(p.credential_id, p.version) for p in session.scalars(select(PayloadRecord))}
        wraps: dict[tuple[str, int], set[str]] = {}
        for w in session.scalars(select(WrapRecord)):
            wraps.setdefault((w.credential_id, w.version), set()).add(w.recipient)
        live = {c.id for c in session.scalars(select(ClientRecord)) if c.revoked_at is None}
        grants: dict[str, set[str]] = {}
        for g in session.scalars(select(GrantRecord)):
            if g.client_id in live:
                grants.setdefault(g.credential_id, set()).add(g.client_id)
        head_ids = {h.id for h in heads}
        for cid, version in versions | payloads | set(wraps):
            if cid not in head_ids:
                problems.append(f"version {version} of a removed credential {cid} remains")
        for head in heads:
            if head.current_version is None:
                problems.append(f"{head.name}: no current version")
            labelled = {
                v
                for v in (head.current_version, head.pending_version, head.previous_version)
                if v is not None
            }
            for v in sorted(labelled):
                key = (head.id, v)
                if key not in versions:
                    problems.append(f"{head.name}: labelled version {v} has no version row")
                if key not in payloads:
                    problems.append(f"{head.name}: labelled version {v} has no payload")
                recipients = wraps.get(key, set())
                if "root" not in recipients:
                    problems.append(f"{head.name}: labelled version {v} has no root wrap")
                for client_id in sorted(grants.get(head.id, set()) - recipients):
                    problems.append(f"{head.name}: version {v} not wrapped for {client_id}")
            for cid, v in sorted(payloads | set(wraps)):
                if cid == head.id and v not in labelled:
                    problems.append(f"{head.name}: retired version {v} keeps ciphertext")
    return problems


# --------------------------------------------------------------------------------------
# Child plumbing
# --------------------------------------------------------------------------------------


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _preload(*modules: str) -> None:
    # The heavy imports (SQLAlchemy, cryptography) happen before "ready", outside the
    # window in which the parent times, kills or races the child.
    for module in modules:
        importlib.import_module(module)


def _wait_for_go() -> dict[str, Any] | None:
    _say("ready")
    line = sys.stdin.readline()
    if not line.strip() or line.strip() == "quit":
        return None
    go: dict[str, Any] = json.loads(line)
    return go


class _Orphaned(Exception):
    """The parent is gone: stop rather than run forever."""


# --------------------------------------------------------------------------------------
# Crash child
# --------------------------------------------------------------------------------------


def _perform(
    admin: Any, entry: dict[str, Any], payload: dict[str, str] | None, cfg: dict[str, Any]
) -> None:
    from vault.owner import rotation

    op, name = entry["op"], entry.get("name")
    if op == "batch":
        with admin.batch():
            for sub in entry["ops"]:
                _perform(admin, sub, sub.get("payload"), cfg)
        return
    if op == "add":
        info = admin.add(name, EXCHANGE, payload, permissions=PERMISSIONS)
        version = info.version
    elif op == "edit":
        version = admin.edit(name, payload=payload).version
    elif op == "passwd":
        admin.change_passphrase(cfg["passphrases"][entry["to"]], insecure_test_kdf=True)
        return
    elif op == "grant":
        admin.grant(cfg["client"], [name])
        return
    elif op == "remove":
        admin.remove(name)
        return
    else:
        step = getattr(rotation, op)
        if op == "start":
            result = step(admin, name, payload)
        elif op == "finish":  # the workload does not wait out grace periods
            result = step(admin, name, force=True)
        else:
            result = step(admin, name)
        if not result.changed:
            raise AssertionError(f"rotation {op} of {name} changed nothing: {result.message}")
        version = result.version
        if op != "start":
            return
    if version != entry["v"]:
        raise AssertionError(f"{op} {name} wrote version {version}, expected {entry['v']}")


def run_crash(cfg: dict[str, Any]) -> int:
    """Random operations until killed (see the module docstring)."""
    from vault.owner.admin import AdminVault

    go = _wait_for_go()
    if go is None:
        return 0
    parent = os.getppid()
    state: State = go["state"]
    seq: int = go["seq"]
    rng = random.Random(go["seed"])
    admin = AdminVault.unlock(cfg["vault"], cfg["passphrases"][state["pp"]])
    fd = os.open(cfg["journal"], os.O_WRONLY | os.O_APPEND)
    _say("opened")
    for _ in range(100_000):
        if os.getppid() != parent:
            raise _Orphaned()
        entry = choose_operation(rng, state)
        entry["seq"] = seq
        payload = None
        if entry["op"] in ("add", "edit", "start"):
            payload, entry["h"] = new_payload()
        payloads: dict[int, dict[str, str]] = {}
        for i, sub in enumerate(entry.get("ops", ())):
            if sub["op"] in ("add", "edit"):
                payloads[i], sub["h"] = new_payload()
        append_line(fd, {"t": "intent", **entry})
        work = copy.deepcopy(entry)
        for i, sub_payload in payloads.items():  # never journaled: digests only there
            work["ops"][i]["payload"] = sub_payload
        _perform(admin, work, payload, cfg)
        append_line(fd, {"t": "commit", **entry})
        state = apply_entry(state, entry)
        _say(f"c {seq}")
        seq += 1
    return 0


def run_init_kill(cfg: dict[str, Any]) -> int:
    """Create a vault and SIGKILL ourselves at ``cfg["moment"]``: "in-transaction" (the
    schema, header and keyslots written but not committed) or "before-link" (committed
    under the temporary name, not yet linked into place)."""
    import signal

    import vault.db.store
    import vault.owner.admin
    from vault.format.kdf_params import KdfParams

    def die(*_args: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    if cfg["moment"] == "in-transaction":
        real_create = vault.db.store.EngineStore.create.__func__  # type: ignore[attr-defined]

        def create(cls: Any, url: Any, initialize: Any) -> Any:
            def initialize_then_die(transaction: Any) -> None:
                initialize(transaction)
                transaction.session.flush()
                die()

            return real_create(cls, url, initialize_then_die)

        vault.db.store.EngineStore.create = classmethod(create)  # type: ignore[assignment]
    else:
        vault.db.store.os.link = die  # type: ignore[assignment]
    vault.owner.admin.AdminVault.create(
        cfg["vault"], cfg["passphrase"], kdf=KdfParams(*cfg["kdf"]), insecure_test_kdf=True
    )
    return 0


# --------------------------------------------------------------------------------------
# Concurrency workers
# --------------------------------------------------------------------------------------


class Worker:
    """What every concurrency worker shares: its log, counters and caught exceptions."""

    def __init__(self, cfg: dict[str, Any], worker: str, go: dict[str, Any]) -> None:
        self.cfg = cfg
        self.worker = worker
        self.deadline: float = go["deadline"]
        self.rng = random.Random(f"{go['seed']}-{worker}")
        self.parent = os.getppid()
        self.dir = Path(cfg["dir"])
        self.log_fd = os.open(
            self.dir / f"{worker}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        self.counts: dict[str, int] = {}
        self.exceptions: list[dict[str, Any]] = []
        self.exception_count = 0
        self.extra: dict[str, Any] = {}
        self.latency: dict[str, tuple[int, float, float]] = {}

    def running(self) -> bool:
        if os.getppid() != self.parent:
            raise _Orphaned()
        return time.time() < self.deadline

    def log(self, record: Mapping[str, Any]) -> None:
        """Log a committed write (fsynced: other workers read the granter's log)."""
        append_line(self.log_fd, record)
        self.count(record["op"])

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    @contextmanager
    def timed(self, what: str) -> Iterator[None]:
        """Time one operation: the result reports count, total and worst seconds."""
        start = time.perf_counter()
        yield
        spent = time.perf_counter() - start
        count, total, worst = self.latency.get(what, (0, 0.0, 0.0))
        self.latency[what] = (count + 1, total + spent, max(worst, spent))

    def caught(self, exc: BaseException, doing: str) -> None:
        self.exception_count += 1
        if len(self.exceptions) < MAX_EXCEPTIONS_KEPT:
            self.exceptions.append(
                {
                    "doing": doing,
                    "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                    "message": str(exc),
                    "traceback": "".join(traceback.format_exception(exc)),
                }
            )

    def finish(self) -> None:
        result = {
            "worker": self.worker,
            "counts": self.counts,
            "exception_count": self.exception_count,
            "exceptions": self.exceptions,
            "latency": self.latency,
            **self.extra,
        }
        path = self.dir / f"{self.worker}.result.json"
        path.write_text(json.dumps(result, sort_keys=True))


def run_writer(cfg: dict[str, Any], w: Worker) -> None:
    """Adds and edits its own credentials; rotates the shared one, a cycle at a time.

    Two rotations of one credential at once are refused by design (``Conflict``), so
    the writers take turns on whole start -> promote -> finish cycles through a file
    lock; every step still runs concurrently with everything else.
    """
    from vault.owner import rotation
    from vault.owner.admin import AdminVault

    admin = AdminVault.unlock(cfg["vault"], cfg["passphrase"])
    own: list[str] = []
    lock_fd = os.open(Path(cfg["dir"]) / "shared-rotation.lock", os.O_RDWR | os.O_CREAT, 0o600)
    holding = False
    next_step = "start"
    try:
        while w.running():
            roll = w.rng.random()
            doing = "?"
            try:
                if not own or (roll < 0.2 and len(own) < 40):
                    name = f"{w.worker}-{len(own)}"
                    doing = f"add {name}"
                    payload, digest = new_payload()
                    with w.timed("add"):
                        info = admin.add(name, EXCHANGE, payload, permissions=PERMISSIONS)
                    own.append(name)
                    w.log({"op": "add", "name": name, "v": info.version, "h": digest})
                elif roll < 0.75:
                    name = w.rng.choice(own)
                    doing = f"edit {name}"
                    payload, digest = new_payload()
                    with w.timed("edit"):
                        info = admin.edit(name, payload=payload)
                    w.log({"op": "edit", "name": name, "v": info.version, "h": digest})
                else:
                    if not holding:
                        try:
                            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        except BlockingIOError:
                            w.count("rotation-turn-skipped")
                            continue
                        holding, next_step = True, "start"
                    doing = f"rotate {next_step} {SHARED}"
                    if next_step == "start":
                        payload, digest = new_payload()
                        with w.timed("start"):
                            result = rotation.start(admin, SHARED, payload)
                        w.log({"op": "start", "name": SHARED, "v": result.version, "h": digest})
                        next_step = "promote"
                    elif next_step == "promote":
                        with w.timed("promote"):
                            result = rotation.promote(admin, SHARED)
                        w.log({"op": "promote", "name": SHARED, "v": result.version})
                        next_step = "finish"
                    else:
                        with w.timed("finish"):
                            result = rotation.finish(admin, SHARED, force=True)
                        w.log({"op": "finish", "name": SHARED, "v": result.version})
                        fcntl.flock(lock_fd, fcntl.LOCK_UN)
                        holding = False
                    if not result.changed:
                        raise AssertionError(f"{doing} changed nothing: {result.message}")
            except Exception as exc:
                w.caught(exc, doing)
    finally:
        admin.close()
        os.close(lock_fd)  # releases the lock if a cycle is left half done


def run_granter(cfg: dict[str, Any], w: Worker) -> None:
    """Grants every credential it finds to the readers' clients, and now and then
    creates an extra client and grants it everything (wrapping many data keys)."""
    from vault.owner.admin import AdminVault

    admin = AdminVault.unlock(cfg["vault"], cfg["passphrase"])
    granted: dict[str, set[str]] = {client: {SHARED} for client in cfg["readers"]}
    extra = 0
    try:
        while w.running():
            doing = "list"
            try:
                names = admin.names()
                for client, done in granted.items():
                    todo = [n for n in names if n not in done]
                    if not todo:
                        continue
                    doing = f"grant {todo} to {client}"
                    with w.timed("grant"):
                        admin.grant(client, todo)
                    done.update(todo)
                    for name in todo:
                        w.log({"op": "grant", "client": client, "name": name})
                if extra < MAX_EXTRA_CLIENTS and w.rng.random() < 0.05:
                    client = f"extra-{extra}"
                    doing = f"add client {client}"
                    admin.add_client(client)
                    extra += 1
                    w.count("client-add")
                    doing = f"grant everything to {client}"
                    admin.grant(client, names)
                    w.count("grant-all", len(names))
                time.sleep(0.02)
            except Exception as exc:
                w.caught(exc, doing)
    finally:
        admin.close()


def run_reader(cfg: dict[str, Any], w: Worker) -> None:
    """Reads granted credentials through one long-lived handle and fresh ``vault.load``
    calls; records every (name, version, digest) seen and any version going backwards."""
    import vault

    client = w.worker  # each reader process acts as the client of its own name
    token = cfg["tokens"][client]
    grant_log = Path(cfg["dir"]) / "granter.log"
    readable = [SHARED]
    offset = 0
    seen: dict[tuple[str, int], str] = {}
    mismatched: list[str] = []
    backwards: list[str] = []
    last: dict[str, dict[str, int]] = {"handle": {}, "load": {}}
    handle = vault.open(cfg["vault"], token=token)
    try:
        while w.running():
            doing = "read the grant log"
            try:
                if grant_log.exists():
                    lines, offset = read_new_lines(grant_log, offset)
                    readable += [r["name"] for r in lines if r["client"] == client]
                name = w.rng.choice(readable)
                how = "handle" if w.rng.random() < 0.8 else "load"
                doing = f"{how} {name}"
                with w.timed(how):
                    if how == "handle":
                        cred = handle.get(name)
                    else:
                        cred = vault.load(name, where=cfg["vault"], token=token)
                digest = credential_hash(cred)
                w.count(f"read-{how}")
                if seen.setdefault((name, cred.version), digest) != digest:
                    mismatched.append(f"{name} v{cred.version}: two different values")
                before = last[how].get(name, 0)
                if cred.version < before:
                    backwards.append(f"{how} {name}: v{before} then v{cred.version}")
                last[how][name] = max(before, cred.version)
            except Exception as exc:
                w.caught(exc, doing)
    finally:
        handle.close()
        w.extra["seen"] = [[n, v, h] for (n, v), h in sorted(seen.items())]
        w.extra["mismatched"] = mismatched
        w.extra["backwards"] = backwards


def run_concurrency(mode: str, cfg: dict[str, Any], worker: str) -> int:
    """A concurrency worker: wait for go, run until the deadline, write the result file."""
    _preload("vault.owner.admin", "vault.runtime.client", "vault.owner.rotation")

    go = _wait_for_go()
    if go is None:
        return 0
    w = Worker(cfg, worker, go)
    body = {"writer": run_writer, "granter": run_granter, "reader": run_reader}[mode]
    try:
        body(cfg, w)
    except Exception as exc:  # setting up (unlock, open) failed: report it too
        w.caught(exc, f"{mode} set-up or tear-down")
    w.finish()
    _say("done")
    return 0


def iter_log(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a worker's log (every line is complete: no worker is killed)."""
    if path.exists():
        yield from read_new_lines(path, 0)[0]


def main(argv: list[str]) -> int:
    mode, config = argv[0], argv[1]
    cfg = json.loads(Path(config).read_text())
    if mode == "init-kill":
        return run_init_kill(cfg)
    if mode == "crash":
        _preload("vault.owner.admin", "vault.owner.rotation")
        return run_crash(cfg)
    return run_concurrency(mode, cfg, argv[2])


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except _Orphaned:
        sys.exit(2)
