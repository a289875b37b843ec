"""The sub-account key endpoints of OKX, Bybit, KuCoin and Gate: a master account's
key creates, changes, lists and deletes the API keys of its sub-accounts (what
automated rotation calls).

Each is a private route of its exchange's dialect, so the request is authenticated
and its signature verified as every other; then the key must belong to a master
account and hold the exchange's sub-account management right (:data:`MANAGER_RIGHTS`;
OKX also demands that the master key be bound to IPs), and the sub-account must be one
of that master's. Field names, answer shapes, label and passphrase rules and error
codes follow each exchange's documentation. Gate has no dialect of its own for the
introspection endpoints, so this module adds one (its v4 signature recipe included).

A created key gets ``label`` (the exchange's label/note/remark/name), its passphrase,
its permissions in the exchange's vocabulary, its whitelist and the creation time, and
answers to every other endpoint like any key a test registers.

Faults on create and delete are the mock's usual ones, by path:
``Fault.server_error(path=OKX_CREATE)`` (the key is not created) or
``Fault.delay(10, path=OKX_CREATE)`` (the key IS created, after the client gave up:
the case a rotation must clean up).

Importing this module installs the routes (``server.py`` imports it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import string
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from tests.mock_exchange import signing
from tests.mock_exchange.exchanges import (
    DIALECTS,
    Claim,
    Dialect,
    PrivateRoute,
    Refused,
    Request,
    _int,
    _uid,
)
from tests.mock_exchange.registry import Account, ApiKey, ExchangeState

OKX_CREATE = "/api/v5/users/subaccount/apikey"
OKX_MODIFY = "/api/v5/users/subaccount/modify-apikey"
OKX_DELETE = "/api/v5/users/subaccount/delete-apikey"
BYBIT_CREATE = "/v5/user/create-sub-api"
BYBIT_UPDATE = "/v5/user/update-sub-api"
BYBIT_DELETE = "/v5/user/delete-sub-api"
BYBIT_LIST = "/v5/user/sub-apikeys"
KUCOIN_KEYS = "/api/v1/sub/api-key"
KUCOIN_UPDATE = "/api/v1/sub/api-key/update"
GATE_KEYS = "/api/v4/sub_accounts/{user_id}/keys"
GATE_KEY = "/api/v4/sub_accounts/{user_id}/keys/{key}"

MANAGER_RIGHTS: dict[str, frozenset[str]] = {
    # OKX: "Permission: Trade", master account only, and the key must be IP-bound.
    "okx": frozenset({"trade"}),
    # Bybit: any of "Account Transfer", "Subaccount Transfer", "Withdrawal".
    "bybit": frozenset({"Wallet:AccountTransfer", "Wallet:SubMemberTransfer", "Wallet:Withdraw"}),
    # KuCoin: the sub-account API endpoints need the General permission of a master key.
    "kucoin": frozenset({"General"}),
    # Gate: sub-account management needs the read-write "account" permission.
    "gate": frozenset({"account"}),
}
"""The permission (any one of them) a master key needs to manage sub-account keys."""

SAMPLE_MASTER = Account("1001", "main")
SAMPLE_SUB = Account("2002", "gridsub", parent="1001")
SAMPLE_IP = "203.0.113.7"
SAMPLE_MASTER_RIGHTS: dict[str, tuple[str, ...]] = {
    "okx": ("read_only", "trade"),
    "bybit": ("Wallet:AccountTransfer",),
    "kucoin": ("General",),
    "gate": ("account",),
}
"""For tests: a master key's permissions that manage sub-account keys, per exchange."""
SAMPLE_GRANTS: dict[str, tuple[str, ...]] = {
    "okx": ("read_only", "trade"),
    "bybit": ("Spot:SpotTrade",),
    "kucoin": ("General", "Spot"),
    "gate": ("spot",),
}
"""For tests: a trading sub-account key's permissions, per exchange."""

