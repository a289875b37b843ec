"""Opening a vault and its keyslots: passphrase, recovery key, KDF parameters, header."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import (
    BINANCE_SECRET,
    KUCOIN_PASSPHRASE,
    PASSPHRASE,
    TEST_KDF,
    db_exec,
)
from vault.db import keyslots
from vault.db.inventory import Inventory
from vault.errors import (
    IntegrityError,
    InvalidInput,
    UnsupportedFormat,
    VaultUnavailable,
)
from vault.format import encoding, kdf_params, records, recovery
from vault.format.identities import RootIdentity
from vault.format.kdf_params import KdfParams
from vault.ops.verification import verify
from vault.owner.admin import AdminVault
from vault.owner.passphrase import signed_header

BACKENDS = ("sqlite", "postgresql")


def test_wrong_passphrase(stocked: AdminVault, vault_location: str) -> None:
    with pytest.raises(IntegrityError, match="wrong passphrase or damaged vault"):
        AdminVault.unlock(vault_location, "not the passphrase")


def test_wrong_passphrase_costs_the_same_kdf_work(
    stocked: AdminVault, vault_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argon2.low_level  # vault.format.crypto imports it when a KDF runs

    calls: list[tuple[int, int, int]] = []
    real = argon2.low_level.hash_secret_raw

    def spy(**kw: object) -> bytes:
        calls.append((kw["time_cost"], kw["memory_cost"], kw["parallelism"]))  # type: ignore[arg-type]
        return real(**kw)  # type: ignore[no-any-return]

    monkeypatch.setattr(argon2.low_level, "hash_secret_raw", spy)
    AdminVault.unlock(vault_location, PASSPHRASE).close()
    right = list(calls)
    calls.clear()
    with pytest.raises(IntegrityError):
        AdminVault.unlock(vault_location, "wrong")
    assert calls == right and len(right) == 1


def test_missing_vault(tmp_path: Path) -> None:
    with pytest.raises(VaultUnavailable):
        AdminVault.unlock(tmp_path / "none.db", PASSPHRASE)


def test_recovery_key_opens_the_vault(created: tuple[AdminVault, str], vault_location: str) -> None:
    admin, recovery = created
    admin.add("a", "binance", {"api_key": "k" * 20, "secret": "s" * 32})
    with AdminVault.unlock_with_recovery_key(vault_location, recovery) as again:
        assert again.get("a").secret.reveal() == "s" * 32
        again.change_passphrase("a brand new passphrase", kdf=TEST_KDF, insecure_test_kdf=True)
    with pytest.raises(IntegrityError):
        AdminVault.unlock(vault_location, PASSPHRASE)
    AdminVault.unlock(vault_location, "a brand new passphrase").close()


def test_recovery_key_is_256_random_bits(created: tuple[AdminVault, str], tmp_path: Path) -> None:
    """The recovery key printed at init cannot be guessed: 32 random bytes, another
    vault's is another."""
    other, other_recovery = AdminVault.create(
        tmp_path / "other" / "vault.db", PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True
    )
    other.close()
    keys = [recovery.parse_recovery_key(text) for text in (created[1], other_recovery)]
    assert [len(key) for key in keys] == [32, 32]
    assert keys[0] != keys[1]


def test_recovery_key_of_another_vault(vault_path: Path, tmp_path: Path) -> None:
    AdminVault.create(vault_path, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)[0].close()
    _, other_key = AdminVault.create(
        tmp_path / "o.db", PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True
    )
    with pytest.raises(IntegrityError):
        AdminVault.unlock_with_recovery_key(vault_path, other_key)


def test_change_passphrase_keeps_everything_readable(
    stocked: AdminVault, vault_location: str
) -> None:
    params = stocked.change_passphrase("new passphrase 123", insecure_test_kdf=True)
    assert params == TEST_KDF
    with pytest.raises(IntegrityError):
        AdminVault.unlock(vault_location, PASSPHRASE)
    with AdminVault.unlock(vault_location, "new passphrase 123") as again:
        assert again.get("binance-main").secret.reveal() == BINANCE_SECRET
        assert again.get("kucoin-sub1").passphrase.reveal() == KUCOIN_PASSPHRASE  # type: ignore[union-attr]
    count = db_exec(vault_location, "SELECT count(*) FROM keyslots WHERE kind = 'passphrase'")
    assert count == [(1,)]


def test_change_passphrase_reencrypts_nothing(stocked: AdminVault, vault_location: str) -> None:
    def blobs() -> list[tuple[object, ...]]:
        return db_exec(vault_location, "SELECT ciphertext FROM payloads ORDER BY 1") + db_exec(
            vault_location, "SELECT body FROM dek_wraps ORDER BY 1"
        )

    before = blobs()
    stocked.change_passphrase("new passphrase 123", insecure_test_kdf=True)
    assert blobs() == before


