"""The rows records check before use: each column holds the type the schema declares, and
a version row is used only as the very one its head's stage names."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from vault.db.inventory import load_header
from vault.db.store import orm_session
from vault.db.tables import ClientRecord, CredentialRecord, GrantRecord, VersionRecord
from vault.errors import IntegrityError
from vault.format import records
from vault.owner.admin import AdminVault

GRANT = {
    "client_id": "c" * 32,
    "credential_id": "d" * 32,
    "created_at": 1_700_000_000,
    "signature": b"\0" * 64,
}


def grant(**changes: object) -> SimpleNamespace:
    """A grant row as any reader may hand it over: an object with the column attributes."""
    return SimpleNamespace(**{**GRANT, **changes})


def test_a_row_of_the_declared_types_passes() -> None:
    assert records.type_damage(grant(), GrantRecord.__tablename__) is None
    records.check_types(grant(), GrantRecord.__tablename__)
    records.check_types(GrantRecord(**GRANT), GrantRecord.__tablename__)


@pytest.mark.parametrize(
    ("changes", "damage"),
    [
        ({"created_at": 1.5}, "grants.created_at holds a real number where an integer"),
        ({"created_at": "1700000000"}, "grants.created_at holds text where an integer"),
        ({"created_at": True}, "grants.created_at holds bool where an integer"),
        ({"signature": "00" * 64}, "grants.signature holds text where a blob"),
        ({"signature": 0}, "grants.signature holds an integer where a blob"),
        ({"signature": None}, "grants.signature holds NULL where a blob"),
        ({"client_id": b"c" * 32}, "grants.client_id holds a blob where text"),
    ],
)
def test_a_value_of_another_type_is_damage(changes: dict[str, object], damage: str) -> None:
    found = records.type_damage(grant(**changes), GrantRecord.__tablename__)
    assert found is not None and found.startswith(damage + " is expected (row client_id ")
    with pytest.raises(IntegrityError, match=f"^damaged vault: {re.escape(damage)}"):
        records.check_types(grant(**changes), GrantRecord.__tablename__)


def test_none_passes_where_the_column_may_be_null() -> None:
    client = SimpleNamespace(
        id="c" * 32,
        name="bot",
        encryption_public=b"\0" * 32,
        verify_public=b"\0" * 32,
        created_at=1,
        expires_at=None,
        max_scope="read",
        revoked_at=None,
        signature=b"\0" * 64,
    )
    assert records.type_damage(client, ClientRecord.__tablename__) is None


def test_only_the_columns_asked_for_are_checked() -> None:
    row = SimpleNamespace(client_id="c" * 32, credential_id="d" * 32, created_at=1)
    assert records.type_damage(row, GrantRecord.__tablename__, ("created_at",)) is None


def test_the_row_is_named_by_its_key_never_by_a_long_value() -> None:
    found = records.type_damage(
        grant(client_id="k" * 64, created_at=None), GrantRecord.__tablename__
    )
    assert found is not None
    assert 'client_id "kkkkkk..." (64 characters)' in found


def test_only_the_very_version_a_stage_names_passes(stocked: AdminVault) -> None:
    """The version row a lookup returns is used only if it is exactly the one the head
    labels: its number, and the signed message the stage digest covers. Version 1 of
    the same credential (validly signed) is not the current version 2."""
    stocked.edit("binance-main", ips=["203.0.113.8"])
    with stocked.store.read() as transaction:
        header = load_header(transaction)
        session = orm_session(transaction)
        head = session.scalars(
            select(CredentialRecord).where(CredentialRecord.name == "binance-main")
        ).one()
        rows = {
            r.version: r
            for r in session.scalars(
                select(VersionRecord).where(VersionRecord.credential_id == head.id)
            )
        }
    keys = (header.verify_public, header.vault_id, head)
    assert records.check_staged_version(*keys, "current", rows[2]).ips == ("203.0.113.8",)
    for stage, row in (("current", rows[1]), ("pending", rows[2]), ("previous", rows[2])):
        with pytest.raises(IntegrityError):
            records.check_staged_version(*keys, stage, row)


def test_a_sealed_versions_repr_never_shows_its_data_key() -> None:
    dek = bytes(range(32))
    sealed = records.SealedVersion(
        SimpleNamespace(id="v"),  # type: ignore[arg-type]
        SimpleNamespace(id="p"),  # type: ignore[arg-type]
        dek,
        b"meta",
        b"stage",
    )
    assert sealed.dek == dek
    text = repr(sealed)
    assert "meta" in text and "stage" in text
    assert dek.hex() not in text and repr(dek) not in text and "dek" not in text
