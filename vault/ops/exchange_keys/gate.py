"""Gate: a master key manages its sub-accounts' keys
(``/api/v4/sub_accounts/{user_id}/keys``), naming a sub-account by its uid. Keys have
no passphrase. Grants are kept as the permission's name, with ``:read`` for a
read-only one (``spot:read``); the ``wallet`` permission covers withdrawals."""

from __future__ import annotations

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

_WRITE = {
    "wallet": "withdraw",
    "spot": "trade",
    "margin": "margin",
    "futures": "futures",
    "delivery": "futures",
    "options": "futures",
    "unified": "trade",
    "earn": "transfer",
    "loan": "margin",
    "account": "subaccount",
    "copy": "trade",
}


def grants_of(perms: object) -> tuple[str, ...]:
    """``[{"name": "spot", "read_only": true}]`` as ``("spot:read",)``."""
    return tuple(
        sorted(
            str(perm["name"]) + (":read" if perm.get("read_only") else "")
            for perm in (perms if isinstance(perms, list) else [])
        )
    )


class GateKeys(SubAccountKeys):
    exchange = "gate"
    sub_account_by = "uid"

    def list_keys(self, client: SignedRequests, sub_account: str) -> list[ListedKey]:
        what = "the key listing"
        rows = client.request(
            what, "private_subaccounts_get_sub_accounts_user_id_keys", {"user_id": sub_account}
        )
        return parsed(
            what,
            lambda: [
                ListedKey(
                    str(row["key"]),
                    str(row["name"]),
                    grants_of(row["perms"]),
                    split(row["ip_whitelist"]),
                )
                for row in rows
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
        perms = [
            {"name": grant.partition(":")[0], "read_only": grant.endswith(":read")}
            for grant in grants
        ]
        what = "the key creation"
        row = client.request(
            what,
            "private_subaccounts_post_sub_accounts_user_id_keys",
            {"user_id": sub_account, "name": label, "perms": perms, "ip_whitelist": list(ips)},
            unknown=True,
        )
        return parsed(
            what,
            lambda: NewKey(str(row["key"]), Secret(str(row["secret"])), None, label),
            unknown=True,
        )

    def delete_key(
        self, client: SignedRequests, sub_account: str, api_key: str, passphrase: Secret | None
    ) -> None:
        client.request(
            "the key deletion",
            "private_subaccounts_delete_sub_accounts_user_id_keys_key",
            {"user_id": sub_account, "key": api_key},
            unknown=True,
        )

    def permissions(self, grants: tuple[str, ...]) -> tuple[str, ...]:
        names: list[str | None] = ["read"]
        for grant in grants:
            name, _, mode = grant.partition(":")
            if mode != "read":
                names.append(_WRITE.get(name))
        return normalized(names)
