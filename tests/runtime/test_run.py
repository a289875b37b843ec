"""vault/runtime/run.py: output masking, --env mappings, the child's environment, and run()."""

from __future__ import annotations

import itertools
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vault.errors import InvalidInput, VaultUnavailable
from vault.runtime.credential import Credential
from vault.runtime.run import (
    MASK,
    PRESETS,
    RUN,
    MaskingFilter,
    build_environment,
    parse_mapping,
    preset_variables,
    run,
    secret_values,
)
from vault.secret import Secret

API_KEY = "AKf3c9e1b27d4a5088b6"
SECRET = "sk9Zq2Lw7Rt4Yp1Vn8Xc3Bm6"
PASSPHRASE = "Pass-phrase-77"
UID = "90817263"


def cred(name: str = "binance-main", exchange: str = "binance", **fields: str) -> Credential:
    return Credential(
        name=name,
        exchange=exchange,
        permissions=("read", "trade"),
        ips=(),
        version=1,
        stage="current",
        issued_on=date(2024, 1, 1),
        expires_on=None,
        fields={k: Secret(v) for k, v in fields.items()},
    )


def filtered(secrets: list[bytes], chunks: list[bytes]) -> bytes:
    mask = MaskingFilter(secrets)
    return b"".join(mask.feed(c) for c in chunks) + mask.flush()


def cut(text: bytes, positions: list[int]) -> list[bytes]:
    bounds = [0, *sorted(set(positions)), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def masked_whole(secrets: list[bytes], text: bytes) -> bytes:
    """The reference, over the whole text at once and by brute force: every occurrence
    of a secret shorter than RUN, and of every RUN-byte window of a longer one, found
    at every position (overlapping ones too); each stretch of overlapping occurrences
    becomes one mask."""
    patterns = {s for s in secrets if 0 < len(s) < RUN} | {
        s[i : i + RUN] for s in secrets for i in range(len(s) - RUN + 1)
    }
    spans = sorted(
        (i, i + len(p))
        for p in patterns
        for i in range(len(text) - len(p) + 1)
        if text.startswith(p, i)
    )
    out, pos, stretch = bytearray(), 0, None
    for start, end in spans:
        if stretch is not None and start < stretch[1]:
            stretch = (stretch[0], max(stretch[1], end))
            continue
        if stretch is not None:
            out += text[pos : stretch[0]] + MASK
            pos = stretch[1]
        stretch = (start, end)
    if stretch is not None:
        out += text[pos : stretch[0]] + MASK
        pos = stretch[1]
    return bytes(out + text[pos:])


# ------------------------------------------------------------------ MaskingFilter


# Secrets and text over a small alphabet, so that secrets overlap, repeat, contain one
# another and share prefixes often. The "*" variant adds the mask's own character.
def _pieces(alphabet: bytes) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=1, max_size=8).map(
        lambda b: bytes(alphabet[x % len(alphabet)] for x in b)
    )


@st.composite
def streams(draw: st.DrawFn, alphabet: bytes) -> tuple[list[bytes], bytes, list[bytes]]:
    piece = _pieces(alphabet)
    secrets = draw(st.lists(piece, min_size=1, max_size=4, unique=True))
    pieces = draw(
        st.lists(st.one_of(st.sampled_from(secrets), piece, st.binary(max_size=4)), max_size=8)
    )
    text = b"".join(pieces)
    positions = draw(st.lists(st.integers(0, len(text)), max_size=6))
    return secrets, text, cut(text, positions)


@settings(max_examples=100, deadline=None)
@given(streams(b"abc\n*"))
def test_masking_filter_equals_whole_text_substitution(
    case: tuple[list[bytes], bytes, list[bytes]],
) -> None:
    secrets, text, chunks = case
    assert filtered(secrets, chunks) == masked_whole(secrets, text)


@settings(max_examples=100, deadline=None)
@given(streams(b"abc\n"))
def test_masking_filter_never_lets_a_secret_through(
    case: tuple[list[bytes], bytes, list[bytes]],
) -> None:
    # (A secret made of "*" could be spelled by masks themselves: not this alphabet.)
    secrets, _text, chunks = case
    out = filtered(secrets, chunks)
    for secret in secrets:
        assert secret not in out


