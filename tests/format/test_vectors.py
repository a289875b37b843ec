"""docs/format.md section 24 stays true: its test vectors, read from the document itself,
recomputed with the format modules.

The vectors are what a second, independent reader is checked against, so any change
that moves a byte of the format fails here (a refactor of the primitives must not). The
inputs are the fixed ones of section 24.2; only the deterministic constructions are
recomputed (a wrap's ephemeral key is random, so a wrap vector is opened instead), and
Argon2id only at the cheapest parameters that section 24.12 lists (the test KDF).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from tests.conftest import PASSPHRASE, TEST_KDF
from vault.format import (
    aead,
    encoding,
    identities,
    kdf_params,
    keywrap,
    passphrase_kdf,
    records,
    recovery,
)
from vault.format.keywrap import Recipient
from vault.format.model import CredentialMetadata, encode_payload

FORMAT_MD = Path(__file__).resolve().parents[2] / "docs" / "format.md"

ROOT_X25519 = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ROOT_ED25519_SEED = bytes.fromhex(
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
)
VAULT_ID = bytes(range(16))
CREDENTIAL_ID = "0123456789abcdef0123456789abcdef"
CLIENT_ID = "0f0e0d0c0b0a09080706050403020100"
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DEK = bytes(range(0x40, 0x60))
M1 = CredentialMetadata(
    name="binance-main",
    exchange="binance",
    permissions=("read", "trade"),
    ips=("203.0.113.7", "198.51.100.0/24"),
    issued_on=date(2024, 1, 15),
    expires_on=None,
)


def section(number: str) -> str:
    """The text of ``### 24.N`` up to the next heading."""
    text = FORMAT_MD.read_text(encoding="utf-8")
    start = text.index(f"\n### {number} ")
    end = text.find("\n### ", start + 1)
    return text[start : end if end != -1 else len(text)]


def block_after(text: str, label: str) -> bytes:
    """The hex of the first fenced block after ``label``, as bytes."""
    after = text[text.index(label) :]
    body = after.split("```\n", 2)[1]
    return bytes.fromhex("".join(body.split()))


def value(text: str, label: str) -> str:
    """The word after ``label`` at the start of a line of a fenced block."""
    found = re.search(rf"^{re.escape(label)}\s+(\S+)", text, re.MULTILINE)
    assert found, f"{label} not in the section"
    return found.group(1)


def test_the_fixed_inputs_are_the_ones_this_test_uses() -> None:
    text = section("24.2")
    assert value(text, "root X25519 private") == ROOT_X25519.hex()
    assert value(text, "root Ed25519 seed") == ROOT_ED25519_SEED.hex()
    assert value(text, "vault_id") == VAULT_ID.hex()
    root = X25519PrivateKey.from_private_bytes(ROOT_X25519)
    assert value(text, "root X25519 public") == identities.x25519_public_bytes(root).hex()


def test_canonical_encoding_table() -> None:
    text = section("24.1")
    expected = dict(re.findall(r"^\| (.+?) \| `([0-9a-f]+)` \|$", text, re.MULTILINE))
    cases: dict[str, tuple[encoding.Field, ...]] = {
        "bytes `01 02`": (b"\x01\x02",),
        'text `"é"` (U+00E9)': ("é",),
        "integer 1": (1,),
        "integer -1": (-1,),
        "none": (None,),
        'text `""`': ("",),
        'bytes `"exvault-ad"`, integer 1, text `"payloads"`': (b"exvault-ad", 1, "payloads"),
    }
    assert set(expected) == set(cases)
    for label, fields in cases.items():
        assert encoding.encode_fields(*fields).hex() == expected[label], label


def test_vault_fingerprint() -> None:
    text = section("24.3")
    verify_public = bytes.fromhex(value(section("24.2"), "root Ed25519 public"))
    fingerprint = identities.fingerprint(verify_public)
    assert fingerprint.hex() == value(text, "fingerprint")
    assert identities.format_fingerprint(fingerprint) == value(text, "display")


def test_metadata_digest() -> None:
    assert M1.digest() == block_after(section("24.4"), "Digest of M1")


@pytest.mark.parametrize(
    ("label", "recipient"),
    [
        ("Wrap of that version for recipient `root`", Recipient.root()),
        ("Wrap of that version for the client of 24.13", Recipient.client(CLIENT_ID)),
    ],
    ids=["root", "client"],
)
def test_wrap_associated_data_per_recipient(label: str, recipient: Recipient) -> None:
    ad = records.wrap_ad(VAULT_ID, CREDENTIAL_ID, 1, recipient, M1.digest())
    assert ad == block_after(section("24.5"), label)