OKX_PERMS = ("read_only", "trade")
"""What OKX lets a master grant a sub-account key through the API (no withdraw)."""
KUCOIN_PERMS = ("General", "Spot", "Futures", "Margin", "InnerTransfer")
BYBIT_PERMS = {
    "ContractTrade": ("Order", "Position"),
    "Spot": ("SpotTrade",),
    "Wallet": ("AccountTransfer", "SubMemberTransferList"),
    "Options": ("OptionsTrade",),
    "Derivatives": ("DerivativesTrade",),
    "Exchange": ("ExchangeHistory",),
    "Earn": ("Earn",),
}
GATE_PERMS = (
    "wallet",
    "spot",
    "futures",
    "delivery",
    "earn",
    "options",
    "account",
    "loan",
    "margin",
    "unified",
    "copy",
)
MAX_IPS = 20
KUCOIN_EXPIRY = ("-1", "30", "90", "180", "360")
KUCOIN_REMARK_MAX = 24
OKX_LABEL_MAX = 50
_OKX_SPECIAL = set(string.punctuation)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.text or "{}")
    except ValueError:
        raise Refused("bad_request") from None
    if not isinstance(body, dict):
        raise Refused("bad_request")
    return body


def _ips(text: object) -> tuple[str, ...]:
    if isinstance(text, list):
        ips = tuple(str(ip).strip() for ip in text if str(ip).strip())
    else:
        ips = tuple(ip.strip() for ip in str(text or "").split(",") if ip.strip())
    if len(ips) > MAX_IPS:
        raise Refused("bad_request", "ips")
    return ips


def _master(state: ExchangeState, key: ApiKey) -> None:
    """Refuse a key that is not a master's or lacks the management right."""
    rights = MANAGER_RIGHTS[state.exchange]
    if key.account.is_sub or not rights.intersection(key.permissions):
        raise Refused("forbidden")
    if state.exchange == "okx" and not key.ip_whitelist:
        raise Refused("forbidden", "ip")


def _sub_account(state: ExchangeState, master: ApiKey, ident: object, *, by: str) -> Account:
    """The master's sub-account named (``by="name"``) or numbered (``by="uid"``)."""
    with state.lock:
        for account in state.accounts.values():
            if account.parent == master.account.uid and str(getattr(account, by)) == str(ident):
                return account
    raise Refused("bad_request", "sub")


def _sub_key(state: ExchangeState, account: Account, api_key: object) -> ApiKey:
    key = state.key(str(api_key))
    if key is None or key.account.uid != account.uid:
        raise Refused("bad_request", "key")
    return key


def _delete(state: ExchangeState, key: ApiKey) -> None:
    with state.lock:
        state.keys.pop(key.api_key, None)


def _new_key(
    state: ExchangeState,
    account: Account,
    api_key: str,
    secret: str,
    *,
    label: str,
    permissions: tuple[str, ...],
    ips: tuple[str, ...],
    passphrase: str | None = None,
    fields: dict[str, Any] | None = None,
) -> ApiKey:
    return state.add_key(
        ApiKey(
            api_key,
            secret,
            account,
            passphrase=passphrase,
            permissions=permissions,
            ip_whitelist=ips,
            label=label,
            created_at=_now(),
            fields=fields or {},
        )
    )


# ============================================================================ okx


def okx_passphrase_ok(passphrase: str) -> bool:
    """OKX: 8 to 32 characters with at least one lower-case and one upper-case letter,
    one digit and one special character."""
    return (
        8 <= len(passphrase) <= 32
        and any(c.islower() for c in passphrase)
        and any(c.isupper() for c in passphrase)
        and any(c.isdigit() for c in passphrase)
        and any(c in _OKX_SPECIAL for c in passphrase)
        and not any(c.isspace() for c in passphrase)
    )


