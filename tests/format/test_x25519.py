"""X25519 keys without cryptography's OpenSSL backend module (vault.format.x25519)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from vault.format import x25519

# RFC 7748 section 6.1: Alice's and Bob's keys and their shared secret.
ALICE_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_PRIVATE = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PUBLIC = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")


def test_rfc_7748_vectors() -> None:
    alice, bob = x25519.private_key(ALICE_PRIVATE), x25519.private_key(BOB_PRIVATE)
    assert alice.public_key().public_bytes_raw() == ALICE_PUBLIC
    assert bob.public_key().public_bytes_raw() == BOB_PUBLIC
    assert alice.exchange(x25519.public_key(BOB_PUBLIC)) == SHARED
    assert bob.exchange(x25519.public_key(ALICE_PUBLIC)) == SHARED


def test_keys_are_cryptographys_own_and_agree_with_its_constructors() -> None:
    ours, theirs = x25519.generate(), X25519PrivateKey.generate()
    assert isinstance(ours, X25519PrivateKey)
    public = x25519.public_key(theirs.public_key().public_bytes_raw())
    assert isinstance(public, X25519PublicKey)
    assert ours.exchange(public) == theirs.exchange(ours.public_key())
    again = X25519PrivateKey.from_private_bytes(ours.private_bytes_raw())
    assert x25519.private_key(ours.private_bytes_raw()).exchange(public) == again.exchange(public)


def test_fresh_keys_differ() -> None:
    assert x25519.generate().private_bytes_raw() != x25519.generate().private_bytes_raw()


@given(st.binary(max_size=64))
def test_a_wrong_length_is_refused_as_by_cryptography(raw: bytes) -> None:
    for ours, theirs in (
        (x25519.private_key, X25519PrivateKey.from_private_bytes),
        (x25519.public_key, X25519PublicKey.from_public_bytes),
    ):
        try:
            expected = theirs(raw)
        except ValueError:
            with pytest.raises(ValueError):
                ours(raw)
        else:
            assert len(raw) == 32
            assert type(ours(raw)) is type(expected)


def test_the_binding_is_used_only_when_whole_and_outside_fips_mode() -> None:
    binding = ModuleType("x25519")
    for name in ("generate_key", "from_private_bytes", "from_public_bytes"):
        setattr(binding, name, lambda *args: None)
    assert x25519.native_binding(SimpleNamespace(is_fips_enabled=lambda: False, x25519=binding))
    fips = SimpleNamespace(is_fips_enabled=lambda: True, x25519=binding)
    assert x25519.native_binding(fips) is None
    assert x25519.native_binding(SimpleNamespace(is_fips_enabled=lambda: False)) is None
    assert x25519.native_binding(SimpleNamespace(x25519=binding)) is None
    moved = ModuleType("x25519")
    moved.generate_key = binding.generate_key  # type: ignore[attr-defined]
    partial = SimpleNamespace(is_fips_enabled=lambda: False, x25519=moved)
    assert x25519.native_binding(partial) is None


def test_a_wrap_and_its_unwrap_load_no_openssl_backend_module() -> None:
    # What the module is for: on this cryptography, the whole path of a grant's wrap
    # and a bot's unwrap leaves the backend module unloaded, in a new process.
    code = (
        "import sys\n"
        "from vault.format import aead, identities, keywrap\n"
        "root = identities.RootIdentity.generate()\n"
        "dek = aead.random_key()\n"
        "wrapped = keywrap.wrap_for_recipient(dek, root.encryption_public, b'ad')\n"
        "assert keywrap.unwrap_from_recipient(wrapped, root.decryption_key, b'ad') == dek\n"
        "keys = identities.derive_client_keys(bytes(32))\n"
        "print(sorted(m for m in sys.modules if m.startswith('cryptography.hazmat.backends')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


_AS_IN_FIPS_MODE = (
    "import sys\n"
    "from cryptography.hazmat.bindings._rust import openssl\n"
    "openssl.is_fips_enabled = lambda: True  # what OpenSSL in FIPS mode answers\n"
)


def test_in_fips_mode_the_public_constructors_decide_and_refuse_in_one_line(
    tmp_path: Path,
) -> None:
    # OpenSSL in FIPS mode offers no X25519: cryptography's constructors refuse it, and
    # so does every command, with one line and the exit code of an unsupported format.
    code = _AS_IN_FIPS_MODE + (
        "from vault.format import x25519\n"
        "from vault.errors import UnsupportedFormat\n"
        "for make, args in ((x25519.generate, ()), (x25519.private_key, (bytes(32),)),\n"
        "                   (x25519.public_key, (bytes(32),))):\n"
        "    try:\n"
        "        make(*args)\n"
        "    except UnsupportedFormat as exc:\n"
        "        assert str(exc) == x25519.NO_X25519, exc\n"
        "    else:\n"
        "        raise AssertionError(make)\n"
        "sys.argv = ['exvault', 'init', '--vault', sys.argv[1], '--insecure-test-kdf']\n"
        "from vault.cli.main import main\n"
        "main()\n"
    )
    passphrase = "plum tractor velvet orbit canyon 42\n"
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "v.db")],
        input=passphrase * 2,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 11, done.stderr
    assert done.stderr.splitlines()[-1] == f"exvault: error: {x25519.NO_X25519}"
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "v.db").exists()