@settings(max_examples=100, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=40).filter(lambda s: b"*" not in s),
    before=st.binary(max_size=20),
    after=st.binary(max_size=20),
    data=st.data(),
)
def test_masking_filter_any_bytes_split_anywhere(
    secret: bytes, before: bytes, after: bytes, data: st.DataObject
) -> None:
    text = before + secret + after
    positions = data.draw(st.lists(st.integers(0, len(text)), max_size=5))
    out = filtered([secret], cut(text, positions))
    assert out == masked_whole([secret], text)
    assert secret not in out


def test_masking_filter_byte_by_byte() -> None:
    secret = SECRET.encode()
    text = b"secret=" + secret + b"\nagain " + secret + secret + b" end"
    out = filtered([secret], [bytes([b]) for b in text])
    assert out == b"secret=" + MASK + b"\nagain " + MASK + MASK + b" end"


def test_prompt_without_newline_is_released_at_once() -> None:
    mask = MaskingFilter([SECRET.encode()])
    assert mask.feed(b"Enter 2FA code: ") == b"Enter 2FA code: "
    assert mask.flush() == b""


def test_tail_that_may_start_a_secret_is_held_until_decided() -> None:
    mask = MaskingFilter([SECRET.encode()])
    assert mask.feed(b"key=" + SECRET[:5].encode()) == b"key="
    assert mask.feed(b"X") == SECRET[:5].encode() + b"X"
    mask = MaskingFilter([SECRET.encode()])
    assert mask.feed(b"key=" + SECRET[:5].encode()) == b"key="
    assert mask.feed(SECRET[5:].encode() + b"\n") == MASK + b"\n"
    assert mask.flush() == b""


def test_held_tail_is_flushed_at_end_of_stream() -> None:
    mask = MaskingFilter([SECRET.encode()])
    assert mask.feed(b"id=" + SECRET[:5].encode()) == b"id="
    assert mask.flush() == SECRET[:5].encode()  # 5 characters: not a run of RUN


def test_held_run_of_a_secret_is_masked_at_end_of_stream() -> None:
    mask = MaskingFilter([SECRET.encode()])
    assert mask.feed(SECRET[:-1].encode()) == b""
    assert mask.flush() == MASK


def test_masking_filter_without_secrets_passes_everything() -> None:
    mask = MaskingFilter([])
    assert mask.feed(b"abc") == b"abc"
    assert mask.flush() == b""
    assert filtered([b""], [b"abc"]) == b"abc"


# Regressions: each of these failed before 65f48b8 (a shorter secret ending a read was
# committed to although a longer one could still complete; the held tail was kept
# masked, so masks were matched again; the secrets' order mattered).


def test_secret_prefix_of_a_longer_secret_split_across_reads() -> None:
    secrets = [b"ab-secret-cd", b"ab-secret"]  # longest first, as secret_values gives them
    assert filtered(secrets, [b"ab-secret", b"-cd\n"]) == MASK + b"\n"


def test_pem_split_across_reads_leaks_no_line() -> None:
    pem = (
        "-----BEGIN PRIVATE KEY-----\n"
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
        "Zx9Qb3Q=\n"
        "-----END PRIVATE KEY-----"
    )
    secrets = secret_values([cred(api_key=API_KEY, secret=pem)])
    text = (pem + "\n").encode()
    out = filtered(secrets, [text[:40], text[40:]])
    assert b"Zx9Qb3Q=" not in out
    # The newline goes too: "TE KEY-----\n" is also a run of the secret (line 1).
    assert out == MASK


def test_secret_inside_a_longer_secret_split_across_reads() -> None:
    assert filtered([b"x-ab-y", b"ab"], [b"x-ab", b"-y z"]) == MASK + b" z"


def test_masking_filter_order_of_secrets_does_not_matter() -> None:
    assert filtered([b"ab-secret", b"ab-secret-cd"], [b"ab-secret-cd\n"]) == MASK + b"\n"


def test_mask_is_not_matched_again() -> None:
    secrets = [b"****ab", b"xyzw"]
    assert filtered(secrets, [b"xyzw", b"ab"]) == masked_whole(secrets, b"xyzwab")


# Regressions of the masking rule: each of these failed before the rule masked the
# union of all occurrences and every run of RUN characters of a secret.


def test_overlapping_secrets_are_masked_together() -> None:
    # Matching one secret, then going on after it, left the rest of the other visible.
    secrets = [b"Pass-77", b"77-word"]
    assert filtered(secrets, [b"pw: Pass-77-word\n"]) == b"pw: " + MASK + b"\n"