def _okx_perms(text: object) -> tuple[str, ...]:
    perms = tuple(p.strip() for p in str(text or "read_only").split(",") if p.strip())
    if not perms or any(p not in OKX_PERMS for p in perms):
        raise Refused("bad_request", "perm")
    return tuple(p for p in OKX_PERMS if p in perms)


def _okx_view(key: ApiKey, *, secret: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "subAcct": key.account.name,
        "label": key.label,
        "apiKey": key.api_key,
        "perm": ",".join(key.permissions),
        "ip": ",".join(key.ip_whitelist),
        "ts": str(key.created_ms()),
    }
    if secret:
        view["secretKey"] = key.secret
        view["passphrase"] = key.passphrase
    return view


def _okx_create(state: ExchangeState, request: Request, master: ApiKey) -> object:
    _master(state, master)
    body = _json_body(request)
    account = _sub_account(state, master, body.get("subAcct"), by="name")
    label = str(body.get("label") or "")
    if not 1 <= len(label) <= OKX_LABEL_MAX:
        raise Refused("bad_request", "label")
    if any(key.label == label for key in state.keys_of(account.uid)):
        raise Refused("bad_request", "label-taken")
    passphrase = str(body.get("passphrase") or "")
    if not okx_passphrase_ok(passphrase):
        raise Refused("bad_request", "passphrase")
    key = _new_key(
        state,
        account,
        str(uuid.uuid4()),
        secrets.token_hex(16).upper(),
        label=label,
        passphrase=passphrase,
        permissions=_okx_perms(body.get("perm")),
        ips=_ips(body.get("ip")),
    )
    return [_okx_view(key, secret=True)]


def _okx_modify(state: ExchangeState, request: Request, master: ApiKey) -> object:
    _master(state, master)
    body = _json_body(request)
    account = _sub_account(state, master, body.get("subAcct"), by="name")
    key = _sub_key(state, account, body.get("apiKey"))
    with state.lock:
        if body.get("label"):
            key.label = str(body["label"])[:OKX_LABEL_MAX]
        if body.get("perm"):
            key.permissions = _okx_perms(body["perm"])
        if "ip" in body:
            key.ip_whitelist = _ips(body["ip"])
    return [_okx_view(key)]


def _okx_delete(state: ExchangeState, request: Request, master: ApiKey) -> object:
    _master(state, master)
    body = _json_body(request)
    account = _sub_account(state, master, body.get("subAcct"), by="name")
    _delete(state, _sub_key(state, account, body.get("apiKey")))
    return [{"subAcct": account.name}]


def _okx_list(state: ExchangeState, request: Request, master: ApiKey) -> object:
    _master(state, master)
    params = dict(request.query_params())
    account = _sub_account(state, master, params.get("subAcct"), by="name")
    keys = state.keys_of(account.uid)
    if params.get("apiKey"):
        keys = [key for key in keys if key.api_key == params["apiKey"]]
    return [_okx_view(key) for key in keys]


def install_okx(dialect: Dialect) -> None:
    dialect.errors.update(
        {
            "forbidden": (401, "50030", "No permission to use this API"),
            "forbidden:ip": (
                401,
                "50030",
                "No permission to use this API: the master key must be bound to IP addresses",
            ),
            "bad_request:sub": (400, "59510", "Sub-account does not exist"),
            "bad_request:key": (400, "59506", "APIKey does not exist"),
            "bad_request:label": (400, "51000", "Parameter label error"),
            "bad_request:label-taken": (400, "59505", "Label already exists"),
            "bad_request:passphrase": (400, "51000", "Parameter passphrase error"),
            "bad_request:perm": (400, "51000", "Parameter perm error"),
            "bad_request:ips": (400, "51000", "Parameter ip error"),
        }
    )
    dialect.private.update(
        {
            ("POST", OKX_CREATE): _okx_create,
            ("POST", OKX_MODIFY): _okx_modify,
            ("POST", OKX_DELETE): _okx_delete,
            ("GET", OKX_CREATE): _okx_list,
        }
    )