# A database writer lowers the passphrase slot's Argon2id parameters (the KDF downgrade
# of issue 11): the owner's unlock fails (they are in the slot's AD), the owner runs
# recover, and the new slot must not be written with the attacker's parameters.
ATTACKER_KDF = KdfParams(time_cost=1, memory_kib=8, parallelism=1)


def _lower_passphrase_slot_kdf(location: str) -> None:
    db_exec(
        location,
        "UPDATE keyslots SET kdf_time_cost = :t, kdf_memory_kib = :m, kdf_parallelism = :p "
        "WHERE kind = 'passphrase'",
        t=ATTACKER_KDF.time_cost,
        m=ATTACKER_KDF.memory_kib,
        p=ATTACKER_KDF.parallelism,
    )


def _passphrase_slot_kdf(location: str) -> KdfParams:
    [(t, m, p)] = db_exec(
        location,
        "SELECT kdf_time_cost, kdf_memory_kib, kdf_parallelism FROM keyslots "
        "WHERE kind = 'passphrase'",
    )
    assert isinstance(t, int) and isinstance(m, int) and isinstance(p, int)
    return KdfParams(t, m, p)


@pytest.mark.sqlite_only
def test_recover_after_a_kdf_downgrade_recalibrates(
    created: tuple[AdminVault, str], vault_location: str
) -> None:
    admin, recovery = created
    admin.close()
    _lower_passphrase_slot_kdf(vault_location)
    with pytest.raises(IntegrityError):
        AdminVault.unlock(vault_location, PASSPHRASE)
    with AdminVault.unlock_with_recovery_key(vault_location, recovery) as recovered:
        params = recovered.change_passphrase("the passphrase after recover")
    assert params.at_least(kdf_params.KDF_FLOOR)
    assert _passphrase_slot_kdf(vault_location) == params


def test_passwd_keeps_the_parameters_of_the_slot_it_opened(
    stocked: AdminVault, vault_location: str
) -> None:
    # Lowered after the unlock: passwd must not read them back from the database.
    _lower_passphrase_slot_kdf(vault_location)
    params = stocked.change_passphrase("new passphrase 123", insecure_test_kdf=True)
    assert params == TEST_KDF
    assert _passphrase_slot_kdf(vault_location) == TEST_KDF


@pytest.mark.sqlite_only
def test_passwd_lifts_test_parameters_to_a_calibration(
    stocked: AdminVault, vault_location: str
) -> None:
    params = stocked.change_passphrase("new passphrase 123")
    assert params.at_least(kdf_params.KDF_FLOOR)
    assert _passphrase_slot_kdf(vault_location) == params


def test_change_passphrase_refuses_weak_explicit_kdf(
    stocked: AdminVault, vault_location: str
) -> None:
    before = db_exec(vault_location, "SELECT * FROM keyslots ORDER BY id")
    with pytest.raises(InvalidInput, match="floor"):
        stocked.change_passphrase("new passphrase 123", kdf=KdfParams(1, 64, 1))
    assert db_exec(vault_location, "SELECT * FROM keyslots ORDER BY id") == before


# Keyslot rows are signed by the root key (schema version 4): the owner's unlock checks
# the signature of the slot that opened, once it has proved the header's keys.


def test_keyslots_are_signed(created: tuple[AdminVault, str], vault_location: str) -> None:
    rows = db_exec(vault_location, "SELECT kind FROM keyslots WHERE signature IS NOT NULL")
    assert sorted(rows) == [("passphrase",), ("recovery",)]


def test_keyslot_statements_read_delete_and_insert_the_signed_rows(
    created: tuple[AdminVault, str],
) -> None:
    admin = created[0]
    writer = admin.writer
    with writer.read() as session:
        execute = session.execute
        slots = keyslots.read_slots(execute)
        signatures = [keyslots.slot_signature(execute, s.id) for s in slots]
        assert keyslots.slot_signature(execute, "no such slot") is None
    assert sorted(s.kind for s in slots) == [keyslots.PASSPHRASE, keyslots.RECOVERY]
    assert all(s.signature is None for s in slots)  # read without it (old schemas)
    for slot, signature in zip(slots, signatures, strict=True):
        keyslots.verify_slot(writer.verify_public, writer.vault_id, slot, signature)
    with writer.write() as session:
        execute = session.execute
        keyslots.delete_slots(execute, keyslots.PASSPHRASE)
        assert [s.kind for s in keyslots.read_slots(execute)] == [keyslots.RECOVERY]
        keyslots.delete_slots(execute)
        assert keyslots.read_slots(execute) == []
        keyslots.insert_slots(
            execute, [s._replace(signature=sig) for s, sig in zip(slots, signatures, strict=True)]
        )
    with writer.read() as session:
        execute = session.execute
        assert sorted(keyslots.read_slots(execute)) == sorted(slots)
        assert [keyslots.slot_signature(execute, s.id) for s in slots] == signatures