def test_half_a_secret_is_masked() -> None:
    half = SECRET[: len(SECRET) // 2].encode()
    assert len(half) == RUN
    out = filtered([SECRET.encode()], [b"secret=" + half + b"...\n"])
    assert out == b"secret=" + MASK + b"...\n"


def test_run_of_a_secret_in_the_middle_is_masked() -> None:
    run_of = SECRET[3:19].encode()
    assert filtered([SECRET.encode()], [b"<" + run_of + b">"]) == b"<" + MASK + b">"


def test_run_of_a_secret_across_reads_is_masked() -> None:
    text = b"key " + SECRET[5:20].encode() + b" end\n"
    for i, j in itertools.combinations(range(len(text) + 1), 2):
        assert filtered([SECRET.encode()], [text[:i], text[i:j], text[j:]]) == (
            b"key " + MASK + b" end\n"
        )


def test_secret_printed_re_wrapped_is_masked() -> None:
    secret = (API_KEY + SECRET).encode()
    wrapped = secret[:20] + b"\n" + secret[20:]
    assert filtered([secret], [wrapped]) == MASK + b"\n" + MASK


def test_shorter_runs_of_a_secret_pass() -> None:
    text = SECRET[: RUN - 1].encode() + b" " + SECRET[-(RUN - 1) :].encode() + b"\n"
    assert filtered([SECRET.encode()], [text]) == text


_ALPHABET = b"abcdefgh01 \n"  # small, so that runs recur by chance; no "*"


@st.composite
def secrets_and_output(draw: st.DrawFn) -> tuple[list[bytes], bytes, list[bytes]]:
    text = st.binary(max_size=30).map(lambda b: bytes(_ALPHABET[x % len(_ALPHABET)] for x in b))
    secrets = draw(
        st.lists(
            st.binary(min_size=4, max_size=70).map(
                lambda b: bytes(_ALPHABET[x % len(_ALPHABET)] for x in b)
            ),
            min_size=1,
            max_size=5,
        )
    )
    pieces = []
    for _ in range(draw(st.integers(0, 8))):
        secret = draw(st.sampled_from(secrets))
        start = draw(st.integers(0, len(secret) - 1))
        end = draw(st.integers(start + 1, len(secret)))
        pieces += [draw(text), secret[start:end]]
    output = b"".join(pieces) + draw(text)
    positions = draw(st.lists(st.integers(0, len(output)), max_size=8))
    return secrets, output, cut(output, positions)


def _runs(secrets: list[bytes]) -> set[bytes]:
    return {s for s in secrets if len(s) < RUN} | {
        s[i : i + RUN] for s in secrets for i in range(len(s) - RUN + 1)
    }


@settings(deadline=None)  # 100 examples; 1,000 with --long (tests/conftest.py)
@given(secrets_and_output())
def test_no_run_of_a_secret_survives_masking(
    case: tuple[list[bytes], bytes, list[bytes]],
) -> None:
    secrets, output, chunks = case
    out = filtered(secrets, chunks)
    for run_of in _runs(secrets):
        assert run_of not in out
    assert out == masked_whole(secrets, output)  # however the output was cut


@settings(deadline=None)  # 100 examples; 1,000 with --long (tests/conftest.py)
@given(secrets_and_output())
def test_output_without_a_run_of_a_secret_is_unchanged(
    case: tuple[list[bytes], bytes, list[bytes]],
) -> None:
    secrets, output, chunks = case
    assume(not any(run_of in output for run_of in _runs(secrets)))
    assert filtered(secrets, chunks) == output


def test_secret_values_longest_first_with_lines_of_multiline_values() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKr5PQ\n-----END PRIVATE KEY-----"
    values = secret_values([cred(api_key=API_KEY, secret=pem, uid="42")])
    assert values[0] == pem.encode()
    assert b"MC4CAQAwBQYDK2VwBCIEIKr5PQ" in values
    assert b"-----BEGIN PRIVATE KEY-----" in values
    assert API_KEY.encode() in values
    assert b"42" not in values  # too short to mask without masking everything
    assert [len(v) for v in values] == sorted((len(v) for v in values), reverse=True)


# ------------------------------------------------------------------ parse_mapping


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("KEY=api_key", ("KEY", None, "api_key")),
        ("_X1=secret", ("_X1", None, "secret")),
        ("B_KEY=binance-main.api_key", ("B_KEY", "binance-main", "api_key")),
        ("K=okx.sub.1.passphrase", ("K", "okx.sub.1", "passphrase")),
    ],
)
def test_parse_mapping_good(text: str, expected: tuple[str, str | None, str]) -> None:
    assert parse_mapping(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "KEY",
        "=api_key",
        "KEY=",
        "1KEY=api_key",
        "MY-KEY=api_key",
        "A B=x",
        "",
        "KEY=binance-main.",
        "KEY=.api_key",
    ],
)
def test_parse_mapping_bad(text: str) -> None:
    with pytest.raises(InvalidInput, match="NAME=field"):
        parse_mapping(text)


