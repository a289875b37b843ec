"""KuCoin: a master key manages its sub-accounts' keys (``/api/v1/sub/api-key``),
naming a sub-account by its name. The caller chooses the key's passphrase (7 to 32
characters, no spaces), which deleting the key requires again."""

from __future__ import annotations

from vault.errors import InvalidInput
from vault.ops.exchange_keys.model import (
    ListedKey,
    NewKey,
    SignedRequests,
    SubAccountKeys,
    normalized,
    parsed,
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

    def list_keys(self, client: SignedRequests, sub_account: str) -> list[ListedKey]:
        what = "the key listing"
        answer = client.request(what, "private_get_sub_api_key", {"subName": sub_account})
        return parsed(
            what,
            lambda: [
                ListedKey(
                    str(row["apiKey"]),
                    str(row["remark"]),
                    split(row["permission"]),
                    split(row["ipWhitelist"]),
                )
                for row in answer["data"]
            ],
        )

    def _create(
        self,
        client: SignedRequests,
        sub_account: str,
        label: str,
        grants: tuple[str, ...],
        ips: tuple[str, ...],
        passphrase: Secret | None,
    ) -> NewKey:
        if passphrase is None:
            raise InvalidInput("a key of this exchange needs a passphrase")
        what = "the key creation"
        answer = client.request(
            what,
            "private_post_sub_api_key",
            {
                "subName": sub_account,
                "remark": label,
                "passphrase": passphrase.reveal(),
                "permission": ",".join(grants),
                "ipWhitelist": ",".join(ips),
                "expire": "-1",
            },
            unknown=True,
        )
        return parsed(
            what,
            lambda: NewKey(
                str(answer["data"]["apiKey"]),
                Secret(str(answer["data"]["apiSecret"])),
                passphrase,
                label,
            ),
            unknown=True,
        )

    def delete_key(
        self, client: SignedRequests, sub_account: str, api_key: str, passphrase: Secret | None
    ) -> None:
        if passphrase is None:
            raise InvalidInput("deleting a KuCoin key needs its passphrase")
        client.request(
            "the key deletion",
            "private_delete_sub_api_key",
            {"subName": sub_account, "apiKey": api_key, "passphrase": passphrase.reveal()},
            unknown=True,
        )

    def permissions(self, grants: tuple[str, ...]) -> tuple[str, ...]:
        return normalized(_PERMISSIONS.get(grant) for grant in grants)
