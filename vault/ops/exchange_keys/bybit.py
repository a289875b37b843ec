"""Bybit: a master key holding "Account Transfer", "Subaccount Transfer" or
"Withdrawal" manages its sub-accounts' keys (``/v5/user/create-sub-api``...). A
sub-account is named by its uid; keys have no passphrase. Grants are kept as
``Group:Name`` (``Spot:SpotTrade``), and ``readOnly`` as the grant ``readOnly``."""

from __future__ import annotations

from functools import partial
from typing import Any

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

READ_ONLY = "readOnly"
_GROUPS = {
    "ContractTrade": "futures",
    "Derivatives": "futures",
    "Options": "futures",
    "Spot": "trade",
    "Exchange": "trade",
    "Earn": "transfer",
}
_WALLET = {
    "AccountTransfer": "transfer",
    "SubMemberTransfer": "transfer",
    "SubMemberTransferList": "transfer",
    "Withdraw": "withdraw",
}


def grants_of(row: dict[str, Any]) -> tuple[str, ...]:
    """A listed key's grants: ``Group:Name`` for each permission, and ``readOnly``."""
    grants = {
        f"{group}:{name}"
        for group, names in dict(row.get("permissions") or {}).items()
        for name in names or ()
    }
    if int(row.get("readOnly") or 0) == 1:
        grants.add(READ_ONLY)
    return tuple(sorted(grants))


def _ips(value: object) -> tuple[str, ...]:
    # Bybit lists an unbound key's whitelist as ["*"].
    return tuple(ip for ip in split(value) if ip != "*")


class BybitKeys(SubAccountKeys):
    exchange = "bybit"
    sub_account_by = "uid"

    def list_keys(self, client: SignedRequests, sub_account: str) -> list[ListedKey]:
        what = "the key listing"
        keys: list[ListedKey] = []
        cursor = ""
        for _ in range(100):  # a bound on pages: a cursor that never ends
            params: dict[str, object] = {"subMemberId": sub_account, "limit": 20}
            if cursor:
                params["cursor"] = cursor
            answer = client.request(what, "private_get_v5_user_sub_apikeys", params)
            rows, cursor = parsed(what, partial(_page, answer))
            keys.extend(rows)
            if not cursor:
                break
        return keys

    def _create(
        self,
        client: SignedRequests,
        sub_account: str,
        label: str,
        grants: tuple[str, ...],
        ips: tuple[str, ...],
        passphrase: Secret | None,
    ) -> NewKey:
        permissions: dict[str, list[str]] = {}
        for grant in grants:
            if grant != READ_ONLY:
                group, _, name = grant.partition(":")
                permissions.setdefault(group, []).append(name)
        what = "the key creation"
        answer = client.request(
            what,
            "private_post_v5_user_create_sub_api",
            {
                "subuid": int(sub_account),
                "note": label,
                "readOnly": 1 if READ_ONLY in grants else 0,
                "ips": ",".join(ips),
                "permissions": permissions,
            },
            unknown=True,
        )
        return parsed(
            what,
            lambda: NewKey(
                str(answer["result"]["apiKey"]),
                Secret(str(answer["result"]["secret"])),
                None,
                label,
            ),
            unknown=True,
        )

    def delete_key(
        self, client: SignedRequests, sub_account: str, api_key: str, passphrase: Secret | None
    ) -> None:
        client.request(
            "the key deletion",
            "private_post_v5_user_delete_sub_api",
            {"apikey": api_key},
            unknown=True,
        )

    def permissions(self, grants: tuple[str, ...]) -> tuple[str, ...]:
        names: list[str | None] = ["read"]
        for grant in grants:
            group, _, name = grant.partition(":")
            names.append(_WALLET.get(name) if group == "Wallet" else _GROUPS.get(group))
        if READ_ONLY in grants:
            names = [n for n in names if n in ("read",)]
        return normalized(names)


def _page(answer: Any) -> tuple[list[ListedKey], str]:
    """One page of a key listing: its keys and the next page's cursor ("": the last)."""
    result = answer["result"]
    keys = [
        ListedKey(str(row["apiKey"]), str(row["note"]), grants_of(row), _ips(row.get("ips")))
        for row in result["result"]
    ]
    return keys, str(result.get("nextPageCursor") or "")