# ------------------------------------------------------------------ build_environment

FULL = cred("kucoin-sub1", "kucoin", api_key=API_KEY, secret=SECRET, passphrase=PASSPHRASE, uid=UID)
PLAIN = cred("binance-main", "binance", api_key="BK" + API_KEY, secret="BS" + SECRET)


def test_freqtrade_preset_all_fields() -> None:
    env = build_environment([FULL], preset="freqtrade", mappings=[], base={"PATH": "/bin"})
    assert env == {
        "PATH": "/bin",
        "FREQTRADE__EXCHANGE__KEY": API_KEY,
        "FREQTRADE__EXCHANGE__SECRET": SECRET,
        "FREQTRADE__EXCHANGE__PASSWORD": PASSPHRASE,
        "FREQTRADE__EXCHANGE__UID": UID,
    }


def test_freqtrade_preset_leaves_out_absent_fields() -> None:
    env = build_environment([PLAIN], preset="freqtrade", mappings=[], base={})
    assert env == {
        "FREQTRADE__EXCHANGE__KEY": "BK" + API_KEY,
        "FREQTRADE__EXCHANGE__SECRET": "BS" + SECRET,
    }


def test_preset_table() -> None:
    assert set(PRESETS["freqtrade"].values()) == {"api_key", "secret", "passphrase", "uid"}
    assert "hummingbot" not in PRESETS  # it reads no exchange key from its environment


def test_ccxt_preset_names_the_exchange() -> None:
    env = build_environment([FULL], preset="ccxt", mappings=[], base={})
    assert env == {
        "KUCOIN_API_KEY": API_KEY,
        "KUCOIN_SECRET": SECRET,
        "KUCOIN_PASSWORD": PASSPHRASE,
        "KUCOIN_UID": UID,
    }
    env = build_environment([PLAIN], preset="ccxt", mappings=[], base={})
    assert env == {"BINANCE_API_KEY": "BK" + API_KEY, "BINANCE_SECRET": "BS" + SECRET}


def test_ccxt_preset_exchange_id_made_a_variable_name() -> None:
    assert preset_variables("ccxt", "gate.io")["GATE_IO_API_KEY"] == "api_key"


def test_generic_mappings() -> None:
    env = build_environment(
        [FULL],
        preset=None,
        mappings=["KUCOIN_API_KEY=api_key", "KUCOIN_SECRET=secret", "KC_PASS=passphrase"],
        base={"HOME": "/home/bot"},
    )
    assert env == {
        "HOME": "/home/bot",
        "KUCOIN_API_KEY": API_KEY,
        "KUCOIN_SECRET": SECRET,
        "KC_PASS": PASSPHRASE,
    }


def test_mapping_overrides_preset() -> None:
    env = build_environment([FULL], preset="freqtrade", mappings=["MY_KEY=uid"], base={})
    assert env["MY_KEY"] == UID
    assert env["FREQTRADE__EXCHANGE__KEY"] == API_KEY


def test_several_credentials_with_qualified_fields() -> None:
    env = build_environment(
        [FULL, PLAIN],
        preset=None,
        mappings=[
            "KC_KEY=kucoin-sub1.api_key",
            "KC_PASS=kucoin-sub1.passphrase",
            "BN_KEY=binance-main.api_key",
            "BN_SECRET=binance-main.secret",
        ],
        base={},
    )
    assert env == {
        "KC_KEY": API_KEY,
        "KC_PASS": PASSPHRASE,
        "BN_KEY": "BK" + API_KEY,
        "BN_SECRET": "BS" + SECRET,
    }