# ============================================================================ bybit


def _bybit_perms(value: object) -> tuple[str, ...]:
    if not isinstance(value, dict):
        raise Refused("bad_request", "permissions")
    perms: list[str] = []
    for group, names in value.items():
        if group not in BYBIT_PERMS or not isinstance(names, list):
            raise Refused("bad_request", "permissions")
        for name in names:
            if name not in BYBIT_PERMS[group]:
                raise Refused("bad_request", "permissions")
            perms.append(f"{group}:{name}")
    return tuple(perms)


def _bybit_groups(key: ApiKey) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {group: [] for group in BYBIT_PERMS}
    for permission in key.permissions:
        group, _, name = permission.partition(":")
        groups.setdefault(group, []).append(name)
    return groups


def _bybit_view(key: ApiKey, *, secret: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": str(int(hashlib.sha256(key.api_key.encode()).hexdigest()[:7], 16)),
        "note": key.label,
        "apiKey": key.api_key,
        "readOnly": key.fields.get("readOnly", 0),
        "secret": key.secret if secret else "",
        "permissions": _bybit_groups(key),
    }
    if not secret:
        view.update(
            {
                "ips": list(key.ip_whitelist) or ["*"],
                "status": 1,
                "type": 1,
                "createdAt": key.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "expiredAt": "",
                "deadlineDay": -1,
                "flag": "hmac",
            }
        )
    return view


def _bybit_read_only(body: dict[str, Any]) -> int:
    read_only = body.get("readOnly")
    if read_only not in (0, 1):
        raise Refused("bad_request", "readOnly")
    return int(read_only)


def _bybit_ips(value: object) -> tuple[str, ...]:
    ips = _ips(value)
    return () if ips == ("*",) else ips


def _bybit_create(state: ExchangeState, request: Request, master: ApiKey) -> object:
    _master(state, master)
    body = _json_body(request)
    if not isinstance(body.get("subuid"), int):
        raise Refused("bad_request", "sub")
    account = _sub_account(state, master, body["subuid"], by="uid")
    key = _new_key(
        state,
        account,
        "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(18)),
        "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36)),
        label=str(body.get("note") or ""),
        permissions=_bybit_perms(body.get("permissions")),
        ips=_bybit_ips(body.get("ips")),
        fields={"readOnly": _bybit_read_only(body)},
    )
    return _bybit_view(key, secret=True)


def _bybit_master_sub_key(state: ExchangeState, master: ApiKey, body: dict[str, Any]) -> ApiKey:
    key = state.key(str(body.get("apikey") or ""))
    if key is None or key.account.parent != master.account.uid:
        raise Refused("bad_request", "key")
    return key


def _bybit_update(state: ExchangeState, request: Request, master: ApiKey) -> object:
    _master(state, master)
    body = _json_body(request)
    key = _bybit_master_sub_key(state, master, body)
    with state.lock:
        if "readOnly" in body:
            key.fields["readOnly"] = _bybit_read_only(body)
        if "ips" in body:
            key.ip_whitelist = _bybit_ips(body["ips"])
        if "permissions" in body:
            key.permissions = _bybit_perms(body["permissions"])
    view = _bybit_view(key)
    return {name: view[name] for name in ("id", "note", "apiKey", "readOnly", "permissions", "ips")}


def _bybit_delete(state: ExchangeState, request: Request, master: ApiKey) -> object:
    _master(state, master)
    _delete(state, _bybit_master_sub_key(state, master, _json_body(request)))
    return {}


def _bybit_list(state: ExchangeState, request: Request, master: ApiKey) -> object:
    _master(state, master)
    params = dict(request.query_params())
    account = _sub_account(state, master, params.get("subMemberId"), by="uid")
    return {
        "result": [_bybit_view(key) for key in state.keys_of(account.uid)],
        "nextPageCursor": "",
    }


