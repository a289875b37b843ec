"""The unlocked vault: round trips, passphrases, recovery, versions, bad input."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import (
    BINANCE_SECRET,
    KUCOIN_PASSPHRASE,
    PASSPHRASE,
    TEST_KDF,
    db_exec,
)
from vault.db.inventory import Inventory
from vault.errors import (
    AccessDenied,
    AlreadyExists,
    IntegrityError,
    InvalidInput,
    NotFound,
    UnsupportedFormat,
    VaultUnavailable,
)
from vault.format import kdf_params, recovery
from vault.format.kdf_params import KdfParams
from vault.ops.verification import verify
from vault.owner.admin import AdminVault

BACKENDS = ("sqlite", "postgresql")


def test_round_trip(stocked: AdminVault, binance_payload: dict[str, str]) -> None:
    cred = stocked.get("binance-main")
    assert cred.api_key.reveal() == binance_payload["api_key"]
    assert cred.secret.reveal() == binance_payload["secret"]
    assert cred.passphrase is None
    assert cred.permissions == ("read", "trade")
    assert cred.ips == ("203.0.113.7",)
    assert (cred.version, cred.stage, cred.exchange) == (1, "current", "binance")
    assert BINANCE_SECRET not in repr(cred)


def test_round_trip_after_reopening(stocked: AdminVault, vault_location: str) -> None:
    stocked.close()
    with AdminVault.unlock(vault_location, PASSPHRASE) as again:
        assert again.get("kucoin-sub1").passphrase.reveal() == KUCOIN_PASSPHRASE  # type: ignore[union-attr]


def test_ccxt_dict(stocked: AdminVault, kucoin_payload: dict[str, str]) -> None:
    assert stocked.get("kucoin-sub1").ccxt() == {
        "apiKey": kucoin_payload["api_key"],
        "secret": kucoin_payload["secret"],
        "password": kucoin_payload["passphrase"],
    }


@settings(max_examples=25, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
        st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=200).filter(
            lambda s: s == s.strip()
        ),
        max_size=5,
    )
)
def test_payload_round_trip(
    tmp_path_factory: pytest.TempPathFactory, extra: dict[str, str]
) -> None:
    path = tmp_path_factory.mktemp("v") / "vault.db"
    admin, _ = AdminVault.create(path, PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True)
    payload = {**extra, "api_key": "key-0123456789", "secret": "s" * 40}
    with admin:
        admin.add("x", "other", payload)
        got = admin.get("x")
    assert {k: v.reveal() for k, v in got.fields.items()} == payload


def test_wrong_passphrase(stocked: AdminVault, vault_location: str) -> None:
    with pytest.raises(IntegrityError, match="wrong passphrase or damaged vault"):
        AdminVault.unlock(vault_location, "not the passphrase")


def test_wrong_passphrase_costs_the_same_kdf_work(
    stocked: AdminVault, vault_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argon2.low_level  # vault.format.passphrase_kdf calls it through this module

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


def test_duplicate_name(stocked: AdminVault, binance_payload: dict[str, str]) -> None:
    with pytest.raises(AlreadyExists):
        stocked.add("binance-main", "binance", binance_payload)
    assert stocked.get("binance-main").version == 1


@pytest.mark.parametrize("op", ["get", "describe", "history", "remove"])
def test_unknown_name(admin: AdminVault, op: str) -> None:
    with pytest.raises(NotFound, match="nope"):
        getattr(admin, op)("nope")


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.get("binance-\udc80"),
        lambda a: a.describe("\udc80"),
        lambda a: a.history("\udcff"),
        lambda a: a.remove("x\udc80"),
        lambda a: a.grant("\udc80", ["binance-main"]),
        lambda a: a.grant("grid-bot", ["\udc80"]),
        lambda a: a.client("\udc80"),
        lambda a: a.revoke_client("\udc80"),
    ],
    ids=["get", "describe", "history", "remove", "grant-client", "grant-name", "client", "revoke"],
)
def test_name_that_is_not_utf8_is_refused(stocked: AdminVault, call: object) -> None:
    """A name with bytes that were not UTF-8 (a lone surrogate) is invalid input, not a
    UnicodeEncodeError from the database driver."""
    stocked.add_client("grid-bot", max_scope="trade")
    with pytest.raises(InvalidInput, match=r"name .* is not valid UTF-8 text \(at character"):
        call(stocked)  # type: ignore[operator]
    assert stocked.names() == ["binance-main", "kucoin-sub1"]


def test_secret_field_that_is_not_utf8_is_refused(admin: AdminVault) -> None:
    payload = {"api_key": "k" * 20 + "\ud800", "secret": "s" * 32}
    with pytest.raises(InvalidInput, match='field "api_key" is not valid UTF-8') as info:
        admin.add("x", "other", payload)
    assert "kkkk" not in str(info.value)
    assert admin.names() == []


def test_risk_reason_that_is_not_utf8_is_refused(stocked: AdminVault) -> None:
    with pytest.raises(InvalidInput, match="the reason is not valid UTF-8"):
        stocked.accept_risk("binance-main", "withdraw", "ok\udc80")
    assert stocked.policy("binance-main").accepted == {}


def test_unknown_stage(stocked: AdminVault) -> None:
    with pytest.raises(InvalidInput):
        stocked.get("binance-main", "latest")
    with pytest.raises(NotFound, match="no pending version"):
        stocked.get("binance-main", "pending")


@given(st.text(max_size=80))
def test_name_validation_never_crashes(name: str) -> None:
    from vault.format.model import NAME_PATTERN, validate_name

    if NAME_PATTERN.fullmatch(name):
        assert validate_name(name) == name
    else:
        with pytest.raises(InvalidInput):
            validate_name(name)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"exchange": "nosuchx"}, "unknown exchange"),
        ({"ips": ["300.1.1.1"]}, "bad IP"),
        ({"permissions": "read,fly"}, "fly"),
        ({"issued_on": date(2026, 1, 2), "expires_on": date(2026, 1, 1)}, "before"),
        ({"payload": {"api_key": "k" * 20}}, "secret"),
        ({"payload": {"api_key": "k" * 20, "secret": " padded-secret-value "}}, "whitespace"),
        (
            {"exchange": "kucoin", "payload": {"api_key": "k" * 20, "secret": "s" * 30}},
            "passphrase",
        ),
    ],
)
def test_bad_input_stores_nothing(admin: AdminVault, kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "exchange": "binance",
        "payload": {"api_key": "k" * 20, "secret": "s" * 32},
        **kwargs,
    }
    with pytest.raises(InvalidInput, match=match):
        admin.add("x", args.pop("exchange"), args.pop("payload"), **args)  # type: ignore[arg-type]
    assert admin.names() == []


def test_error_messages_never_contain_the_secret(admin: AdminVault) -> None:
    with pytest.raises(InvalidInput) as info:
        admin.add("x", "kraken", {"api_key": "k" * 20, "secret": "not-base64-secret!!"})
    assert "not-base64-secret" not in str(info.value)


def test_edit_writes_a_new_version(stocked: AdminVault) -> None:
    info = stocked.edit(
        "binance-main", permissions="read", ips=["203.0.113.8"], expires_on=date(2027, 3, 1)
    )
    assert info.version == 2
    cred = stocked.get("binance-main")
    assert cred.permissions == ("read",) and cred.ips == ("203.0.113.8",)
    assert cred.expires_on == date(2027, 3, 1)
    assert cred.secret.reveal() == BINANCE_SECRET
    history = stocked.history("binance-main")
    assert [(v.version, v.stages, v.readable) for v in history] == [
        (2, ("current",), True),
        (1, (), False),
    ]
    assert history[1].metadata.permissions == ("read", "trade")


def test_edit_can_clear_expiry_and_replace_secrets(stocked: AdminVault) -> None:
    stocked.edit("binance-main", expires_on=date(2027, 1, 1))
    stocked.edit("binance-main", expires_on=None, payload={"api_key": "n" * 20, "secret": "m" * 32})
    cred = stocked.get("binance-main")
    assert cred.expires_on is None and cred.secret.reveal() == "m" * 32 and cred.version == 3


def test_remove(stocked: AdminVault) -> None:
    stocked.remove("binance-main")
    assert stocked.names() == ["kucoin-sub1"]
    url = stocked.store.url.render_as_string(hide_password=False)
    assert db_exec(url, "SELECT count(*) FROM credential_versions") == [(1,)]
    assert db_exec(url, "SELECT count(*) FROM dek_wraps") == [(1,)]


def test_inventory_reads_without_any_key(stocked: AdminVault, vault_location: str) -> None:
    with Inventory.open(vault_location) as inv:
        infos = inv.credentials()
        assert [i.name for i in infos] == ["binance-main", "kucoin-sub1"]
        assert infos[0].metadata.permissions == ("read", "trade")
        assert inv.describe("kucoin-sub1").metadata.ips == ("198.51.100.0/24",)
        status = inv.status()
        assert status.credentials == 2 and status.kdf == TEST_KDF
        assert status.fingerprint == stocked.fingerprint


def test_reprs_show_no_secret(stocked: AdminVault) -> None:
    text = (
        repr(stocked) + repr(stocked.get("binance-main")) + repr(stocked.describe("binance-main"))
    )
    assert BINANCE_SECRET not in text and PASSPHRASE not in text


# ------------------------------------------------------------------------------ batch


def _key(i: int) -> dict[str, str]:
    return {"api_key": f"batch-key-{i:010d}", "secret": f"batch-secret-{i:020d}"}


def test_add_returns_what_describe_reads(admin: AdminVault) -> None:
    info = admin.add("a", "binance", _key(1), permissions="read,trade", ips=["203.0.113.7"])
    assert info == admin.describe("a")
    with admin.batch():
        info = admin.add("b", "kucoin", {**_key(2), "passphrase": "p4ss!word"}, ips="10.0.0.0/8")
    assert info == admin.describe("b")


def test_batch_commits_once_at_the_end(admin: AdminVault, vault_location: str) -> None:
    with Inventory.open(vault_location) as other:
        with admin.batch():
            for i in range(3):
                admin.add(f"cred-{i}", "binance", _key(i))
            # This handle reads its own batch; another sees nothing until it commits.
            assert admin.names() == ["cred-0", "cred-1", "cred-2"]
            assert admin.get("cred-1").api_key.reveal() == _key(1)["api_key"]
            assert other.names() == []
        assert other.names() == ["cred-0", "cred-1", "cred-2"]
        assert other.verify_audit(remember=False).ok
    actions = [(e.action, e.credential) for e in admin.audit_entries()]
    assert actions[-4:] == [
        ("add", "cred-0"),
        ("add", "cred-1"),
        ("add", "cred-2"),
        ("read", "cred-1"),
    ]
    assert verify(admin).ok


def test_batch_is_all_or_nothing(admin: AdminVault, vault_location: str) -> None:
    admin.add("kept", "binance", _key(0))
    entries = len(admin.audit_entries())
    with pytest.raises(RuntimeError, match="stop"), admin.batch():
        admin.add("cred-1", "binance", _key(1))
        admin.edit("kept", permissions="read")
        admin.remove("kept")
        admin.add("cred-2", "binance", _key(2))
        raise RuntimeError("stop")
    assert admin.names() == ["kept"]
    assert admin.describe("kept").version == 1
    assert len(admin.audit_entries()) == entries
    assert admin.verify_audit(remember=False).ok and verify(admin).ok
    admin.add("after", "binance", _key(3))  # the handle writes on as before
    assert admin.names() == ["after", "kept"]


def test_a_failure_caught_inside_a_batch_leaves_nothing(admin: AdminVault) -> None:
    with admin.batch():
        admin.add("a", "binance", _key(1))
        with pytest.raises(AlreadyExists):
            admin.add("a", "binance", _key(2))  # still queued, not in the database yet
        admin.add("b", "binance", _key(3))
        admin.edit("b", permissions="read")
        with pytest.raises(InvalidInput):
            admin.edit("a", permissions="read,fly")  # fails after reading, in its savepoint
        with pytest.raises(NotFound):
            admin.remove("nope")
        admin.add("c", "binance", _key(4))
    assert admin.names() == ["a", "b", "c"]
    assert admin.get("a").api_key.reveal() == _key(1)["api_key"]
    assert [admin.describe(n).version for n in ("a", "b", "c")] == [1, 2, 1]
    assert admin.verify_audit(remember=False).ok and verify(admin).ok


def test_batch_queue_is_inserted_in_parts(
    admin: AdminVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vault.owner import admin as admin_module

    monkeypatch.setattr(admin_module, "BATCH_QUEUE_ROWS", 7)  # an add queues 5 rows
    with pytest.raises(RuntimeError), admin.batch():
        for i in range(6):
            admin.add(f"gone-{i}", "binance", _key(i))
        raise RuntimeError
    assert admin.names() == []
    with admin.batch():
        for i in range(6):
            admin.add(f"cred-{i}", "binance", _key(i))
        with pytest.raises(AlreadyExists):
            admin.add("cred-0", "binance", _key(9))  # inserted already
    assert len(admin.names()) == 6
    assert admin.verify_audit(remember=False).ok and verify(admin).ok


def test_batch_grants_and_rotations(admin: AdminVault, vault_location: str) -> None:
    from vault.owner import rotation
    from vault.runtime.client import ClientVault

    _client, token = admin.add_client("bot", max_scope="read")
    with admin.batch():
        admin.add("a", "binance", _key(1), permissions="read")
        admin.add("wide", "binance", _key(2), permissions="read,trade")
        admin.grant("bot", ["a"])
        with pytest.raises(AccessDenied):
            admin.grant("bot", ["wide"])
        rotation.start(admin, "a", _key(3))
        rotation.promote(admin, "a")
        rotation.finish(admin, "a")
    # The refusal is audited after the batch, in a transaction of its own.
    last = admin.audit_entries()[-1]
    assert (last.action, last.credential, last.outcome) == ("grant", "wide", "denied")
    with ClientVault.open(vault_location, token=token) as client:
        assert client.get("a").api_key.reveal() == _key(3)["api_key"]
    assert admin.verify_audit(remember=False).ok and verify(admin).ok


def test_batch_knows_the_names_it_adds_and_removes(stocked: AdminVault) -> None:
    with stocked.batch():
        with pytest.raises(AlreadyExists):
            stocked.add("binance-main", "binance", _key(1))  # there before the batch
        stocked.add("a", "binance", _key(2))
        stocked.remove("a")
        stocked.remove("kucoin-sub1")
        stocked.add("a", "binance", _key(3))
        stocked.add("kucoin-sub1", "binance", _key(4))
        with pytest.raises(AlreadyExists):
            stocked.add("a", "binance", _key(5))
    assert stocked.names() == ["a", "binance-main", "kucoin-sub1"]
    assert stocked.get("a").api_key.reveal() == _key(3)["api_key"]
    assert stocked.get("kucoin-sub1").exchange == "binance"
    assert verify(stocked).ok


def test_batch_inside_a_batch_joins_it(admin: AdminVault) -> None:
    with pytest.raises(RuntimeError), admin.batch():
        with admin.batch():
            admin.add("a", "binance", _key(1))
        raise RuntimeError
    assert admin.names() == []


def test_batch_holds_the_write_lock(admin: AdminVault, vault_location: str) -> None:
    import threading

    other = AdminVault.unlock(vault_location, PASSPHRASE)
    done = threading.Event()

    def write() -> None:
        other.add("other", "binance", _key(2))
        done.set()

    with other:
        with admin.batch():
            admin.add("first", "binance", _key(1))
            writer = threading.Thread(target=write)
            writer.start()
            assert not done.wait(1.0), "another writer got in during the batch"
        writer.join(30)
        assert done.is_set()
        assert other.names() == ["first", "other"]
        assert other.verify_audit(remember=False).ok


def test_listing_is_what_credentials_says(stocked: AdminVault, vault_location: str) -> None:
    from vault.db.inventory import ListedCredential
    from vault.owner import rotation

    stocked.edit("binance-main", expires_on=date(2031, 2, 3))
    rotation.start(stocked, "kucoin-sub1", {**_key(9), "passphrase": "Pass-2!"})
    stocked.add_client("bot")
    stocked.grant("bot", ["binance-main"])
    stocked.revoke_client("bot")  # binance-main exposed
    with Inventory.open(vault_location) as inv:
        listed = list(inv.listing())
        assert listed == [ListedCredential.of(i) for i in inv.credentials()]
    assert listed[0].exposed_at is not None and listed[1].pending_version == 2
    db_exec(vault_location, "UPDATE credentials SET current_version = 7 WHERE name = 'kucoin-sub1'")
    with Inventory.open(vault_location) as inv, pytest.raises(IntegrityError, match="kucoin-sub1"):
        list(inv.listing())
