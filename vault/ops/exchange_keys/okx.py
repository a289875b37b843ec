"""OKX: a master key with the Trade permission, bound to IPs, manages its
sub-accounts' keys (``/api/v5/users/subaccount/apikey``). A sub-account key may hold
``read_only`` and ``trade``; OKX grants no withdraw through this call. The API
passphrase (8 to 32 characters with a lower-case and an upper-case letter, a digit
and a special character) is chosen by the caller."""

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

_PERMISSIONS = {"read_only": "read", "trade": "trade", "withdraw": "withdraw"}


class OkxKeys(SubAccountKeys):
    exchange = "okx"
    sub_account_by = "name"
    # OKX wants a special character; these three need no escaping anywhere.
    passphrase_rules = (32, "-_.")

    def list_keys(self, client: SignedRequests, sub_account: str) -> list[ListedKey]:
        what = "the key listing"
        answer = client.request(
            what, "private_get_users_subaccount_apikey", {"subAcct": sub_account}
        )
        return parsed(
            what,
            lambda: [
                ListedKey(
                    str(row["apiKey"]), str(row["label"]), split(row["perm"]), split(row["ip"])
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
            "private_post_users_subaccount_apikey",
            {
                "subAcct": sub_account,
                "label": label,
                "passphrase": passphrase.reveal(),
                "perm": ",".join(grants),
                "ip": ",".join(ips),
            },
            unknown=True,
        )
        row = parsed(what, lambda: answer["data"][0], unknown=True)
        return parsed(
            what,
            lambda: NewKey(str(row["apiKey"]), Secret(str(row["secretKey"])), passphrase, label),
            unknown=True,
        )

    def delete_key(
        self, client: SignedRequests, sub_account: str, api_key: str, passphrase: Secret | None
    ) -> None:
        client.request(
            "the key deletion",
            "private_post_users_subaccount_delete_apikey",
            {"subAcct": sub_account, "apiKey": api_key},
            unknown=True,
        )

    def permissions(self, grants: tuple[str, ...]) -> tuple[str, ...]:
        return normalized(_PERMISSIONS.get(grant) for grant in grants)