def install_bybit(dialect: Dialect) -> None:
    dialect.errors.update(
        {
            "forbidden": (
                200,
                10005,
                "Permission denied, please check your API key permissions.",
            ),
            "forbidden:ip": (
                200,
                10005,
                "Permission denied, please check your API key permissions.",
            ),
            "bad_request:sub": (200, 10001, "params error: subuid"),
            "bad_request:key": (200, 10001, "params error: apikey"),
            "bad_request:permissions": (200, 10001, "params error: permissions"),
            "bad_request:readOnly": (200, 10001, "params error: readOnly"),
            "bad_request:ips": (200, 10001, "params error: ips"),
        }
    )
    dialect.private.update(
        {
            ("POST", BYBIT_CREATE): _bybit_create,
            ("POST", BYBIT_UPDATE): _bybit_update,
            ("POST", BYBIT_DELETE): _bybit_delete,
            ("GET", BYBIT_LIST): _bybit_list,
        }
    )


# ============================================================================ kucoin


def kucoin_passphrase_ok(passphrase: str) -> bool:
    """KuCoin: 7 to 32 characters, no spaces."""
    return 7 <= len(passphrase) <= 32 and not any(c.isspace() for c in passphrase)


def _kucoin_perms(text: object) -> tuple[str, ...]:
    perms = {p.strip() for p in str(text or "General").split(",") if p.strip()}
    if any(p not in KUCOIN_PERMS for p in perms):
        raise Refused("bad_request", "permission")
    perms.add("General")  # every KuCoin key has it
    return tuple(p for p in KUCOIN_PERMS if p in perms)


def _kucoin_view(key: ApiKey, *, secret: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "subName": key.account.name,
        "remark": key.label,
        "apiKey": key.api_key,
        "permission": ",".join(key.permissions),
        "ipWhitelist": ",".join(key.ip_whitelist),
        "createdAt": key.created_ms(),
    }
    if secret:
        view["apiSecret"] = key.secret
        view["passphrase"] = key.passphrase
        view["apiVersion"] = 3
    return view


def _kucoin_params(request: Request) -> dict[str, Any]:
    if request.method in ("GET", "DELETE"):
        return dict(request.query_params())
    return _json_body(request)


def _kucoin_checked_key(state: ExchangeState, master: ApiKey, params: dict[str, Any]) -> ApiKey:
    account = _sub_account(state, master, params.get("subName"), by="name")
    key = _sub_key(state, account, params.get("apiKey"))
    if not hmac.compare_digest(str(params.get("passphrase") or ""), key.passphrase or ""):
        raise Refused("bad_request", "passphrase-wrong")
    return key


def _kucoin_create(state: ExchangeState, request: Request, master: ApiKey) -> object:
    _master(state, master)
    body = _json_body(request)
    account = _sub_account(state, master, body.get("subName"), by="name")
    remark = str(body.get("remark") or "")
    if not 1 <= len(remark) <= KUCOIN_REMARK_MAX:
        raise Refused("bad_request", "remark")
    passphrase = str(body.get("passphrase") or "")
    if not kucoin_passphrase_ok(passphrase):
        raise Refused("bad_request", "passphrase")
    if str(body.get("expire", "-1")) not in KUCOIN_EXPIRY:
        raise Refused("bad_request")
    key = _new_key(
        state,
        account,
        secrets.token_hex(12),
        str(uuid.uuid4()),
        label=remark,
        passphrase=passphrase,
        permissions=_kucoin_perms(body.get("permission")),
        ips=_ips(body.get("ipWhitelist")),
    )
    return _kucoin_view(key, secret=True)


def _kucoin_update(state: ExchangeState, request: Request, master: ApiKey) -> object:
    _master(state, master)
    body = _json_body(request)
    key = _kucoin_checked_key(state, master, body)
    with state.lock:
        if "permission" in body:
            key.permissions = _kucoin_perms(body["permission"])
        if "ipWhitelist" in body:
            key.ip_whitelist = _ips(body["ipWhitelist"])
    view = _kucoin_view(key)
    return {name: view[name] for name in ("subName", "apiKey", "permission", "ipWhitelist")}