def test_unlock_refuses_an_unsigned_passphrase_slot(
    created: tuple[AdminVault, str], vault_location: str
) -> None:
    # What a passphrase slot from a backup older than schema version 4, put back, is.
    created[0].close()
    db_exec(vault_location, "UPDATE keyslots SET signature = NULL WHERE kind = 'passphrase'")
    with pytest.raises(IntegrityError, match="not signed"):
        AdminVault.unlock(vault_location, PASSPHRASE)


def test_unlock_refuses_an_edited_keyslot_created_at(
    created: tuple[AdminVault, str], vault_location: str
) -> None:
    # created_at is in no AD: only the signature covers it.
    created[0].close()
    db_exec(
        vault_location,
        "UPDATE keyslots SET created_at = created_at - 86400 WHERE kind = 'passphrase'",
    )
    with pytest.raises(IntegrityError, match="signature"):
        AdminVault.unlock(vault_location, PASSPHRASE)


def test_unlock_refuses_another_slots_signature(
    created: tuple[AdminVault, str], vault_location: str
) -> None:
    created[0].close()
    db_exec(
        vault_location,
        "UPDATE keyslots SET signature = "
        "(SELECT signature FROM keyslots WHERE kind = 'recovery') WHERE kind = 'passphrase'",
    )
    with pytest.raises(IntegrityError, match="signature"):
        AdminVault.unlock(vault_location, PASSPHRASE)


def test_recover_refuses_an_unsigned_recovery_slot(
    created: tuple[AdminVault, str], vault_location: str
) -> None:
    admin, recovery = created
    admin.close()
    db_exec(vault_location, "UPDATE keyslots SET signature = NULL WHERE kind = 'recovery'")
    with pytest.raises(IntegrityError, match="not signed"):
        AdminVault.unlock_with_recovery_key(vault_location, recovery)


def test_verify_reports_an_unsigned_recovery_slot(
    created: tuple[AdminVault, str], vault_location: str
) -> None:
    db_exec(vault_location, "UPDATE keyslots SET signature = NULL WHERE kind = 'recovery'")
    problems = [p.message for p in verify(created[0]).problems]
    assert len(problems) == 1 and problems[0].startswith("recovery keyslot ")
    assert "not signed" in problems[0]


def test_status_says_whether_the_kdf_is_authenticated(
    created: tuple[AdminVault, str], vault_location: str
) -> None:
    assert created[0].status().kdf_authenticated
    with Inventory.open(vault_location) as inv:
        assert not inv.status().kdf_authenticated


@pytest.mark.sqlite_only
def test_create_refuses_weak_explicit_kdf(vault_path: Path) -> None:
    with pytest.raises(InvalidInput, match="floor"):
        AdminVault.create(vault_path, PASSPHRASE, kdf=KdfParams(1, 64, 1))
    assert not vault_path.exists()


def test_create_refuses_empty_passphrase(vault_path: Path) -> None:
    with pytest.raises(InvalidInput):
        AdminVault.create(vault_path, "", kdf=TEST_KDF, insecure_test_kdf=True)


def test_kdf_parameters_above_the_cap_refused_on_open(
    stocked: AdminVault, vault_location: str
) -> None:
    db_exec(
        vault_location,
        "UPDATE keyslots SET kdf_memory_kib = 64 * 1024 * 1024 WHERE kind = 'passphrase'",
    )
    with pytest.raises(UnsupportedFormat, match="cap"):
        AdminVault.unlock(vault_location, PASSPHRASE)


def test_other_format_version_refused(stocked: AdminVault, vault_location: str) -> None:
    db_exec(vault_location, "UPDATE vault_header SET format_version = 2")
    with pytest.raises(UnsupportedFormat, match="format version 2"):
        Inventory.open(vault_location)


def test_signed_header_verifies_and_binds_its_fields() -> None:
    """The one header builder (create and rekey): self-signed over every field."""
    identity = RootIdentity.generate()
    header = signed_header(
        identity, vault_id=b"v" * 16, format_version=encoding.FORMAT_VERSION, created_at=1
    )
    assert records.check_header(header) is header
    assert header.verify_public == identity.verify_public
    # A plain row: the edited field is a copy with it changed.
    with pytest.raises(IntegrityError):
        records.check_header(header._replace(created_at=2))
