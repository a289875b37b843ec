"""Benchmark vaults: built once through the library, cached under /tmp keyed by size.

A vault of N credentials (one version each, one client grant each) is built with the
cheap test KDF through the owner's unit of work, :class:`vault.owner.writer.Writer`:
one ``batch()`` per chunk of 2,000 credentials (one transaction and one fsync per
chunk), each credential written as ``admin.add`` then ``admin.grant`` leave it, its
rows queued and inserted one executemany per table (:func:`build_vault`). The result
is then checked with the public API (admin ``get``, client ``get``, the audit chain)
before it is cached. Like every figure module, this one imports the library inside
the functions that use it, so the driver process loads it only when a figure does.

The cache key is the size, the format version and the builder's version. A cached
vault is upgraded by the owner's unlock (the library's schema migrations) and its
working copy checked before use; one that no longer reads is built again. Each run
works on a copy, so the audit entries and edits a run makes never reach the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import Config, write_secret

PASSPHRASE = "correct horse battery staple (benchmark vault)"
BUILDER_VERSION = 3
"""Bumped whenever the builder's output changes (the cache key includes it)."""
EXCHANGES = ("binance", "kucoin", "okx", "bybit", "gate")
CHUNK = 2_000


def credential_name(i: int) -> str:
    return f"cred-{i:06d}"


def client_name(j: int) -> str:
    return f"bot-{j:03d}"


def sample_payload(i: int) -> dict[str, str]:
    """Secret fields of credential ``i`` (valid for its exchange; unique API key)."""
    exchange = EXCHANGES[i % len(EXCHANGES)]
    api_key = f"{i:08d}" + os.urandom(28).hex()
    fields = {"api_key": api_key, "secret": os.urandom(32).hex()}
    if exchange in ("kucoin", "okx"):
        fields["passphrase"] = f"Bench-{i % 1000:03d}!pass"
    return fields


def sample_metadata(i: int, today: date) -> tuple[str, tuple[str, ...], list[str], date]:
    """Exchange, permissions, IP whitelist and issue date of credential ``i``: a mix
    that gives ``exvault check`` something to report (ages over 120 days, one key in
    ten without an IP whitelist)."""
    exchange = EXCHANGES[i % len(EXCHANGES)]
    permissions = ("read",) if i % 3 == 0 else ("read", "trade")
    ips = [] if i % 10 == 9 else [f"203.0.113.{i % 250 + 1}"]
    return exchange, permissions, ips, today - timedelta(days=i % 120)


@dataclass
class BenchVault:
    """A working copy of a cached benchmark vault."""

    path: Path
    n: int
    clients: int
    tokens: list[str]
    build_seconds: float
    built_now: bool

    def token_for(self, i: int) -> str:
        """The token of the client granted credential ``i``."""
        return self.tokens[i % self.clients]

    def token_file(self, i: int, directory: Path) -> Path:
        return write_secret(directory / f"token-{i % self.clients}", self.token_for(i))


def get_vault(cfg: Config, n: int, clients: int = 1) -> BenchVault:
    """A fresh working copy of the vault of ``n`` credentials spread over ``clients``
    clients (built and cached first if needed).

    A cached vault is brought up to the current schema by an owner unlock (which runs
    the library's migrations), and its working copy is checked with the public API;
    when that fails (the format changed since it was built), it is built again.
    """
    cfg.cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = f"exvault-n{n}-c{clients}-f{_format_version()}-b{BUILDER_VERSION}"
    cached, meta_path = cfg.cache / f"{key}.db", cfg.cache / f"{key}.json"
    work = cfg.workdir / f"vault-{n}-{clients}.db"
    for attempt in range(2):
        built_now = False
        if attempt or not (cached.exists() and meta_path.exists()):
            _build_into_cache(cfg, n, clients, cached, meta_path)
            built_now = True
        meta = json.loads(meta_path.read_text())
        bench = BenchVault(work, n, clients, meta["tokens"], meta["build_seconds"], built_now)
        try:
            _upgrade(cached)
            for old in cfg.workdir.glob(work.name + "*"):
                old.unlink()
            shutil.copyfile(cached, work)
            os.chmod(work, 0o600)
            _validate(bench)
            return bench
        except Exception as exc:  # a vault of an older format: build it again
            if built_now:
                raise
            cfg.log(
                f"cached vault {cached.name} is unusable ({type(exc).__name__}: {exc}); "
                "rebuilding it"
            )
    raise AssertionError("unreachable")


def _format_version() -> int:
    from vault.format.encoding import FORMAT_VERSION

    return FORMAT_VERSION


def _build_into_cache(cfg: Config, n: int, clients: int, cached: Path, meta_path: Path) -> None:
    building = cfg.cache / f"{cached.stem}.building-{os.getpid()}.db"
    for leftover in cfg.cache.glob(building.name + "*"):
        leftover.unlink()
    cfg.log(f"building a vault of {n:,} credentials ({clients} clients) in {cached}")
    tokens, seconds = build_vault(building, n, clients, cfg.log)
    write_secret(meta_path, json.dumps({"tokens": tokens, "build_seconds": seconds}))
    os.replace(building, cached)
    for leftover in cfg.cache.glob(building.name + "*"):
        leftover.unlink()


def _upgrade(path: Path) -> None:
    """The owner's unlock applies pending schema migrations (test KDF: cheap)."""
    from vault.owner.admin import AdminVault

    with AdminVault.unlock(path, PASSPHRASE) as admin:
        admin.store.checkpoint()


