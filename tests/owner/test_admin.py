"""The unlocked vault's facade: round trips, inventory reads, reprs, listings."""

from __future__ import annotations

from datetime import date

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
    IntegrityError,
)
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


def _key(i: int) -> dict[str, str]:
    return {"api_key": f"batch-key-{i:010d}", "secret": f"batch-secret-{i:020d}"}


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
