"""A vault and a mock exchange set up for automated rotation, for the tests of the
ops layer and of the command line: a master key managing sub-account keys, the
sub-account's first key (made "by hand"), both stored, the sub linked to its master.

Both credentials reach the mock through their endpoint (``http://127.0.0.1:PORT``),
as a user's would reach a local server or a regional host: exvault's own clients,
unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tests.mock_exchange import subaccount_keys as sk
from tests.mock_exchange.registry import ApiKey
from tests.mock_exchange.server import MockExchange
from vault.format.model import utc_now
from vault.ops import exchange_keys
from vault.ops.exchange_api import KeyClient
from vault.ops.exchange_rotation import ExchangeRotation
from vault.owner.admin import AdminVault
from vault.secret import Secret

MASTER, SUB, IP = sk.SAMPLE_MASTER, sk.SAMPLE_SUB, sk.SAMPLE_IP
MASTER_RIGHT, GRANTS = sk.SAMPLE_MASTER_RIGHTS, sk.SAMPLE_GRANTS


TIMEOUT = 1.0
"""Seconds a request to the mock may take (a delay fault outlasts it)."""


def key_client(mock: MockExchange, fields: dict[str, str]) -> KeyClient:
    """exvault's client of ``mock`` holding ``fields``, at the mock's endpoint."""
    secrets = {name: Secret(value) for name, value in fields.items()}
    return KeyClient(mock.name, secrets, mock.url, timeout=TIMEOUT)


def engine_of(admin: AdminVault, *, alive: bool = False) -> ExchangeRotation:
    """The rotation engine under test (``alive``: how it sees another lease holder)."""
    return ExchangeRotation(admin, timeout=TIMEOUT, holder="test:1", alive=lambda h: alive)


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
    master_client = key_client(mock, master_fields)
    sub = SUB.uid if keys.sub_account_by == "uid" else SUB.name
    first = keys.create_key(
        master_client,
        sub,
        "grid bot",
        GRANTS[exchange] if grants is None else grants,
        (IP,),
        keys.passphrase(b"by hand"),
    )
    admin.add(
        f"{exchange}-master",
        exchange,
        master_fields,
        permissions="read,subaccount",
        ips=IP,
        endpoint=mock.url,
    )
    admin.add(
        f"{exchange}-grid",
        exchange,
        first.payload(),
        permissions=keys.permissions(GRANTS[exchange] if grants is None else grants),
        ips=IP,
        issued_on=utc_now().date() - timedelta(days=100),
        endpoint=mock.url,
    )
    admin.link_rotation(
        f"{exchange}-grid", rotate_via=f"{exchange}-master", sub_account=sub, auto=True
    )

    return Setup(admin, mock, engine_of(admin), master_fields, first.api_key)