def test_payload_associated_data() -> None:
    ad = records.payload_ad(VAULT_ID, CREDENTIAL_ID, 1, M1.digest())
    assert ad == block_after(section("24.5"), "Payload of version 1")


def test_api_key_fingerprint() -> None:
    text = section("24.6")
    identity = identities.RootIdentity(
        X25519PrivateKey.from_private_bytes(ROOT_X25519),
        identities.derive_client_keys(b"\0" * 32)[1],  # the signing key plays no part
    )
    key = identity.fingerprint_key()
    assert key.hex() == value(text, "fingerprint_key")
    fingerprint = identities.keyed_fingerprint(key, "api_key", API_KEY)
    assert fingerprint.hex() == value(text, "api_key_fingerprint")


def test_payload_ciphertext_and_digest() -> None:
    text = section("24.7")
    nonce = bytes.fromhex("303132333435363738393a3b")
    ad = records.payload_ad(VAULT_ID, CREDENTIAL_ID, 1, M1.digest())
    plaintext = encode_payload({"api_key": API_KEY, "secret": SECRET})
    ciphertext = aead.seal_with_nonce(DEK, nonce, plaintext, ad)
    assert ciphertext == block_after(text, "ciphertext (with tag)")
    assert aead.unseal(DEK, nonce, ciphertext, ad) == plaintext
    assert records.payload_digest(nonce, ciphertext) == block_after(text, "payload_digest")


@pytest.mark.parametrize(
    ("number", "private", "recipient"),
    [
        ("24.9", ROOT_X25519, Recipient.root()),
        (
            "24.10",
            bytes.fromhex("fcaf62d9ecf8208be7fa94227e15e814c2637ecde82eb5bbbae40389593e3240"),
            Recipient.client(CLIENT_ID),
        ),
    ],
    ids=["root", "client"],
)
def test_recipient_wrap_opens_to_the_dek(number: str, private: bytes, recipient: Recipient) -> None:
    text = section(number)
    wrapped = keywrap.WrappedKey(
        bytes.fromhex(value(text, "ephemeral_public")), block_after(text, "body (48 bytes)")
    )
    ad = records.wrap_ad(VAULT_ID, CREDENTIAL_ID, 1, recipient, M1.digest())
    key = X25519PrivateKey.from_private_bytes(private)
    assert keywrap.unwrap_from_recipient(wrapped, key, ad) == DEK


def test_recovery_key() -> None:
    text = section("24.11")
    key = bytes.fromhex(value(text, "key"))
    assert recovery.format_recovery_key(key) == value(text, "text")
    assert recovery.parse_recovery_key(value(text, "text")) == key
    salt = bytes(range(0x20, 0x30))
    assert recovery.derive_recovery_kek(key, salt).hex() == value(text, "KEK")


def test_passphrase_kek_at_the_test_parameters() -> None:
    text = section("24.12")
    rows = re.findall(r"^\| (.+?) \| `([0-9a-f]+)` \| (.+?) \| `([0-9a-f]+)` \|$", text, re.M)
    assert len(rows) == 4
    for _, utf8, _, _ in rows:
        assert any(
            passphrase_kdf.normalize_passphrase(p).hex() == utf8
            for p in (PASSPHRASE, "Am\u00e9lie", "Ame\u0301lie")
        )
    (cheap,) = [row for row in rows if row[2] == "t=1 m=64 p=1"]
    assert kdf_params.KdfParams(1, 64, 1) == TEST_KDF
    salt = bytes(range(0x10, 0x20))
    kek = passphrase_kdf.derive_passphrase_kek(PASSPHRASE, salt, TEST_KDF)
    assert cheap[0] == f"`{PASSPHRASE}`" and kek.hex() == cheap[3]


def test_client_keys() -> None:
    text = section("24.13")
    decryption, signing = identities.derive_client_keys(bytes(range(0x40, 0x60)))
    assert identities.x25519_private_bytes(decryption).hex() == value(text, "x25519 private")
    assert identities.x25519_public_bytes(decryption).hex() == value(text, "x25519 public")
    assert identities.ed25519_public_bytes(signing).hex() == value(text, "ed25519 public")
