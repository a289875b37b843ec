"""Figure 1: warm read in-process.

exvault: ``ClientVault.get(name)`` on an open handle (client token; a vault of 1,000
credentials, all granted to that client). Peer: pykeepass reading an entry's password
from an open database of as many entries,
``kp.find_entries(title=name, first=True).password``.

Both read the same sample of names, once untimed (the first read of a version is
audited and unwraps its data key), then in timed batches; the batches alternate
exvault, pykeepass, so each ratio compares two batches measured back to back.

Outside the timing, the figure asserts what makes the number honest:

* every ``get`` decrypts: AES-GCM ``unseal`` runs once per call (counted), and the
  payload digest and associated data are checked on every call;
* a rotation by another process is noticed: a child process unlocks the vault as its
  owner and edits the secret; the open handle's next ``get`` returns the new version.
"""

from __future__ import annotations

import textwrap
import time

from benchmarks.common import (
    SKIPPED,
    Config,
    Results,
    Row,
    clean_env,
    fmt_ratio,
    fmt_time,
    has_module,
    median,
    paired_ratio,
    run_checked,
    skip_reason,
    verdict,
)
from benchmarks.vaults import PASSPHRASE, credential_name, get_kdbx, get_vault

FIGURE = "1. warm read, in-process"
TARGET = 0.8


def run(cfg: Config) -> Results:
    res = Results()
    n = 50 if cfg.quick else 1_000
    repeats = cfg.repeats(default=15, quick=2)
    calls = 50 if cfg.quick else 100  # calls per timed batch (each sample name once)
    sample = [credential_name(i) for i in range(0, n, max(1, n // 100))]

    bench = get_vault(cfg, n, clients=1)
    from vault.runtime.client import ClientVault

    handle = ClientVault.open(bench.path, token=bench.tokens[0])
    try:
        for name in sample:  # first reads: audited, data keys unwrapped
            handle.get(name)

        def exvault_batch() -> float:
            start = time.perf_counter()
            for k in range(calls):
                cred = handle.get(sample[k % len(sample)])
                cred.secret.reveal()
            return (time.perf_counter() - start) / calls

        kp = None
        skip = skip_reason(cfg, has_module("pykeepass"))
        if skip is None:
            from pykeepass import PyKeePass

            kdbx, password = get_kdbx(cfg, n)
            kp = PyKeePass(str(kdbx), password=password)
            for name in sample:
                assert kp.find_entries(title=name, first=True).password

        def kp_batch() -> float:
            assert kp is not None
            start = time.perf_counter()
            for k in range(calls):
                _ = kp.find_entries(title=sample[k % len(sample)], first=True).password
            return (time.perf_counter() - start) / calls

        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(repeats):
            ours.append(exvault_batch())
            if kp is not None:
                theirs.append(kp_batch())

        decrypts = _count_decryptions(handle, sample)
        rotated = _rotation_seen(cfg, bench.path, handle, sample[len(sample) // 2])
    finally:
        handle.close()

    honest = decrypts >= len(sample) and rotated
    res.note(
        f"Figure 1: {n:,} credentials / entries; {calls} reads per batch over "
        f"{len(sample)} names, {repeats} batches each. Per read, exvault decrypted "
        f"(AES-GCM unseal counted: {decrypts} for {len(sample)} reads) and a rotation "
        f"by another process was {'seen' if rotated else 'NOT seen'} by the open handle."
    )
    target = f"≤ {TARGET} (decrypts each call; sees rotation)"
    if kp is None:
        res.add(Row(FIGURE, f"{fmt_time(median(ours))}/get", skip or SKIPPED, target=target))
        return res
    ratio = paired_ratio(ours, theirs)
    res.add(
        Row(
            FIGURE,
            f"{fmt_time(median(ours))}/get",
            f"{fmt_time(median(theirs))}/read (pykeepass {_kp_version()})",
            fmt_ratio(ratio),
            target,
            verdict(ratio <= TARGET and honest),
        )
    )
    return res


def _kp_version() -> str:
    from importlib.metadata import version

    return version("pykeepass")


def _count_decryptions(handle: object, names: list[str]) -> int:
    """How many AES-GCM decryptions ``len(names)`` warm gets perform."""
    from vault.format import aead

    real = aead.unseal
    count = 0

    def counting(*args: object, **kwargs: object) -> bytes:
        nonlocal count
        count += 1
        return real(*args, **kwargs)  # type: ignore[arg-type]

    aead.unseal = counting  # type: ignore[assignment]
    try:
        for name in names:
            handle.get(name)  # type: ignore[attr-defined]
    finally:
        aead.unseal = real  # type: ignore[assignment]
    return count


_EDIT = textwrap.dedent(
    """
    import sys
    from vault.owner.admin import AdminVault
    path, passphrase, name = sys.argv[1:4]
    new = {"api_key": "rotated" + "0" * 40, "secret": "rotated" + "1" * 40}
    with AdminVault.unlock(path, passphrase) as admin:
        old = admin.get(name)
        fields = {k: v.reveal() for k, v in old.fields.items()}
        fields.update(new)
        print(admin.edit(name, payload=fields).version)
    """
)


def _rotation_seen(cfg: Config, path: object, handle: object, name: str) -> bool:
    """Another process edits ``name``; the open handle must return the new version."""
    before = handle.get(name)  # type: ignore[attr-defined]
    out = run_checked([cfg.python, "-c", _EDIT, str(path), PASSPHRASE, name], env=clean_env())
    new_version = int(out.strip().splitlines()[-1])
    after = handle.get(name)  # type: ignore[attr-defined]
    ok = (
        new_version == before.version + 1
        and after.version == new_version
        and after.secret.reveal() == "rotated" + "1" * 40
    )
    assert ok, "the open handle did not see the rotation made by another process"
    return ok