def _kucoin_delete(state: ExchangeState, request: Request, master: ApiKey) -> object:
    _master(state, master)
    key = _kucoin_checked_key(state, master, _kucoin_params(request))
    _delete(state, key)
    return {"subName": key.account.name, "apiKey": key.api_key}


def _kucoin_list(state: ExchangeState, request: Request, master: ApiKey) -> object:
    _master(state, master)
    params = _kucoin_params(request)
    account = _sub_account(state, master, params.get("subName"), by="name")
    keys = state.keys_of(account.uid)
    if params.get("apiKey"):
        keys = [key for key in keys if key.api_key == params["apiKey"]]
    return [_kucoin_view(key) for key in keys]


def install_kucoin(dialect: Dialect) -> None:
    dialect.errors.update(
        {
            "forbidden": (
                403,
                "400007",
                "Access Denied -- Your api key does not have sufficient permissions to "
                "access the URI",
            ),
            "bad_request:sub": (400, "400100", "Sub account does not exist"),
            "bad_request:key": (400, "400100", "apiKey does not exist"),
            "bad_request:remark": (400, "400100", "remark length must be 1-24"),
            "bad_request:passphrase": (
                400,
                "400100",
                "passphrase must be 7-32 characters without spaces",
            ),
            "bad_request:passphrase-wrong": (400, "400100", "passphrase error"),
            "bad_request:permission": (400, "400100", "permission error"),
            "bad_request:ips": (400, "400100", "ipWhitelist at most 20 addresses"),
        }
    )
    dialect.private.update(
        {
            ("POST", KUCOIN_KEYS): _kucoin_create,
            ("POST", KUCOIN_UPDATE): _kucoin_update,
            ("DELETE", KUCOIN_KEYS): _kucoin_delete,
            ("GET", KUCOIN_KEYS): _kucoin_list,
        }
    )


# ============================================================================ gate


def gate_signature(secret: str, method: str, path: str, query: str, body: str, ts: str) -> str:
    """Gate API v4 ``SIGN``: hex HMAC-SHA512 of METHOD, path, query string, the hex
    SHA-512 of the body and the timestamp (seconds), joined by newlines."""
    body_hash = hashlib.sha512(body.encode()).hexdigest()
    payload = "\n".join([method, path, query, body_hash, ts])
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha512).hexdigest()


class PatternRoutes(dict[tuple[str, str], PrivateRoute]):
    """Routes whose paths may hold ``{name}`` segments (Gate puts ids in its paths)."""

    def _match(self, route: object) -> tuple[str, str] | None:
        if not isinstance(route, tuple) or len(route) != 2:
            return None
        method, path = route
        for pattern_method, pattern in dict.keys(self):
            regex = "^" + re.sub(r"\{[a-z_]+\}", "[^/]+", pattern) + "$"
            if pattern_method == method and re.match(regex, str(path)):
                return (pattern_method, pattern)
        return None

    def __contains__(self, route: object) -> bool:
        return self._match(route) is not None

    def __getitem__(self, route: tuple[str, str]) -> PrivateRoute:
        match = self._match(route)
        if match is None:
            raise KeyError(route)
        return dict.__getitem__(self, match)


def _path_parts(request: Request) -> list[str]:
    # /api/v4/sub_accounts/{user_id}/keys[/{key}]
    return request.path.split("/")[3:]