def _validate(bench: BenchVault) -> None:
    """Owner and client reads of the last credential verify and decrypt."""
    from vault.owner.admin import AdminVault
    from vault.runtime.client import ClientVault

    last = bench.n - 1
    with AdminVault.unlock(bench.path, PASSPHRASE) as admin:
        assert admin.get(credential_name(last)).version >= 1
    with ClientVault.open(bench.path, token=bench.token_for(last)) as handle:
        assert handle.get(credential_name(last)).version >= 1


def build_vault(path: Path, n: int, clients: int, log: object = None) -> tuple[list[str], float]:
    """Build the vault at ``path``; returns the client tokens and the build time.

    Through the owner's unit of work (:class:`vault.owner.writer.Writer`): one
    ``batch()`` per chunk of :data:`CHUNK` credentials (one transaction, one fsync), in
    which each credential is written as ``admin.add`` followed by ``admin.grant`` would
    leave it (:func:`_add_granted`), its rows queued and inserted one executemany per
    table. ``admin.grant`` itself reads back and re-signs each head it grants, a few
    statements per credential: three times as long or more at 10,000 credentials.
    """
    from vault.format.editable import EditableClient
    from vault.format.kdf_params import KdfParams
    from vault.format.model import to_epoch, utc_now
    from vault.owner.admin import AdminVault
    from vault.owner.credentials import clean_payload, credential_metadata

    started = time.perf_counter()
    admin, _recovery = AdminVault.create(
        path, PASSPHRASE, kdf=KdfParams(1, 64, 1), insecure_test_kdf=True
    )
    with admin:
        tokens = [admin.add_client(client_name(j))[1] for j in range(clients)]
        writer = admin.writer
        with writer.read() as session:
            grantees = [writer.client(session, client_name(j)) for j in range(clients)]
        today = utc_now().date()
        for start in range(0, n, CHUNK):
            now = to_epoch(utc_now())
            with writer.batch():
                for i in range(start, min(n, start + CHUNK)):
                    exchange, permissions, ips, issued = sample_metadata(i, today)
                    name = credential_name(i)
                    metadata = credential_metadata(name, exchange, permissions, ips, issued, None)
                    fields = clean_payload(metadata.exchange, sample_payload(i))
                    client: EditableClient = grantees[i % clients]
                    _add_granted(writer, metadata, fields, client, now)
            if callable(log) and (start // CHUNK) % 10 == 9:
                log(f"  {start + CHUNK:,} / {n:,}")
        admin.store.checkpoint()
    seconds = time.perf_counter() - started
    _check_built(path, n, tokens[(n - 1) % clients])
    return tokens, seconds


def _add_granted(writer: Any, metadata: Any, fields: dict[str, str], client: Any, now: int) -> None:
    """Write a new credential granted to ``client`` in one queued operation of
    ``writer``: what ``admin.add`` then ``admin.grant`` write (a head signed with the
    client in its grantee set, version 1 wrapped for the root and the client, a signed
    grant row, the ``add`` and ``grant`` audit entries), each step the writer's own."""
    from vault.format import records
    from vault.owner.credentials import new_head

    with writer.write(queued=True) as session:
        if writer.name_taken(session, metadata.name):
            raise AssertionError(f"benchmark vault: {metadata.name} twice")
        head_id = records.new_record_id()
        sealed = records.seal_version(
            writer.identity, writer.vault_id, head_id, 1, metadata, fields, now
        )
        head = new_head(
            head_id, metadata.name, now, sealed.stage_digest, records.join_grantees([client.id])
        )
        writer.sign_head(session, head, new=True)
        writer.store_version(session, sealed, [client])
        writer.insert(
            session, records.signed_grant(writer.identity, writer.vault_id, client.id, head_id, now)
        )
        writer.audit(session, "add", metadata.name, 1)
        writer.audit(session, "grant", metadata.name, detail=f"to client {client.name}")
        writer.names_changed(added=metadata.name)


def _check_built(path: Path, n: int, last_token: str) -> None:
    """Check the result with the public API before anyone benchmarks it."""
    from vault.db.inventory import Inventory
    from vault.owner.admin import AdminVault
    from vault.runtime.client import ClientVault

    last = n - 1
    with Inventory.open(path) as inv:
        assert len(inv.names()) == n, "benchmark vault: wrong number of credentials"
        report = inv.verify_audit(remember=False)
        assert report.ok, f"benchmark vault: audit chain does not verify: {report.problems[:3]}"
    with AdminVault.unlock(path, PASSPHRASE) as check_admin:
        assert check_admin.get(credential_name(last)).version == 1
        check_admin.store.checkpoint()
    with ClientVault.open(path, token=last_token) as client_handle:
        assert client_handle.get(credential_name(last)).version == 1


def get_kdbx(cfg: Config, n: int) -> tuple[Path, str]:
    """A KeePass database of ``n`` entries made by pykeepass (cached): path, password."""
    from pykeepass import create_database

    password = PASSPHRASE
    cfg.cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = cfg.cache / f"pykeepass-n{n}.kdbx"
    if not path.exists():
        cfg.log(f"building a pykeepass database of {n:,} entries in {path}")
        tmp = cfg.cache / f"pykeepass-n{n}.building-{os.getpid()}.kdbx"
        kp = create_database(str(tmp), password=password)
        for i in range(n):
            fields = sample_payload(i)
            kp.add_entry(kp.root_group, credential_name(i), fields["api_key"], fields["secret"])
        kp.save()
        os.replace(tmp, path)
    return path, password