@pytest.mark.parametrize(
    ("preset", "mappings", "message"),
    [
        ("freqtrade", [], "exactly one --cred"),
        (None, ["KEY=api_key"], "exactly one --cred"),
        (None, ["KEY=kraken-x.api_key"], "not a --cred"),
    ],
)
def test_ambiguous_or_unknown_credential(
    preset: str | None, mappings: list[str], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        build_environment([FULL, PLAIN], preset=preset, mappings=mappings, base={})


def test_unknown_preset() -> None:
    with pytest.raises(InvalidInput, match="unknown preset"):
        build_environment([FULL], preset="hummingbot-x", mappings=[], base={})


def test_bad_mapping_refused() -> None:
    with pytest.raises(InvalidInput, match="bad --env"):
        build_environment([FULL], preset=None, mappings=["NOPE"], base={})


def test_missing_field_is_refused_without_its_value() -> None:
    with pytest.raises(InvalidInput) as info:
        build_environment([PLAIN], preset=None, mappings=["PASS=passphrase"], base={})
    message = str(info.value)
    assert "passphrase" in message and "PASS=passphrase" in message
    for value in ("BK" + API_KEY, "BS" + SECRET):
        assert value not in message


def test_vault_variables_removed_from_child_environment() -> None:
    base = {
        "EXVAULT_TOKEN": "exv1-sometoken",
        "EXVAULT_TOKEN_FILE": "/run/bot.token",
        "EXVAULT_PASSPHRASE_FILE": "/root/pass",
        "EXVAULT_PATH": "/var/lib/exvault/vault.db",
        "PATH": "/usr/bin",
    }
    env = build_environment([FULL], preset="freqtrade", mappings=[], base=base)
    for name in ("EXVAULT_TOKEN", "EXVAULT_TOKEN_FILE", "EXVAULT_PASSPHRASE_FILE"):
        assert name not in env
    assert env["PATH"] == "/usr/bin"
    assert env["EXVAULT_PATH"] == "/var/lib/exvault/vault.db"
    assert base["EXVAULT_TOKEN"] == "exv1-sometoken"  # the caller's mapping is untouched


# ------------------------------------------------------------------ run()

# The child prints the secret from its environment in two writes with a pause
# between them, so that the parent reads it in two pieces.
SPLIT_PRINTER = """
import os, sys, time
s = os.environ["S"]
for stream in (sys.stdout, sys.stderr):
    stream.write("value=" + s[:7])
    stream.flush()
time.sleep(0.15)
for stream in (sys.stdout, sys.stderr):
    stream.write(s[7:] + " done\\n")
    stream.flush()
"""


def child_env(**extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", **extra}


def test_run_masks_a_secret_split_across_writes(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    code = run(
        [sys.executable, "-c", SPLIT_PRINTER],
        child_env(S=SECRET),
        secrets=[SECRET.encode()],
    )
    out, err = capfdbinary.readouterr()
    assert code == 0
    assert out == b"value=" + MASK + b" done\n"
    assert err == b"value=" + MASK + b" done\n"
    assert SECRET.encode() not in out + err


def test_run_without_masking_shows_the_value(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    code = run(
        [sys.executable, "-c", SPLIT_PRINTER],
        child_env(S=SECRET),
        secrets=[SECRET.encode()],
        masking=False,
    )
    out, err = capfdbinary.readouterr()
    assert code == 0
    assert out == err == b"value=" + SECRET.encode() + b" done\n"


def test_run_masks_every_credential_value(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    env = build_environment([FULL], preset="freqtrade", mappings=[], base=child_env())
    program = (
        "import os\n"
        "for k in sorted(os.environ):\n"
        "    if k.startswith('FREQTRADE__'): print(k, os.environ[k])\n"
    )
    code = run([sys.executable, "-c", program], env, secrets=secret_values([FULL]))
    out, _ = capfdbinary.readouterr()
    assert code == 0
    assert out.decode().splitlines() == [
        "FREQTRADE__EXCHANGE__KEY ********",
        "FREQTRADE__EXCHANGE__PASSWORD ********",
        "FREQTRADE__EXCHANGE__SECRET ********",
        "FREQTRADE__EXCHANGE__UID ********",
    ]


def test_run_passes_exit_code(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    code = run([sys.executable, "-c", "raise SystemExit(7)"], child_env(), secrets=[b"whatever1"])
    assert code == 7
    code = run(
        [sys.executable, "-c", "raise SystemExit(7)"], child_env(), secrets=[], masking=False
    )
    assert code == 7


def test_run_child_killed_by_signal(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    program = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    assert run([sys.executable, "-c", program], child_env(), secrets=[b"whatever1"]) == 128 + 15


def test_run_missing_program() -> None:
    with pytest.raises(VaultUnavailable, match="cannot run"):
        run(["/nonexistent/exvault-test-program"], child_env(), secrets=[b"whatever1"])


def test_run_needs_a_command() -> None:
    with pytest.raises(InvalidInput):
        run([], child_env(), secrets=[])


class _Recorder:
    """Stands in for sys.stdout.buffer: creates ``marker`` once ``expected`` was written."""

    def __init__(self, marker: Path, expected: bytes) -> None:
        self.marker = marker
        self.expected = expected
        self.data = b""

    def write(self, data: bytes) -> int:
        self.data += data
        if self.expected in self.data:
            self.marker.touch()
        return len(data)

    def flush(self) -> None:
        pass


class _Stream:
    def __init__(self, buffer: _Recorder) -> None:
        self.buffer = buffer

    def flush(self) -> None:
        pass


def test_run_shows_a_prompt_while_the_child_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child prints a prompt without a newline and waits until the parent has
    written it out: masking must not hold it back."""
    marker = tmp_path / "prompt-seen"
    recorder = _Recorder(marker, b"Enter 2FA code: ")
    monkeypatch.setattr(sys, "stdout", _Stream(recorder))
    program = (
        "import os, sys, time\n"
        "sys.stdout.write('Enter 2FA code: '); sys.stdout.flush()\n"
        "deadline = time.monotonic() + 5\n"
        "while not os.path.exists(sys.argv[1]):\n"
        "    if time.monotonic() > deadline: sys.exit(3)\n"
        "    time.sleep(0.01)\n"
        "print('ok')\n"
    )
    started = time.monotonic()
    code = run([sys.executable, "-c", program, str(marker)], child_env(), secrets=[SECRET.encode()])
    assert code == 0, "the prompt was held back until the child gave up"
    assert recorder.data == b"Enter 2FA code: ok\n"
    assert time.monotonic() - started < 4


def test_run_relays_a_line_of_a_python_child_before_it_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Python child's stdout is a pipe, which Python block-buffers: its print()
    must still reach exvault's stdout while it runs (here: it waits for that)."""
    marker = tmp_path / "line-seen"
    recorder = _Recorder(marker, b"first line\n")
    monkeypatch.setattr(sys, "stdout", _Stream(recorder))
    program = (
        "import os, sys, time\n"
        "print('first line')\n"
        "deadline = time.monotonic() + 5\n"
        "while not os.path.exists(sys.argv[1]):\n"
        "    if time.monotonic() > deadline: sys.exit(3)\n"
        "    time.sleep(0.01)\n"
        "print('second line')\n"
    )
    code = run(
        [sys.executable, "-c", program, str(marker)],
        child_env(),
        secrets=[SECRET.encode()],
        terminal=False,
    )
    assert code == 0, "the line arrived only when the child exited"
    assert recorder.data == b"first line\nsecond line\n"


def test_run_keeps_the_childs_own_pythonunbuffered(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    program = "import os; print(os.environ.get('PYTHONUNBUFFERED'))"
    run([sys.executable, "-c", program], child_env(), secrets=[b"whatever1"], terminal=False)
    run(
        [sys.executable, "-c", program],
        child_env(PYTHONUNBUFFERED="x"),
        secrets=[b"whatever1"],
        terminal=False,
    )
    out, _ = capfdbinary.readouterr()
    assert out == b"1\nx\n"


TTY_PRINTER = """
import os, sys
print("isatty", os.isatty(1), os.isatty(2))
print("value=" + os.environ["S"], file=sys.stderr)
"""


def test_run_on_a_terminal_gives_the_child_a_pseudo_terminal_and_masks_it(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    """terminal=True: the child's stdout is a pseudo-terminal, read and masked; its
    stderr (exvault's is not a terminal here) stays a masked pipe."""
    code = run(
        [sys.executable, "-c", TTY_PRINTER],
        child_env(S=SECRET),
        secrets=[SECRET.encode()],
        terminal=True,
    )
    out, err = capfdbinary.readouterr()
    assert code == 0
    assert out == b"isatty True False\r\n"  # a terminal ends lines with CR LF
    assert err == b"value=" + MASK + b"\n"
