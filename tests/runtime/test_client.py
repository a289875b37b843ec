"""Authorized callers: grants, tokens, the cryptographic check, expiry and revocation."""

from __future__ import annotations

import copy
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vault
from tests.conftest import (
    BINANCE_SECRET,
    PASSPHRASE,
    TEST_KDF,
    copy_rows,
    forge_version,
    put_rows,
    restore_rows,
    sql,
    write_secret_file,
)
from vault.errors import (
    AccessDenied,
    AlreadyExists,
    Conflict,
    InsecureFile,
    IntegrityError,
    InvalidInput,
    InvalidToken,
    NotFound,
    TokenExpired,
)
from vault.format import aead, identities, keywrap, records
from vault.ops.verification import verify
from vault.owner import rotation
from vault.owner.admin import AdminVault
from vault.runtime.client import ClientVault
from vault.runtime.token import ClientToken, find_token, parse_token, token_in_environment

NEW_SECRET = "p4Lk9Qw2Er7Ty1Ui6Op3As8Df5Gh0Jk4Zx9Cv2Bn7Mq1Wz6Xe3Rc8Vt5By0Nu4Im"

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture
def token(stocked: AdminVault) -> str:
    """grid-bot (max scope trade), granted binance-main only."""
    _, tok = stocked.add_client("grid-bot", max_scope="trade")
    stocked.grant("grid-bot", ["binance-main"])
    return tok


def test_granted_credential_loads(token: str, vault_location: str) -> None:
    cred = vault.load("binance-main", where=vault_location, token=token)
    assert cred.secret.reveal() == BINANCE_SECRET
    assert (cred.name, cred.exchange, cred.version, cred.stage) == (
        "binance-main",
        "binance",
        1,
        "current",
    )
    assert cred.permissions == ("read", "trade") and cred.ips == ("203.0.113.7",)


