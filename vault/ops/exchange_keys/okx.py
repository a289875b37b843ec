"""OKX: a master key with the Trade permission, bound to IPs, manages its
sub-accounts' keys (``/api/v5/users/subaccount/apikey``). A sub-account key may hold
``read_only`` and ``trade``; OKX grants no withdraw through this call. The API
passphrase (8 to 32 characters with a lower-case and an upper-case letter, a digit
and a special character) is chosen by the caller."""

from __future__ import annotations

from typing import Any

from vault.errors import InvalidInput
from vault.ops.exchange_keys.calls import call
from vault.ops.exchange_keys.model import (
    ListedKey,
    NewKey,
    SubAccountKeys,
    normalized,
    split,
)
from vault.secret import Secret

_PERMISSIONS = {"read_only": "read", "trade": "trade", "withdraw": "withdraw"}


class OkxKeys(SubAccountKeys):
    exchange = "okx"
    sub_account_by = "name"
    # OKX wants a special character; these three need no escaping anywhere.
    passphrase_rules = (32, "-_.")

    def list_keys(self, client: Any, sub_account: str) -> list[ListedKey]:
        def action() -> list[ListedKey]:
            rows = client.private_get_users_subaccount_apikey({"subAcct": sub_account})["data"]
            return [
                ListedKey(
                    str(row["apiKey"]), str(row["label"]), split(row["perm"]), split(row["ip"])
                )
                for row in rows
            ]

        return call(self.exchange, "the key listing", action)

    def create_key(
        self,
        client: Any,
        sub_account: str,
        label: str,
        grants: tuple[str, ...],
        ips: tuple[str, ...],
        passphrase: Secret | None,
    ) -> NewKey:
        if not ips:
            raise InvalidInput("exvault creates no key without an IP whitelist")
        if passphrase is None:
            raise InvalidInput("a key of this exchange needs a passphrase")

        def action() -> NewKey:
            answer = client.private_post_users_subaccount_apikey(
                {
                    "subAcct": sub_account,
                    "label": label,
                    "passphrase": passphrase.reveal(),
                    "perm": ",".join(grants),
                    "ip": ",".join(ips),
                }
            )
            row = answer["data"][0]
            return NewKey(str(row["apiKey"]), Secret(str(row["secretKey"])), passphrase, label)

        return call(self.exchange, "the key creation", action, unknown=True)

    def delete_key(
        self, client: Any, sub_account: str, api_key: str, passphrase: Secret | None
    ) -> None:
        def action() -> object:
            return client.private_post_users_subaccount_delete_apikey(
                {"subAcct": sub_account, "apiKey": api_key}
            )

        call(self.exchange, "the key deletion", action, unknown=True)

    def permissions(self, grants: tuple[str, ...]) -> tuple[str, ...]:
        return normalized(_PERMISSIONS.get(grant) for grant in grants)

    def introspect(self, client: Any) -> None:
        def action() -> object:
            return client.private_get_account_config()

        call(self.exchange, "the new key's check", action)