def _gate_perms(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Refused("bad_request", "perms")
    perms: list[str] = []
    for perm in value:
        if not isinstance(perm, dict) or perm.get("name") not in GATE_PERMS:
            raise Refused("bad_request", "perms")
        perms.append(perm["name"] + (":read" if perm.get("read_only") else ""))
    return tuple(perms)


def _gate_view(key: ApiKey, *, secret: bool = False) -> dict[str, Any]:
    seconds = int(key.created_at.timestamp())
    return {
        "user_id": _uid(key.account.uid),
        "mode": 1,
        "name": key.label,
        "perms": [
            {"name": perm.partition(":")[0], "read_only": perm.endswith(":read")}
            for perm in key.permissions
        ],
        "ip_whitelist": list(key.ip_whitelist),
        "key": key.api_key,
        "secret": key.secret if secret else "",
        "state": 1,
        "created_at": seconds,
        "updated_at": seconds,
        "last_access": 0,
    }


def _gate_account(state: ExchangeState, request: Request, master: ApiKey) -> Account:
    _master(state, master)
    return _sub_account(state, master, _path_parts(request)[1], by="uid")


def _gate_keys(state: ExchangeState, request: Request, master: ApiKey) -> object:
    account = _gate_account(state, request, master)
    if request.method == "GET":
        return [_gate_view(key) for key in state.keys_of(account.uid)]
    body = _json_body(request)
    key = _new_key(
        state,
        account,
        secrets.token_hex(16),
        secrets.token_hex(32),
        label=str(body.get("name") or ""),
        permissions=_gate_perms(body.get("perms")),
        ips=_ips(body.get("ip_whitelist")),
    )
    return _gate_view(key, secret=True)


def _gate_key(state: ExchangeState, request: Request, master: ApiKey) -> object:
    account = _gate_account(state, request, master)
    key = _sub_key(state, account, _path_parts(request)[3])
    if request.method == "DELETE":
        _delete(state, key)
        return None
    if request.method == "PUT":
        body = _json_body(request)
        with state.lock:
            if "name" in body:
                key.label = str(body["name"])
            if "perms" in body:
                key.permissions = _gate_perms(body["perms"])
            if "ip_whitelist" in body:
                key.ip_whitelist = _ips(body["ip_whitelist"])
        return None
    return _gate_view(key)


def _gate_account_detail(state: ExchangeState, request: Request, key: ApiKey) -> object:
    return {
        "user_id": _uid(key.account.uid),
        "ip_whitelist": list(key.ip_whitelist),
        "currency_pairs": [],
        "key": {"mode": 1},
        "tier": 0,
    }


class Gate(Dialect):
    """Gate API v4: ``KEY``, ``Timestamp`` (seconds) and ``SIGN`` headers, hex
    HMAC-SHA512 (see :func:`gate_signature`); timestamps within 60 s."""

    def __init__(self) -> None:
        super().__init__(
            name="gate",
            errors={
                "missing_credentials": (
                    401,
                    "MISSING_REQUIRED_HEADER",
                    "Missing required header: KEY",
                ),
                "unknown_key": (401, "INVALID_KEY", "Invalid key provided"),
                "bad_signature": (401, "INVALID_SIGNATURE", "Signature mismatch"),
                "bad_passphrase": (401, "INVALID_CREDENTIALS", "Invalid credentials provided"),
                "stale_timestamp": (
                    401,
                    "REQUEST_EXPIRED",
                    "gap between request Timestamp and server time exceeds 60",
                ),
                "ip_not_allowed": (403, "IP_FORBIDDEN", "Request IP not in whitelist: {ip}"),
                "forbidden": (403, "FORBIDDEN", "Not allowed to manage sub-account keys"),
                "bad_request": (400, "INVALID_PARAM_VALUE", "Invalid parameter value"),
                "bad_request:sub": (400, "SUB_ACCOUNT_NOT_FOUND", "Sub account not found"),
                "bad_request:key": (404, "NOT_FOUND", "API key not found"),
                "bad_request:perms": (400, "INVALID_PARAM_VALUE", "Invalid perms"),
                "bad_request:ips": (400, "INVALID_PARAM_VALUE", "Too many IP addresses"),
                "rate_limited": (429, "TOO_MANY_REQUESTS", "Request Rate limit Exceeded"),
                "maintenance": (503, "SERVER_ERROR", "Service unavailable"),
            },
            public={
                ("GET", "/api/v4/spot/time"): lambda state, request: {
                    "server_time": state.clock_ms()
                },
            },
            private=PatternRoutes(),
        )

    def error_body(self, code: object, message: str, state: ExchangeState) -> object:
        return {"label": code, "message": message}

    def claim(self, request: Request) -> Claim:
        api_key = request.header("KEY")
        timestamp = request.header("Timestamp")
        sign = request.header("SIGN")
        if api_key is None or timestamp is None or sign is None:
            raise Refused("missing_credentials")
        query = request.raw_query
        ts = _int(timestamp)
        return Claim(
            api_key=api_key,
            signature_ok=lambda key: signing.same(
                gate_signature(
                    key.secret, request.method, request.path, query, request.text, timestamp
                ),
                sign,
            ),
            fresh=lambda key, now: ts is not None and abs(now - ts * 1000) <= 60_000,
        )


def install_gate(dialect: Dialect) -> None:
    routes = PatternRoutes(dialect.private)
    routes.update(
        {
            ("GET", GATE_KEYS): _gate_keys,
            ("POST", GATE_KEYS): _gate_keys,
            ("GET", GATE_KEY): _gate_key,
            ("PUT", GATE_KEY): _gate_key,
            ("DELETE", GATE_KEY): _gate_key,
            ("GET", "/api/v4/account/detail"): _gate_account_detail,
        }
    )
    dialect.private = routes


def gate_keys_path(user_id: str, key: str | None = None) -> str:
    """The request path of a Gate sub-account's keys (or of one of them), for faults."""
    path = GATE_KEYS.format(user_id=user_id)
    return path if key is None else f"{path}/{key}"


def create_path(exchange: str, sub: Account) -> str:
    """The request path creating a key of ``sub`` at ``exchange`` (for faults)."""
    if exchange == "gate":
        return gate_keys_path(sub.uid)
    return {"okx": OKX_CREATE, "bybit": BYBIT_CREATE, "kucoin": KUCOIN_KEYS}[exchange]


def create_fault(exchange: str, sub: Account) -> dict[str, str]:
    """Where a fault hits the creation of a key of ``sub`` only (not the listing that
    shares its path): ``Fault.server_error(**create_fault(...), times=1)``."""
    return {"path": create_path(exchange, sub), "method": "POST"}


def delete_fault(exchange: str, sub: Account, api_key: str) -> dict[str, str]:
    """Where a fault hits the deletion of ``api_key`` only (KuCoin lists and deletes
    on one path)."""
    method = "DELETE" if exchange in ("kucoin", "gate") else "POST"
    return {"path": delete_path(exchange, sub, api_key), "method": method}


def delete_path(exchange: str, sub: Account, api_key: str) -> str:
    """The request path deleting ``api_key`` of ``sub`` at ``exchange`` (for faults)."""
    if exchange == "gate":
        return gate_keys_path(sub.uid, api_key)
    return {"okx": OKX_DELETE, "bybit": BYBIT_DELETE, "kucoin": KUCOIN_KEYS}[exchange]


INSTALLERS: dict[str, Callable[[Dialect], None]] = {
    "okx": install_okx,
    "bybit": install_bybit,
    "kucoin": install_kucoin,
    "gate": install_gate,
}


def _with_subaccount_keys(
    make: Callable[[], Dialect], install: Callable[[Dialect], None]
) -> Callable[[], Dialect]:
    def made() -> Dialect:
        dialect = make()
        install(dialect)
        return dialect

    made.subaccount_keys = True  # type: ignore[attr-defined]
    return made


DIALECTS.setdefault("gate", Gate)
for _name, _install in INSTALLERS.items():
    if not getattr(DIALECTS[_name], "subaccount_keys", False):
        DIALECTS[_name] = _with_subaccount_keys(DIALECTS[_name], _install)
