"""KuCoin: a master key manages its sub-accounts' keys (``/api/v1/sub/api-key``),
naming a sub-account by its name. The caller chooses the key's passphrase (7 to 32
characters, no spaces), which deleting the key requires again."""

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

_PERMISSIONS = {
    "General": "read",
    "Spot": "trade",
    "Margin": "margin",
    "Futures": "futures",
    "InnerTransfer": "transfer",
    "Transfer": "transfer",
    "Withdrawal": "withdraw",
}


class KucoinKeys(SubAccountKeys):
    exchange = "kucoin"
    sub_account_by = "name"
    # Letters and digits only: ccxt sends the deletion's passphrase unencoded.
    passphrase_rules = (32, "")

    def list_keys(self, client: Any, sub_account: str) -> list[ListedKey]:
        def action() -> list[ListedKey]:
            rows = client.private_get_sub_api_key({"subName": sub_account})["data"]
            return [
                ListedKey(
                    str(row["apiKey"]),
                    str(row["remark"]),
                    split(row["permission"]),
                    split(row["ipWhitelist"]),
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
            data = client.private_post_sub_api_key(
                {
                    "subName": sub_account,
                    "remark": label,
                    "passphrase": passphrase.reveal(),
                    "permission": ",".join(grants),
                    "ipWhitelist": ",".join(ips),
                    "expire": "-1",
                }
            )["data"]
            return NewKey(str(data["apiKey"]), Secret(str(data["apiSecret"])), passphrase, label)

        return call(self.exchange, "the key creation", action, unknown=True)

    def delete_key(
        self, client: Any, sub_account: str, api_key: str, passphrase: Secret | None
    ) -> None:
        if passphrase is None:
            raise InvalidInput("deleting a KuCoin key needs its passphrase")

        def action() -> object:
            return client.private_delete_sub_api_key(
                {"subName": sub_account, "apiKey": api_key, "passphrase": passphrase.reveal()}
            )

        call(self.exchange, "the key deletion", action, unknown=True)

    def permissions(self, grants: tuple[str, ...]) -> tuple[str, ...]:
        return normalized(_PERMISSIONS.get(grant) for grant in grants)

    def introspect(self, client: Any) -> None:
        def action() -> object:
            return client.private_get_user_api_key()

        call(self.exchange, "the new key's check", action)