def test_a_client_reads_the_endpoint_with_the_key(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    assert vault.load("binance-main", where=vault_location, token=token).endpoint == "live"
    stocked.edit("binance-main", endpoint="https://api.binance.example")
    cred = vault.load("binance-main", where=vault_location, token=token)
    assert cred.endpoint == "https://api.binance.example"
    assert stocked.get("binance-main").endpoint == "https://api.binance.example"


def test_name_that_is_not_utf8_is_refused(token: str, vault_location: str) -> None:
    with pytest.raises(InvalidInput, match="not valid UTF-8"):
        vault.load("binance-\udc80", where=vault_location, token=token)


def test_ungranted_credential_refused(token: str, vault_location: str) -> None:
    with pytest.raises(AccessDenied, match='not granted "kucoin-sub1"'):
        vault.load("kucoin-sub1", where=vault_location, token=token)


def test_ungrant(stocked: AdminVault, token: str, vault_location: str) -> None:
    stocked.ungrant("grid-bot", ["binance-main"])
    with pytest.raises(AccessDenied):
        vault.load("binance-main", where=vault_location, token=token)
    client_id = parse_token(token).client_id
    assert sql(vault_location, "SELECT count(*) FROM dek_wraps WHERE recipient = ?", client_id) == [
        (0,)
    ]
    with pytest.raises(NotFound):
        stocked.ungrant("grid-bot", ["binance-main"])


def test_revoke(stocked: AdminVault, token: str, vault_location: str) -> None:
    handle = ClientVault.open(vault_location, token=token)
    assert stocked.revoke_client("grid-bot") == ["binance-main"]
    with pytest.raises(AccessDenied):  # an open handle loses access at once
        handle.get("binance-main")
    handle.close()
    with pytest.raises(AccessDenied, match="revoked"):
        ClientVault.open(vault_location, token=token)
    info = stocked.describe("binance-main")
    assert info.exposed_at is not None and "grid-bot" in (info.exposed_reason or "")
    assert stocked.describe("kucoin-sub1").exposed_at is None
    assert stocked.revoke_client("grid-bot") == []  # idempotent
    client_id = parse_token(token).client_id
    assert sql(vault_location, "SELECT count(*) FROM dek_wraps WHERE recipient = ?", client_id) == [
        (0,)
    ]
    with pytest.raises(Conflict):
        stocked.grant("grid-bot", ["kucoin-sub1"])


def test_expired_client(
    stocked: AdminVault, vault_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expires = datetime.now(timezone.utc) + timedelta(days=1)
    _, tok = stocked.add_client("short", expires_at=expires)
    stocked.grant("short", ["binance-main"])
    handle = ClientVault.open(vault_location, token=tok)
    assert handle.get("binance-main").version == 1
    later = expires + timedelta(seconds=1)
    monkeypatch.setattr("vault.runtime.client.utc_now", lambda: later)
    with pytest.raises(TokenExpired):
        handle.get("binance-main")
    handle.close()
    with pytest.raises(TokenExpired, match="expired"):
        ClientVault.open(vault_location, token=tok)


def test_client_expiry_in_the_past_refused(stocked: AdminVault) -> None:
    with pytest.raises(InvalidInput):
        stocked.add_client("old", expires_at=datetime(2020, 1, 1, tzinfo=timezone.utc))


def test_duplicate_and_bad_client_names(stocked: AdminVault, token: str) -> None:
    with pytest.raises(AlreadyExists):
        stocked.add_client("grid-bot")
    with pytest.raises(InvalidInput):
        stocked.add_client("bad name")
    with pytest.raises(InvalidInput):
        stocked.add_client("x", max_scope="trade,fly")


def test_grant_beyond_max_scope_refused_and_audited(stocked: AdminVault, token: str) -> None:
    stocked.add(
        "wd",
        "binance",
        {"api_key": "w" * 20, "secret": "x" * 32},
        permissions="read,withdraw",
        ips=["203.0.113.9"],
    )
    with pytest.raises(AccessDenied, match="withdraw"):
        stocked.grant("grid-bot", ["kucoin-sub1", "wd"])
    assert stocked.client("grid-bot").grants == ("binance-main",)  # all or nothing
    last = stocked.audit_entries()[-1]
    assert (last.action, last.outcome, last.credential) == ("grant", "denied", "wd")


def test_default_scope_excludes_withdraw(stocked: AdminVault) -> None:
    info, _ = stocked.add_client("plain")
    assert "withdraw" not in info.max_scope and "trade" in info.max_scope
    info, _ = stocked.add_client("everything", max_scope="all")
    assert "withdraw" in info.max_scope


def test_edit_beyond_a_grantees_scope_refused(stocked: AdminVault, token: str) -> None:
    with pytest.raises(Conflict, match="grid-bot"):
        stocked.edit("binance-main", permissions="read,trade,withdraw")
    assert stocked.get("binance-main").permissions == ("read", "trade")


def test_new_versions_are_wrapped_for_grantees(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    with ClientVault.open(vault_location, token=token) as handle:
        assert handle.get("binance-main").version == 1
        stocked.edit("binance-main", payload={"api_key": "n" * 20, "secret": "m" * 32})
        cred = handle.get("binance-main")  # another writer's new version is seen at once
        assert (cred.version, cred.secret.reveal()) == (2, "m" * 32)


def test_grant_is_idempotent(stocked: AdminVault, token: str, vault_location: str) -> None:
    stocked.grant("grid-bot", ["binance-main"])
    client_id = parse_token(token).client_id
    assert sql(vault_location, "SELECT count(*) FROM dek_wraps WHERE recipient = ?", client_id) == [
        (1,)
    ]


def test_ungranted_credential_cannot_be_decrypted_from_raw_tables(
    token: str, vault_location: str
) -> None:
    """Even reading every table, the client's key opens no wrap of kucoin-sub1."""
    ((vault_id,),) = sql(vault_location, "SELECT vault_id FROM vault_header")
    tok = parse_token(token)
    wraps = sql(
        vault_location,
        "SELECT w.credential_id, w.version, w.recipient, w.ephemeral_public, w.body "
        "FROM dek_wraps w "
        "JOIN credentials c ON c.id = w.credential_id WHERE c.name = 'kucoin-sub1'",
    )
    assert wraps and all(w[2] == "root" for w in wraps)
    for cid, version, recipient, eph, body in wraps:
        for claimed in (recipient, tok.client_id):
            stored = keywrap.Recipient.stored(claimed)
            ad = records.wrap_ad(vault_id, cid, version, stored, b"\0" * 32)  # type: ignore[arg-type]
            with pytest.raises(IntegrityError):
                keywrap.unwrap_from_recipient(keywrap.WrappedKey(eph, body), tok.keys[0], ad)  # type: ignore[arg-type]


def test_root_wrap_copied_to_the_client_is_refused(token: str, vault_location: str) -> None:
    tok = parse_token(token)
    sql(
        vault_location,
        "INSERT INTO dek_wraps SELECT credential_id, version, ?, ephemeral_public, body "
        "FROM dek_wraps WHERE recipient = 'root' AND credential_id = "
        "(SELECT id FROM credentials WHERE name = 'kucoin-sub1')",
        tok.client_id,
    )
    with pytest.raises(IntegrityError):
        vault.load("kucoin-sub1", where=vault_location, token=token)


def test_forged_version_for_the_client_is_refused(token: str, vault_location: str) -> None:
    """Someone with database write access wraps a version of their own for the client."""
    tok = parse_token(token)
    forge_version(vault_location, tok.client_id, tok.encryption_public)
    with pytest.raises(IntegrityError):
        vault.load("binance-main", where=vault_location, token=token)


@pytest.mark.parametrize(
    ("column", "value"),
    [("max_scope", "read,trade,withdraw"), ("expires_at", 4102444800), ("revoked_at", None)],
)
def test_client_record_edited_is_refused(
    token: str, vault_location: str, column: str, value: object, stocked: AdminVault
) -> None:
    if column == "revoked_at":
        stocked.revoke_client("grid-bot")
    sql(vault_location, f"UPDATE clients SET {column} = ?", value)
    with pytest.raises(IntegrityError):
        ClientVault.open(vault_location, token=token)


def test_token_of_another_vault(token: str, tmp_path: Path) -> None:
    other, _ = AdminVault.create(
        tmp_path / "other.db", PASSPHRASE, kdf=TEST_KDF, insecure_test_kdf=True
    )
    other.close()
    with pytest.raises(InvalidToken, match="another vault"):
        ClientVault.open(tmp_path / "other.db", token=token)


def test_token_of_no_client(stocked: AdminVault, vault_location: str) -> None:
    fake = ClientToken.generate(
        stocked.vault_id, identities.fingerprint(stocked._verify_public), "ab" * 16
    )
    with pytest.raises(InvalidToken, match="does not exist"):
        ClientVault.open(vault_location, token=fake.encode())


@given(st.text(max_size=200))
def test_token_parser_never_crashes(text: str) -> None:
    try:
        parse_token(text)
    except InvalidToken as exc:
        # The message never echoes what was given (it could be a real token).
        assert len(text.strip()) < 8 or text.strip() not in str(exc)


@given(
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=16, max_size=16),
)
def test_token_round_trip(vault_id: bytes, fp: bytes, client_id: bytes) -> None:
    tok = ClientToken.generate(vault_id, fp, client_id.hex())
    again = parse_token(tok.encode())
    assert (again.vault_id, again.fingerprint, again.client_id, again.seed) == (
        vault_id,
        fp,
        client_id.hex(),
        tok.seed,
    )


def test_a_token_is_immutable_equal_only_to_itself_and_derives_its_keys_once() -> None:
    tok = ClientToken.generate(b"v" * 16, b"f" * 32, "ab" * 16)
    twin = ClientToken(tok.vault_id, tok.fingerprint, tok.client_id, tok.seed)
    assert tok == tok and tok != twin
    assert tok.keys is tok.keys
    assert tok.encryption_public == twin.encryption_public
    with pytest.raises(AttributeError):
        tok.seed = b"s" * 32  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del tok.client_id
    assert copy.copy(tok) is tok


def test_mistyped_token(token: str) -> None:
    i = len(token) // 2
    typo = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
    with pytest.raises(InvalidToken, match=r"checksum|malformed"):
        parse_token(typo)
    with pytest.raises(InvalidToken, match="cut off"):
        parse_token(token[:-10])


def test_token_from_environment(token: str, tmp_path: Path) -> None:
    f = write_secret_file(tmp_path / "tok", token)
    assert find_token({"EXVAULT_TOKEN": token}).client_id == parse_token(token).client_id
    assert find_token({"EXVAULT_TOKEN_FILE": str(f)}).client_id == parse_token(token).client_id
    creds = tmp_path / "creds"
    creds.mkdir()
    write_secret_file(creds / "exvault-token", token, mode=0o400)
    assert (
        find_token({"CREDENTIALS_DIRECTORY": str(creds)}).client_id == parse_token(token).client_id
    )
    with pytest.raises(InvalidToken, match="no client token"):
        find_token({})


def test_no_token_in_the_environment_is_none_and_a_bad_one_refused(token: str) -> None:
    # For the commands a client or the owner may run (probe, render): None is the owner.
    assert token_in_environment({}) is None
    found = token_in_environment({"EXVAULT_TOKEN": token})
    assert found is not None and found.client_id == parse_token(token).client_id
    with pytest.raises(InvalidToken, match="malformed client token"):
        token_in_environment({"EXVAULT_TOKEN": token[:-10]})


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_token_file_readable_by_others_refused(token: str, tmp_path: Path, mode: int) -> None:
    f = write_secret_file(tmp_path / "tok", token, mode=mode)
    with pytest.raises(InsecureFile, match="chmod 600"):
        find_token({"EXVAULT_TOKEN_FILE": str(f)})


def test_load_reads_the_token_from_the_environment(
    token: str, vault_location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXVAULT_TOKEN_FILE", str(write_secret_file(tmp_path / "tok", token)))
    monkeypatch.setenv("EXVAULT_PATH", str(vault_location))
    assert vault.load("binance-main").secret.reveal() == BINANCE_SECRET


def test_warm_get_does_no_public_key_work(
    token: str, vault_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = {"verify": 0, "unwrap": 0, "unseal": 0}

    def counting(name: str, real):  # type: ignore[no-untyped-def]
        def wrapper(*a, **k):  # type: ignore[no-untyped-def]
            counts[name] += 1
            return real(*a, **k)

        return wrapper

    monkeypatch.setattr(
        identities, "verify_signature", counting("verify", identities.verify_signature)
    )
    monkeypatch.setattr(
        keywrap, "unwrap_from_recipient", counting("unwrap", keywrap.unwrap_from_recipient)
    )
    monkeypatch.setattr(aead, "unseal", counting("unseal", aead.unseal))
    with ClientVault.open(vault_location, token=token) as handle:
        handle.get("binance-main")
        first = dict(counts)
        assert first["verify"] >= 2 and first["unwrap"] == 1
        for _ in range(3):
            assert handle.get("binance-main").secret.reveal() == BINANCE_SECRET
    assert counts["verify"] == first["verify"] and counts["unwrap"] == first["unwrap"]
    assert counts["unseal"] - first["unseal"] == 3  # still decrypted and authenticated each time


def test_warm_get_still_notices_tampering(token: str, vault_location: str) -> None:
    with ClientVault.open(vault_location, token=token) as handle:
        handle.get("binance-main")
        sql(
            vault_location,
            "UPDATE credential_versions SET permissions = 'read' WHERE name = 'binance-main'",
        )
        with pytest.raises(IntegrityError):
            handle.get("binance-main")


def test_reprs_do_not_show_the_token(token: str, vault_location: str) -> None:
    tok = parse_token(token)
    with ClientVault.open(vault_location, token=token) as handle:
        text = repr(handle) + repr(tok)
    assert token not in text and tok.seed.hex() not in text
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(tok)


def test_unknown_stage_and_missing_previous(token: str, vault_location: str) -> None:
    with ClientVault.open(vault_location, token=token) as handle:
        with pytest.raises(InvalidInput):
            handle.get("binance-main", "latest")
        with pytest.raises(NotFound):
            handle.get("binance-main", "previous")
        with pytest.raises(NotFound):
            handle.get("no-such")


def test_write_secret_file_makes_0600_files(tmp_path: Path) -> None:
    # The other tests rely on this helper for their "good" files.
    f = write_secret_file(tmp_path / "t", "x")
    assert os.stat(f).st_mode & 0o777 == 0o600


def test_expired_client_gets_no_wrap_of_new_versions(
    stocked: AdminVault, vault_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expires = datetime.now(timezone.utc) + timedelta(days=1)
    _, tok = stocked.add_client("short", expires_at=expires)
    stocked.grant("short", ["binance-main"])
    # The writer's grantee resolution reads the clock (expired clients are left out).
    monkeypatch.setattr("vault.owner.writer.utc_now", lambda: expires + timedelta(hours=1))
    stocked.edit("binance-main", permissions="read")
    client_id = parse_token(tok).client_id
    versions = sql(vault_location, "SELECT version FROM dek_wraps WHERE recipient = ?", client_id)
    assert versions == []  # version 1 retired with its wraps; version 2 never wrapped for it


def test_head_put_back_during_a_grace_period_is_refused_by_a_handle_that_saw_the_newer(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    """After a rotation, the head as it was before it is put back: it names the old key
    as current, and the old key is still there (readable as previous). A handle that
    has read the newer head refuses the older one."""
    where = "name = 'binance-main'"
    before = copy_rows(vault_location, "credentials", where)
    rotation.start(stocked, "binance-main", {"api_key": "newKey0123456789", "secret": NEW_SECRET})
    rotation.promote(stocked, "binance-main")
    with vault.open(vault_location, token=token) as bot:
        assert bot.get("binance-main").secret.reveal() == NEW_SECRET
        restore_rows(vault_location, "credentials", before, "id")
        with pytest.raises(IntegrityError, match='"binance-main"'):
            bot.get("binance-main")
    last = stocked.audit_entries()[-1]
    assert (last.actor, last.action, last.outcome) == ("client:grid-bot", "read", "denied")
    assert last.credential == "binance-main" and "older" in last.detail


@pytest.mark.parametrize("new_version", ["edit", "rotate start"])
def test_grant_row_put_back_after_an_ungrant_gets_no_wrap(
    stocked: AdminVault, token: str, vault_location: str, new_version: str
) -> None:
    """grid-bot's grant row, saved while it was granted, is put back after the ungrant:
    the grant's signature still verifies, but the head's signed grantees say no."""
    where = "credential_id = (SELECT id FROM credentials WHERE name = 'binance-main')"
    grant = copy_rows(vault_location, "grants", where)
    stocked.ungrant("grid-bot", ["binance-main"])
    put_rows(vault_location, "grants", grant, where)
    if new_version == "edit":
        stocked.edit("binance-main", payload={"api_key": "newKey0123456789", "secret": NEW_SECRET})
    else:
        rotation.start(
            stocked, "binance-main", {"api_key": "newKey0123456789", "secret": NEW_SECRET}
        )
    stage = "current" if new_version == "edit" else "pending"
    with pytest.raises(AccessDenied, match="not granted"):
        vault.load("binance-main", stage=stage, where=vault_location, token=token)
    client_id = parse_token(token).client_id
    assert sql(vault_location, "SELECT * FROM dek_wraps WHERE recipient = ?", client_id) == []
    assert any("grants row" in p.message for p in verify(stocked).problems)
