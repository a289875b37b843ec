"""Running a program with credentials in its environment (``exvault run``).

The secrets go to the child through environment variables only (never argv). The
child's stdout and stderr are passed through a filter that replaces every secret
value, and every run of 12 characters of one, with ``********`` (as ``op run`` does
for whole values), unless masking is turned off. When exvault's own stdout is a
terminal, the child's stdout (and its stderr, when exvault's stderr is a terminal
too) is a pseudo-terminal that exvault reads and masks, so colours and full-screen
programs work; otherwise it is a pipe, relayed chunk by chunk as it arrives. The
child's exit code is passed through; a child killed by signal N gives 128 + N.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

from vault.errors import InvalidInput, VaultUnavailable, quoted
from vault.runtime.credential import Credential

MASK = b"********"

# Variable name -> field, per program. ``{EXCHANGE}`` in a name stands for the
# credential's exchange id in capitals (``binance`` -> ``BINANCE_API_KEY``).
PRESETS: dict[str, dict[str, str]] = {
    # freqtrade reads FREQTRADE__SECTION__KEY variables over its config file.
    "freqtrade": {
        "FREQTRADE__EXCHANGE__KEY": "api_key",
        "FREQTRADE__EXCHANGE__SECRET": "secret",
        "FREQTRADE__EXCHANGE__PASSWORD": "passphrase",
        "FREQTRADE__EXCHANGE__UID": "uid",
    },
    # ccxt reads no variables itself; a plain script passes them to the exchange's
    # constructor, by the usual convention the exchange id plus ccxt's field name:
    # ccxt.binance({"apiKey": os.environ["BINANCE_API_KEY"], ...}).
    "ccxt": {
        "{EXCHANGE}_API_KEY": "api_key",
        "{EXCHANGE}_SECRET": "secret",
        "{EXCHANGE}_PASSWORD": "passphrase",
        "{EXCHANGE}_UID": "uid",
        "{EXCHANGE}_PRIVATE_KEY": "private_key",
    },
}
# hummingbot has no preset: it reads no exchange key from its environment (the keys
# live in its own conf/connectors files, encrypted with its password), only its own
# password (CONFIG_PASSWORD), which is not an exchange credential.


def preset_variables(preset: str, exchange: str) -> dict[str, str]:
    """The variables of ``preset`` for a credential of ``exchange``: name -> field.

    :raises InvalidInput: for an unknown preset.
    """
    if preset not in PRESETS:
        raise InvalidInput(f"unknown preset {quoted(preset)} (known: {', '.join(sorted(PRESETS))})")
    prefix = re.sub(r"[^A-Z0-9]", "_", exchange.upper())
    return {name.replace("{EXCHANGE}", prefix): f for name, f in PRESETS[preset].items()}


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
        preset_variables(preset, "")  # an unknown preset is refused before anything else
        cred = single(f"--preset {preset}")
        for variable, field in preset_variables(preset, cred.exchange).items():
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


# A run of this many consecutive characters of a secret is masked wherever it appears:
# half a secret printed is a leak, and so is a secret printed cut or re-wrapped.
RUN = 12
assert struct.calcsize("I") == 4  # a C unsigned int, the masking prefilter's 4-byte blocks


def mask_patterns(secrets: Sequence[bytes]) -> set[bytes]:
    """The byte strings whose every occurrence is masked: each RUN-byte window of a
    secret of RUN bytes or more, and each shorter secret whole."""
    patterns: set[bytes] = set()
    for secret in secrets:
        if len(secret) >= RUN:
            patterns.update(secret[i : i + RUN] for i in range(len(secret) - RUN + 1))
        elif secret:
            patterns.add(secret)
    return patterns


@dataclass
class _Trie:
    children: dict[int, _Trie] = field(default_factory=dict)
    end: bool = False


def _trie_regex(patterns: Iterable[bytes]) -> bytes:
    """A regular expression matching any of ``patterns``, shaped as a trie.

    A flat alternation of a few hundred literals is tried one literal after the other
    at every position (about 1 MB/s); the trie tries one branch per distinct next
    byte. Where a pattern ends and a longer one goes on, the longer is tried first,
    so a match is the longest pattern at its position.
    """
    root = _Trie()
    for pattern in patterns:
        node = root
        for byte in pattern:
            node = node.children.setdefault(byte, _Trie())
        node.end = True

    def render(node: _Trie) -> bytes:
        branches = [
            re.escape(bytes([byte])) + render(child)
            for byte, child in sorted(node.children.items())
        ]
        if not branches:
            return b""
        body = branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"
        return b"(?:" + body + b")?" if node.end else body

    return render(root)


class MaskingFilter:
    """Masks secrets in a stream, even when one is split across reads.

    Every occurrence of a pattern of :func:`mask_patterns` is masked, overlapping ones
    included: each stretch of output covered by overlapping occurrences becomes one
    ``********``. So a secret, any RUN consecutive bytes of one, and secrets that
    overlap one another are masked, and text holding no such run passes unchanged.

    Output is held back only from the first byte that could still begin an
    occurrence (at most RUN - 1 bytes), or from the start of a masked stretch that the
    next bytes could still extend; so the result does not depend on how the stream
    is cut into reads, and a prompt printed without a newline shows at once, but for
    a tail that could begin a run of a secret.
    """

    def __init__(self, secrets: Sequence[bytes]) -> None:
        patterns = mask_patterns(secrets)
        self._pattern = re.compile(_trie_regex(patterns)) if patterns else None
        # A quick test that a buffer holds no occurrence at all, the usual case: any
        # RUN bytes of a buffer contain one of its 4-byte blocks cut at multiples of 4,
        # so a window occurs only where such a block is 4 bytes of a window. Blocks
        # are compared as native 32-bit integers, which a memoryview gives without a
        # Python-level loop; shorter secrets are looked for whole.
        self._grams = {
            int.from_bytes(p[i : i + 4], sys.byteorder)
            for p in patterns
            if len(p) == RUN
            for i in range(RUN - 4 + 1)
        }
        self._short = [p for p in patterns if len(p) < RUN]
        # Every proper prefix of a pattern: a tail of the buffer that is one may
        # still grow into an occurrence.
        self._prefixes = {p[:i] for p in patterns for i in range(1, len(p))}
        self._longest = max((len(p) for p in patterns), default=0)
        self._buffer = b""

    def _stretches(self, data: bytes) -> list[tuple[int, int]]:
        """The masked stretches of ``data``: unions of overlapping occurrences."""
        assert self._pattern is not None
        stretches: list[tuple[int, int]] = []
        blocks = memoryview(data)[: len(data) - len(data) % 4].cast("I")
        if self._grams.isdisjoint(blocks) and not any(p in data for p in self._short):
            return stretches
        search, match = self._pattern.search, self._pattern.match
        pos = 0
        while (found := search(data, pos)) is not None:
            start, end = found.span()
            # An occurrence starting inside may reach further; only one starting in
            # the last bytes can (none is longer than self._longest). The furthest
            # start is tried first: along a printed secret, one try per 11 bytes.
            extended = True
            while extended:
                extended = False
                for inner in range(end - 1, max(start, end - self._longest), -1):
                    more = match(data, inner)
                    if more is not None and more.end() > end:
                        end, extended = more.end(), True
                        break
            stretches.append((start, end))
            pos = end
        return stretches

    def _pending_start(self, data: bytes) -> int:
        """The first index whose tail is a proper prefix of a pattern (len(data) if none)."""
        for i in range(max(0, len(data) - self._longest + 1), len(data)):
            if data[i:] in self._prefixes:
                return i
        return len(data)

    @staticmethod
    def _masked(data: bytes, stretches: Sequence[tuple[int, int]]) -> bytes:
        out, pos = bytearray(), 0
        for start, end in stretches:
            out += data[pos:start] + MASK
            pos = end
        out += data[pos:]
        return bytes(out)

    def feed(self, data: bytes) -> bytes:
        """Add data; return what can be written out now."""
        if self._pattern is None:
            return data
        buf = self._buffer + data
        stretches = self._stretches(buf)
        cut = self._pending_start(buf)
        done = []
        for start, end in stretches:
            if end > cut:  # the next bytes may extend it: held whole, raw
                cut = min(cut, start)
                break
            done.append((start, end))
        self._buffer = buf[cut:]  # kept raw: it is masked when it is released
        return self._masked(buf[:cut], done)

    def flush(self) -> bytes:
        """End of stream: return what was held back, masked."""
        out, self._buffer = self._buffer, b""
        if self._pattern is None:
            return out
        return self._masked(out, self._stretches(out))


def _pump(read: Callable[[], bytes], sink: BinaryIO, secrets: Sequence[bytes]) -> None:
    """Copy what ``read`` returns to ``sink``, masked, as soon as it arrives, until b""."""
    mask = MaskingFilter(secrets)
    while chunk := read():
        out = mask.feed(chunk)
        if out:
            sink.write(out)
            sink.flush()
    rest = mask.flush()
    if rest:
        sink.write(rest)
        sink.flush()


def _reader(fd: int) -> Callable[[], bytes]:
    """Reads of what is available on ``fd`` (never waiting for more); b"" at the end.

    A pseudo-terminal's master reports the end, once every copy of its other side is
    closed, as EIO on Linux, not as an empty read.
    """

    def read() -> bytes:
        try:
            return os.read(fd, 65536)
        except OSError as exc:
            if exc.errno == errno.EIO:
                return b""
            raise

    return read


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (False for a stream without a file descriptor)."""
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def _copy_window_size(source: TextIO, target_fd: int) -> None:
    """Give the pseudo-terminal the size of exvault's terminal (full-screen programs read it)."""
    try:
        size = fcntl.ioctl(source.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(target_fd, termios.TIOCSWINSZ, size)
    except (AttributeError, OSError, ValueError):
        pass  # no size to copy: the program sees the pseudo-terminal's default


def run(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    secrets: Sequence[bytes],
    masking: bool = True,
    terminal: bool | None = None,
) -> int:
    """Run ``argv`` with ``env``; returns its exit code (128 + N if killed by signal N).

    With masking, the child's output is read through :class:`MaskingFilter`. When
    ``terminal`` (default: exvault's stdout is a terminal), its stdout, and its stderr
    if exvault's stderr is a terminal too, is a pseudo-terminal of the terminal's
    size; otherwise both are pipes, and ``PYTHONUNBUFFERED=1`` is set unless the
    environment sets it, so that a Python child does not hold its output back until
    it exits. Without masking, the child writes to exvault's stdout and stderr
    itself. stdin is inherited. SIGINT, SIGTERM and SIGHUP received here are
    forwarded to the child, and SIGWINCH after the pseudo-terminal is resized.

    :raises InvalidInput: when ``argv`` is empty.
    :raises VaultUnavailable: when the program cannot be started.
    """
    if not argv:
        raise InvalidInput("no command to run (put it after --)")
    if terminal is None:
        terminal = is_terminal(sys.stdout)
    child_env = dict(env)
    master = slave = -1
    stdout: int | None = None
    stderr: int | None = None
    if masking and terminal:
        master, slave = os.openpty()
        _copy_window_size(sys.stdout, slave)
        stdout = slave
        stderr = slave if is_terminal(sys.stderr) else subprocess.PIPE
    elif masking:
        stdout = stderr = subprocess.PIPE
        # A Python child whose stdout is a pipe fills an 8 KB buffer before writing.
        child_env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        child = subprocess.Popen(  # noqa: S603
            list(argv), env=child_env, stdout=stdout, stderr=stderr
        )
    except OSError as exc:
        if master >= 0:
            os.close(master)
        raise VaultUnavailable(f"cannot run {argv[0]}: {exc.strerror}") from None
    finally:
        if slave >= 0:
            os.close(slave)  # the child's copy alone keeps it open: its exit ends the reads

    previous = {}

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    def resize(signum: int, _frame: object) -> None:
        _copy_window_size(sys.stdout, master)
        child.send_signal(signum)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, forward)
        if master >= 0:
            previous[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, resize)
    try:
        streams: list[tuple[Callable[[], bytes], BinaryIO]] = []
        if master >= 0:
            streams.append((_reader(master), sys.stdout.buffer))
        elif child.stdout is not None:
            streams.append((_reader(child.stdout.fileno()), sys.stdout.buffer))
        if child.stderr is not None:
            streams.append((_reader(child.stderr.fileno()), sys.stderr.buffer))
        pumps = [
            threading.Thread(target=_pump, args=(read, sink, secrets), daemon=True)
            for read, sink in streams
        ]
        for t in pumps:
            t.start()
        code = child.wait()
        for t in pumps:
            t.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for pipe in (child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()
        if master >= 0:
            os.close(master)
    return 128 - code if code < 0 else code


__all__ = [
    "PRESETS",
    "RUN",
    "MaskingFilter",
    "build_environment",
    "is_terminal",
    "mask_patterns",
    "parse_mapping",
    "preset_variables",
    "run",
    "secret_values",
]
