"""Running a program with credentials in its environment (``exvault run``).

The secrets go to the child through environment variables only (never argv). The
child's stdout and stderr are passed through a filter that replaces every secret
value with ``********`` (as ``op run`` does), unless masking is turned off. The
child's exit code is passed through; a child killed by signal N gives 128 + N.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import BinaryIO

from vault.credential import Credential
from vault.errors import InvalidInput, VaultUnavailable, quoted

MASK = b"********"

PRESETS: dict[str, dict[str, str]] = {
    # freqtrade reads FREQTRADE__SECTION__KEY variables over its config file.
    "freqtrade": {
        "FREQTRADE__EXCHANGE__KEY": "api_key",
        "FREQTRADE__EXCHANGE__SECRET": "secret",
        "FREQTRADE__EXCHANGE__PASSWORD": "passphrase",
        "FREQTRADE__EXCHANGE__UID": "uid",
    },
}

# Variables that let a process reach the vault: a child needs its keys, not those.
_VAULT_VARIABLES = ("EXVAULT_TOKEN", "EXVAULT_TOKEN_FILE", "EXVAULT_PASSPHRASE_FILE")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_mapping(text: str) -> tuple[str, str | None, str]:
    """Parse ``NAME=field`` or ``NAME=credential.field``.

    :returns: ``(variable, credential or None, field)``
    :raises InvalidInput: for another form.
    """
    variable, sep, target = text.partition("=")
    credential, dot, field = target.rpartition(".")
    if not sep or not _ENV_NAME.fullmatch(variable) or not field or (dot and not credential):
        raise InvalidInput(f"bad --env {quoted(text)}: use NAME=field or NAME=credential.field")
    return variable, (credential if dot else None), field


def build_environment(
    credentials: Sequence[Credential],
    *,
    preset: str | None,
    mappings: Sequence[str],
    base: Mapping[str, str],
) -> dict[str, str]:
    """The child's environment: ``base`` minus exvault's own variables, plus the mapped fields.

    A preset maps the fields of the single credential; a preset field the credential
    lacks (an optional ``uid``) is left out, a field named by ``--env`` must exist.

    :raises InvalidInput: for an unknown preset, a bad mapping, an ambiguous
        credential, or a missing field.
    """
    env = {k: v for k, v in base.items() if k not in _VAULT_VARIABLES}
    by_name = {c.name: c for c in credentials}

    def single(what: str) -> Credential:
        if len(credentials) != 1:
            raise InvalidInput(f"{what} needs exactly one --cred, or NAME=credential.field")
        return credentials[0]

    if preset is not None:
        if preset not in PRESETS:
            raise InvalidInput(
                f"unknown preset {quoted(preset)} (known: {', '.join(sorted(PRESETS))})"
            )
        cred = single(f"--preset {preset}")
        for variable, field in PRESETS[preset].items():
            value = cred.fields.get(field)
            if value is not None:
                env[variable] = value.reveal()
    for text in mappings:
        variable, cred_name, field = parse_mapping(text)
        if cred_name is None:
            cred = single(f"--env {quoted(text)}")
        elif cred_name in by_name:
            cred = by_name[cred_name]
        else:
            raise InvalidInput(f"--env {quoted(text)} names a credential that is not a --cred")
        value = cred.fields.get(field)
        if value is None:
            raise InvalidInput(
                f'--env {quoted(text)}: credential "{cred.name}" has no field {quoted(field)} '
                f"(it has: {', '.join(sorted(cred.fields))})"
            )
        env[variable] = value.reveal()
    return env


def secret_values(credentials: Sequence[Credential]) -> list[bytes]:
    """The byte strings to mask: each value, and each long line of multi-line values
    (a PEM key printed re-wrapped still has its lines), longest first."""
    values: set[bytes] = set()
    for cred in credentials:
        for secret in cred.fields.values():
            value = secret.reveal()
            if len(value) >= 4:
                values.add(value.encode())
            for line in value.splitlines():
                if len(line.strip()) >= 16:
                    values.add(line.strip().encode())
    return sorted(values, key=len, reverse=True)


class MaskingFilter:
    """Replaces secret byte strings in a stream, even when one is split across reads.

    Output is held back only from the first byte that could still begin a secret (or
    grow a shorter secret into a longer one), so a prompt the child prints without a
    newline still shows at once. A complete secret is never split between what is
    written now and what is held back, and masks are never matched again.
    """

    def __init__(self, secrets: Sequence[bytes]) -> None:
        # Longest first: at any position, the longest complete secret is the one masked.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pattern = (
            re.compile(b"|".join(re.escape(s) for s in self._secrets)) if self._secrets else None
        )
        self._longest = len(self._secrets[0]) if self._secrets else 0
        self._buffer = b""

    def _pending_start(self, data: bytes) -> int:
        """The first index whose tail is a proper prefix of a secret (len(data) if none)."""
        for i in range(max(0, len(data) - self._longest + 1), len(data)):
            tail = data[i:]
            if any(len(s) > len(tail) and s.startswith(tail) for s in self._secrets):
                return i
        return len(data)

    def feed(self, data: bytes) -> bytes:
        """Add data; return what can be written out now."""
        if self._pattern is None:
            return data
        buf = self._buffer + data
        cut = self._pending_start(buf)
        matches = list(self._pattern.finditer(buf))
        for m in reversed(matches):
            if m.start() < cut < m.end():  # never split a complete secret
                cut = m.start()
        out, pos = bytearray(), 0
        for m in matches:
            if m.end() > cut:
                break
            out += buf[pos : m.start()] + MASK
            pos = m.end()
        out += buf[pos:cut]
        self._buffer = buf[cut:]  # kept raw: it is masked when it is released
        return bytes(out)

    def flush(self) -> bytes:
        """End of stream: return what was held back, masked."""
        out, self._buffer = self._buffer, b""
        return self._pattern.sub(MASK, out) if self._pattern is not None else out


def _pump(source: BinaryIO, sink: BinaryIO, secrets: Sequence[bytes]) -> None:
    mask = MaskingFilter(secrets)
    while True:
        chunk = source.read1(65536) if hasattr(source, "read1") else source.read(65536)
        if not chunk:
            break
        out = mask.feed(chunk)
        if out:
            sink.write(out)
            sink.flush()
    rest = mask.flush()
    if rest:
        sink.write(rest)
        sink.flush()


def run(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    secrets: Sequence[bytes],
    masking: bool = True,
) -> int:
    """Run ``argv`` with ``env``; returns its exit code (128 + N if killed by signal N).

    With masking, stdout and stderr are piped through :class:`MaskingFilter`; stdin
    is inherited. SIGINT, SIGTERM and SIGHUP received here are forwarded to the child.

    :raises VaultUnavailable: when the program cannot be started.
    """
    if not argv:
        raise InvalidInput("no command to run (put it after --)")
    pipe = subprocess.PIPE if masking else None
    try:
        child = subprocess.Popen(list(argv), env=dict(env), stdout=pipe, stderr=pipe)  # noqa: S603
    except OSError as exc:
        raise VaultUnavailable(f"cannot run {argv[0]}: {exc.strerror}") from None

    previous = {}

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, forward)
    try:
        pumps = []
        if masking:
            assert child.stdout is not None and child.stderr is not None
            for source, sink in (
                (child.stdout, sys.stdout.buffer),
                (child.stderr, sys.stderr.buffer),
            ):
                t = threading.Thread(target=_pump, args=(source, sink, secrets), daemon=True)
                t.start()
                pumps.append(t)
        code = child.wait()
        for t in pumps:
            t.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


__all__ = [
    "PRESETS",
    "MaskingFilter",
    "build_environment",
    "parse_mapping",
    "run",
    "secret_values",
]
