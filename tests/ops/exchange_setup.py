"""A vault and a mock exchange set up for automated rotation, for the tests of the
ops layer and of the command line: a master key managing sub-account keys, the
sub-account's first key (made "by hand"), both stored, the sub linked to its master."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tests.mock_exchange import subaccount_keys as sk
from tests.mock_exchange.clients import ccxt_client, pointed
from tests.mock_exchange.registry import ApiKey
from tests.mock_exchange.server import MockExchange
from vault.format.model import utc_now
from vault.ops import exchange_keys
from vault.ops.exchange_keys import calls
from vault.ops.exchange_rotation import Connect, ExchangeRotation
from vault.owner.admin import AdminVault

MASTER, SUB, IP = sk.SAMPLE_MASTER, sk.SAMPLE_SUB, sk.SAMPLE_IP
MASTER_RIGHT, GRANTS = sk.SAMPLE_MASTER_RIGHTS, sk.SAMPLE_GRANTS


def connect_to(mock: MockExchange, timeout_ms: int = 1000) -> Connect:
    """exvault's ccxt client factory, pointed at ``mock`` (it may then replace
    ``calls.connect`` itself)."""
    real = calls.connect

    def connect(name: str, fields: Mapping[str, str]) -> Any:
        return pointed(real(name, fields, timeout_ms=timeout_ms), mock)

    return connect


@dataclass
class Setup:
    admin: AdminVault
    mock: MockExchange
    engine: ExchangeRotation
    master_fields: dict[str, str]
    first_key: str

    @property
    def exchange(self) -> str:
        return self.mock.name

    def sub_keys(self) -> list[ApiKey]:
        return self.mock.state.keys_of(SUB.uid)

    def journal_rows(self) -> list[Any]:
        return self.engine.journal.entries()


def make_setup(
    admin: AdminVault, mock: MockExchange, grants: tuple[str, ...] | None = None
) -> Setup:
    exchange = mock.name
    mock.add_account(MASTER)
    mock.add_account(SUB)
    mock.state.client_ip = IP
    keys = exchange_keys.for_exchange(exchange)
    master_fields = {"api_key": f"master-{exchange}-key", "secret": f"master-{exchange}-secret"}
    if keys.passphrase_rules is not None:
        master_fields["passphrase"] = "Master-Pass1"
    mock.add_key(
        ApiKey(
            master_fields["api_key"],
            master_fields["secret"],
            MASTER,
            passphrase=master_fields.get("passphrase"),
            permissions=MASTER_RIGHT[exchange],
            ip_whitelist=(IP,),
        )
    )
    # The sub-account's first key, made by hand earlier (not by exvault).
    master_client = ccxt_client(mock, mock.state.key(master_fields["api_key"]))  # type: ignore[arg-type]
    sub = SUB.uid if keys.sub_account_by == "uid" else SUB.name
    first = keys.create_key(
        master_client,
        sub,
        "grid bot",
        GRANTS[exchange] if grants is None else grants,
        (IP,),
        keys.passphrase(b"by hand"),
    )
    admin.add(f"{exchange}-master", exchange, master_fields, permissions="read,subaccount", ips=IP)
    admin.add(
        f"{exchange}-grid",
        exchange,
        first.payload(),
        permissions=keys.permissions(GRANTS[exchange] if grants is None else grants),
        ips=IP,
        issued_on=utc_now().date() - timedelta(days=100),
    )
    admin.link_rotation(
        f"{exchange}-grid", rotate_via=f"{exchange}-master", sub_account=sub, auto=True
    )

    engine = ExchangeRotation(
        admin, connect=connect_to(mock), holder="test:1", alive=lambda h: False
    )
    return Setup(admin, mock, engine, master_fields, first.api_key)
