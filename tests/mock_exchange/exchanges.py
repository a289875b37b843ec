"""The exchanges the mock speaks: for each one, how a private request carries its
credentials, how its signature is verified (with :mod:`tests.mock_exchange.signing`),
its refusals (real codes and messages) and its public and key-introspection endpoints,
with bodies shaped as in the exchange's documentation.

Authentication order, the same for every exchange: the credentials must be present
and well formed, the key known and not expired, the signature right, then the
passphrase, the timestamp (or Kraken's nonce) inside the receive window, and the client
IP on the key's whitelist. A request refused at any step is logged without a key.
"""

from __future__ import annotations

import binascii
import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote

from tests.mock_exchange import signing
from tests.mock_exchange.registry import ApiKey, ExchangeState


@dataclass(frozen=True)
class Request:
    """A request as the mock received it (``headers`` keys are lower-case)."""

    method: str
    path: str
    raw_query: str
    headers: Mapping[str, str]
    body: bytes
    client_ip: str

    @property
    def host(self) -> str:
        """The host the client addressed (its Host header, as sent)."""
        return self.headers.get("host", "")

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.lower())
        return value if value else None

    def query_params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.raw_query, keep_blank_values=True)

    def path_and_query(self) -> str:
        return self.path + (f"?{self.raw_query}" if self.raw_query else "")


@dataclass(frozen=True)
class Reply:
    """An answer: status, body bytes and extra headers."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"

    @classmethod
    def json(cls, status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
        return cls(status, json.dumps(payload, separators=(",", ":")).encode(), headers)


class Refused(Exception):
    """A private request the exchange refuses; ``reason`` is one of REASONS,
    ``detail`` picks a more precise message, ``context`` fills the message."""

    def __init__(self, reason: str, detail: str = "", **context: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.context = context


REASONS = (
    "missing_credentials",
    "unknown_key",
    "bad_signature",
    "bad_passphrase",
    "stale_timestamp",
    "ip_not_allowed",
    "bad_request",
)


@dataclass(frozen=True)
class Claim:
    """What a private request claims, parsed by the exchange's dialect: the key it
    names and how to check the rest once that key is looked up."""

    api_key: str
    signature_ok: Callable[[ApiKey], bool]
    fresh: Callable[[ApiKey, int], bool]
    passphrase_ok: Callable[[ApiKey], bool] | None = None
    accepted: Callable[[ApiKey], None] | None = None


PublicRoute = Callable[[ExchangeState, Request], object]
PrivateRoute = Callable[[ExchangeState, Request, ApiKey], object]


def ip_allowed(key: ApiKey, ip: str) -> bool:
    """True when ``ip`` is on the key's whitelist (addresses or CIDR ranges), or the
    whitelist is empty."""
    if not key.ip_whitelist:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for entry in key.ip_whitelist:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def iso_ms(ms: int) -> str:
    """``2026-01-05T09:30:00.000Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _uid(uid: str) -> int | str:
    return int(uid) if uid.isdigit() else uid


def _days_left(key: ApiKey, now_ms: int) -> int:
    if key.expires_at is None:
        return -1
    return max(0, int((key.expires_at.timestamp() * 1000 - now_ms) // 86_400_000))


@dataclass
class Dialect:
    """One exchange's wire conventions. Subclasses fill the tables and ``claim``."""

    name: str = ""
    #: reason (or ``reason:detail``) -> (HTTP status, code, message template).
    errors: dict[str, tuple[int, object, str]] = field(default_factory=dict)
    public: dict[tuple[str, str], PublicRoute] = field(default_factory=dict)
    private: dict[tuple[str, str], PrivateRoute] = field(default_factory=dict)

    def claim(self, request: Request) -> Claim:
        """Parse the credentials of a private request.

        :raises Refused: when they are missing or malformed.
        """
        raise NotImplementedError

    def error_body(self, code: object, message: str, state: ExchangeState) -> object:
        raise NotImplementedError

    def success(self, data: object, state: ExchangeState) -> object:
        """The exchange's success envelope around ``data``."""
        return data

    # -------------------------------------------------------------- common flow
    def authenticate(self, state: ExchangeState, request: Request) -> ApiKey:
        """The key a private request proves it holds.

        :raises Refused: at the first check that fails (see the module docstring).
        """
        claim = self.claim(request)
        key = state.key(claim.api_key)
        now = state.clock_ms()
        if key is None or key.expired(now):
            raise Refused("unknown_key")
        if not claim.signature_ok(key):
            raise Refused("bad_signature")
        if claim.passphrase_ok is not None and not claim.passphrase_ok(key):
            raise Refused("bad_passphrase")
        if not claim.fresh(key, now):
            raise Refused("stale_timestamp", now=now)
        if not ip_allowed(key, request.client_ip):
            raise Refused("ip_not_allowed", ip=request.client_ip)
        if claim.accepted is not None:
            with state.lock:
                claim.accepted(key)
        return key

    def refusal(self, refused: Refused, state: ExchangeState) -> Reply:
        """The exchange's answer to a refused request."""
        status, code, template = self.errors.get(
            f"{refused.reason}:{refused.detail}", self.errors[refused.reason]
        )
        context = {"ip": "", "now": state.clock_ms(), **refused.context}
        message = template.format(**context)
        return Reply.json(status, self.error_body(code, message, state))

    def canned(self, kind: str, state: ExchangeState, retry_after: float = 1.0) -> Reply:
        """The exchange's ``rate_limited`` or ``maintenance`` answer."""
        status, code, message = self.errors[kind]
        headers: tuple[tuple[str, str], ...] = ()
        if kind == "rate_limited":
            headers = (("Retry-After", f"{retry_after:g}"),)
        return Reply.json(status, self.error_body(code, message, state), headers)


# ============================================================================ binance


BINANCE_FLAGS = (
    "enableReading",
    "enableSpotAndMarginTrading",
    "enableWithdrawals",
    "enableInternalTransfer",
    "enableMargin",
    "enableFutures",
    "permitsUniversalTransfer",
    "enableVanillaOptions",
    "enableFixApiTrade",
    "enableFixReadOnly",
    "enablePortfolioMarginTrading",
)


def _binance_restrictions(state: ExchangeState, request: Request, key: ApiKey) -> object:
    body: dict[str, Any] = {"ipRestrict": bool(key.ip_whitelist), "createTime": key.created_ms()}
    body.update({flag: False for flag in BINANCE_FLAGS})
    body.update({permission: True for permission in key.permissions})
    if key.expires_at is not None:
        body["tradingAuthorityExpirationTime"] = int(key.expires_at.timestamp() * 1000)
    body.update(key.fields)
    return body


class Binance(Dialect):
    """Binance spot and SAPI: ``X-MBX-APIKEY`` header, ``timestamp``, ``recvWindow``
    and ``signature`` parameters (HMAC-SHA256 hex over query + body)."""

    def __init__(self) -> None:
        invalid_key = (401, -2015, "Invalid API-key, IP, or permissions for action.")
        super().__init__(
            name="binance",
            errors={
                "missing_credentials": (401, -2014, "API-key format invalid."),
                "unknown_key": invalid_key,
                "ip_not_allowed": invalid_key,
                "bad_signature": (400, -1022, "Signature for this request is not valid."),
                "stale_timestamp": (
                    400,
                    -1021,
                    "Timestamp for this request is outside of the recvWindow.",
                ),
                "bad_request": (
                    400,
                    -1102,
                    "Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
                ),
                "rate_limited": (
                    429,
                    -1003,
                    "Too many requests; current limit of IP is exceeded. Please use the "
                    "websocket for live updates to avoid polling the API.",
                ),
                "maintenance": (
                    503,
                    -1001,
                    "Internal error; unable to process your request. Please try again.",
                ),
            },
            public={
                ("GET", "/api/v3/time"): lambda state, request: {"serverTime": state.clock_ms()},
                ("GET", "/api/v3/ping"): lambda state, request: {},
            },
            private={("GET", "/sapi/v1/account/apiRestrictions"): _binance_restrictions},
        )

    def error_body(self, code: object, message: str, state: ExchangeState) -> object:
        return {"code": code, "msg": message}

    def claim(self, request: Request) -> Claim:
        api_key = request.header("X-MBX-APIKEY")
        if api_key is None or re.fullmatch(r"[A-Za-z0-9]{64}", api_key) is None:
            raise Refused("missing_credentials")
        # totalParams: the query string (without the signature) then the body, as sent.
        kept, signature = [], None
        for part in request.raw_query.split("&") if request.raw_query else []:
            if part.startswith("signature="):
                signature = unquote(part[len("signature=") :])
            else:
                kept.append(part)
        body = request.text
        if signature is None and body:
            parts = body.split("&")
            signature = next(
                (unquote(p[len("signature=") :]) for p in parts if p.startswith("signature=")),
                None,
            )
            body = "&".join(p for p in parts if not p.startswith("signature="))
        total = "&".join(kept) + body
        params = dict(parse_qsl("&".join(kept) + ("&" + body if body else "")))
        timestamp = _int(params.get("timestamp"))
        recv_window = _int(params.get("recvWindow", "5000"))
        if signature is None:
            raise Refused("bad_request", name="signature")
        if timestamp is None:
            raise Refused("bad_request", name="timestamp")
        if recv_window is None or not 0 < recv_window <= 60_000:
            raise Refused("bad_request", name="recvWindow")
        window = recv_window

        def fresh(key: ApiKey, now: int) -> bool:
            return timestamp < now + 1000 and now - timestamp <= window

        return Claim(
            api_key=api_key,
            signature_ok=lambda key: signing.same(signing.binance(key.secret, total), signature),
            fresh=fresh,
        )


# ============================================================================ kucoin


def _kucoin_api_key(state: ExchangeState, request: Request, key: ApiKey) -> object:
    data: dict[str, Any] = {
        "remark": key.label,
        "apiKey": key.api_key,
        "apiVersion": 3,
        "permission": ",".join(key.permissions),
        "ipWhitelist": ",".join(key.ip_whitelist),
        "createdAt": key.created_ms(),
        "uid": _uid(key.account.uid),
        "isMaster": not key.account.is_sub,
    }
    data.update(key.fields)
    return data


class Kucoin(Dialect):
    """KuCoin: ``KC-API-*`` headers; signature and (key version 2/3) passphrase are
    base64 HMAC-SHA256 with the secret; timestamps within 5 s of the server's."""

    def __init__(self) -> None:
        super().__init__(
            name="kucoin",
            errors={
                # The messages of KuCoin's gateway error table (400001: its older
                # table's wording, about the headers).
                "missing_credentials": (
                    401,
                    "400001",
                    "Any of KC-API-KEY, KC-API-SIGN, KC-API-TIMESTAMP, KC-API-PASSPHRASE "
                    "is missing in your request header",
                ),
                "stale_timestamp": (401, "400002", "Invalid KC-API-TIMESTAMP."),
                "unknown_key": (401, "400003", "KC-API-KEY does not exist."),
                "bad_passphrase": (401, "400004", "Invalid KC-API-PASSPHRASE."),
                "bad_signature": (401, "400005", "Invalid KC-API-SIGN."),
                "ip_not_allowed": (
                    401,
                    "400006",
                    "Invalid request IP, the current client IP is: {ip}.",
                ),
                "bad_request": (400, "400100", "Parameter Error"),
                "rate_limited": (429, "429000", "Too Many Requests"),
                "maintenance": (503, "503000", "Service Unavailable"),
            },
            public={
                ("GET", "/api/v1/timestamp"): lambda state, request: state.clock_ms(),
            },
            private={("GET", "/api/v1/user/api-key"): _kucoin_api_key},
        )

    def error_body(self, code: object, message: str, state: ExchangeState) -> object:
        return {"code": code, "msg": message}

    def success(self, data: object, state: ExchangeState) -> object:
        return {"code": "200000", "data": data}

    def claim(self, request: Request) -> Claim:
        api_key = request.header("KC-API-KEY")
        sign = request.header("KC-API-SIGN")
        timestamp = request.header("KC-API-TIMESTAMP")
        passphrase = request.header("KC-API-PASSPHRASE")
        if api_key is None or sign is None or timestamp is None or passphrase is None:
            raise Refused("missing_credentials")
        version = request.header("KC-API-KEY-VERSION") or "1"
        prehash = (timestamp, request.method, request.path_and_query(), request.text)
        ts = _int(timestamp)

        def passphrase_ok(key: ApiKey) -> bool:
            stored = key.passphrase or ""
            expected = stored if version == "1" else signing.kucoin_passphrase(key.secret, stored)
            return signing.same(expected, passphrase)

        return Claim(
            api_key=api_key,
            signature_ok=lambda key: signing.same(signing.kucoin(key.secret, *prehash), sign),
            passphrase_ok=passphrase_ok,
            fresh=lambda key, now: ts is not None and abs(now - ts) <= 5000,
        )


# ============================================================================ okx


def _okx_config(state: ExchangeState, request: Request, key: ApiKey) -> object:
    account = key.account
    config: dict[str, Any] = {
        "uid": account.uid,
        "mainUid": account.parent or account.uid,
        "acctLv": "2",
        "posMode": "net_mode",
        "autoLoan": False,
        "greeksType": "PA",
        "level": "Lv1",
        "levelTmp": "",
        "ctIsoMode": "automatic",
        "mgnIsoMode": "automatic",
        "spotOffsetType": "",
        "roleType": "0",
        "traderInsts": [],
        "spotRoleType": "0",
        "spotTraderInsts": [],
        "opAuth": "0",
        "kycLv": "2",
        "label": key.label,
        "ip": ",".join(key.ip_whitelist),
        "perm": ",".join(key.permissions),
        "liquidationGear": "-1",
        "enableSpotBorrow": False,
        "spotBorrowAutoRepay": False,
        "type": "1" if account.is_sub else "0",
    }
    config.update(key.fields)
    return [config]


class Okx(Dialect):
    """OKX v5: ``OK-ACCESS-*`` headers, base64 HMAC-SHA256 over ISO 8601 ms timestamp
    + METHOD + path + body; plain passphrase; 30 s window."""

    def __init__(self) -> None:
        empty = 'Request header "{header}" cannot be empty.'
        super().__init__(
            name="okx",
            errors={
                "missing_credentials": (401, "50103", empty.format(header="OK-ACCESS-KEY")),
                "missing_credentials:OK-ACCESS-PASSPHRASE": (
                    401,
                    "50104",
                    empty.format(header="OK-ACCESS-PASSPHRASE"),
                ),
                "missing_credentials:OK-ACCESS-SIGN": (
                    401,
                    "50106",
                    empty.format(header="OK-ACCESS-SIGN"),
                ),
                "missing_credentials:OK-ACCESS-TIMESTAMP": (
                    401,
                    "50107",
                    empty.format(header="OK-ACCESS-TIMESTAMP"),
                ),
                "stale_timestamp": (401, "50102", "Timestamp request expired"),
                "stale_timestamp:format": (401, "50112", "Invalid OK-ACCESS-TIMESTAMP"),
                "bad_passphrase": (
                    401,
                    "50105",
                    'Request header "OK-ACCESS-PASSPHRASE" incorrect.',
                ),
                "ip_not_allowed": (
                    401,
                    "50110",
                    "Your IP {ip} is not included in your API key's IP whitelist.",
                ),
                "unknown_key": (401, "50111", "Invalid OK-ACCESS-KEY"),
                "bad_signature": (401, "50113", "Invalid signature"),
                "bad_request": (400, "50014", "Parameter cannot be empty"),
                "rate_limited": (
                    429,
                    "50011",
                    "Rate limit reached. Please refer to API documentation and throttle "
                    "requests accordingly.",
                ),
                "maintenance": (
                    503,
                    "50001",
                    "Service temporarily unavailable. Please try again later.",
                ),
            },
            public={
                ("GET", "/api/v5/public/time"): lambda state, request: [
                    {"ts": str(state.clock_ms())}
                ],
            },
            private={("GET", "/api/v5/account/config"): _okx_config},
        )

    def error_body(self, code: object, message: str, state: ExchangeState) -> object:
        return {"code": code, "msg": message, "data": []}

    def success(self, data: object, state: ExchangeState) -> object:
        return {"code": "0", "msg": "", "data": data}

    def claim(self, request: Request) -> Claim:
        values = {}
        for header in (
            "OK-ACCESS-KEY",
            "OK-ACCESS-SIGN",
            "OK-ACCESS-TIMESTAMP",
            "OK-ACCESS-PASSPHRASE",
        ):
            value = request.header(header)
            if value is None:
                raise Refused("missing_credentials", header)
            values[header] = value
        timestamp = values["OK-ACCESS-TIMESTAMP"]
        try:
            moment = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ")
        except ValueError:
            raise Refused("stale_timestamp", "format") from None
        ts = int(moment.replace(tzinfo=timezone.utc).timestamp() * 1000)
        signed = request.path_and_query() if request.method == "GET" else request.path
        body = "" if request.method == "GET" else request.text
        sign, passphrase = values["OK-ACCESS-SIGN"], values["OK-ACCESS-PASSPHRASE"]
        return Claim(
            api_key=values["OK-ACCESS-KEY"],
            signature_ok=lambda key: signing.same(
                signing.okx(key.secret, timestamp, request.method, signed, body), sign
            ),
            passphrase_ok=lambda key: signing.same(key.passphrase or "", passphrase),
            fresh=lambda key, now: abs(now - ts) <= 30_000,
        )


# ============================================================================ bybit


BYBIT_GROUPS = (
    "ContractTrade",
    "Spot",
    "Wallet",
    "Options",
    "Derivatives",
    "CopyTrading",
    "BlockTrade",
    "Exchange",
    "NFT",
    "Affiliate",
    "Earn",
)


def _bybit_query_api(state: ExchangeState, request: Request, key: ApiKey) -> object:
    permissions: dict[str, list[str]] = {group: [] for group in BYBIT_GROUPS}
    for permission in key.permissions:
        group, _, name = permission.partition(":")
        permissions.setdefault(group, []).append(name)
    now = state.clock_ms()
    account = key.account
    result: dict[str, Any] = {
        "id": str(int(hashlib.sha256(key.api_key.encode()).hexdigest()[:7], 16)),
        "note": key.label,
        "apiKey": key.api_key,
        "readOnly": 0 if key.permissions else 1,
        "secret": "",
        "permissions": permissions,
        "ips": list(key.ip_whitelist) or ["*"],
        "type": 1,
        "deadlineDay": _days_left(key, now),
        "expiredAt": iso_ms(int(key.expires_at.timestamp() * 1000))[:19] + "Z"
        if key.expires_at
        else "",
        "createdAt": iso_ms(key.created_ms())[:19] + "Z",
        "unified": 0,
        "uta": 1,
        "userID": _uid(account.uid),
        "inviterID": 0,
        "vipLevel": "No VIP",
        "mktMakerLevel": "0",
        "affiliateID": 0,
        "rsaPublicKey": "",
        "isMaster": not account.is_sub,
        "parentUid": account.parent or "0",
        "kycLevel": "LEVEL_DEFAULT",
        "kycRegion": "",
    }
    result.update(key.fields)
    return result


def _bybit_time(state: ExchangeState, request: Request) -> object:
    now = state.clock_ms()
    return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}


class Bybit(Dialect):
    """Bybit v5: ``X-BAPI-*`` headers, hex HMAC-SHA256 over timestamp + key + recv
    window + query (GET) or body (POST); window ``[now - recv, now + 1000)``."""

    def __init__(self) -> None:
        invalid_key = (401, 10003, "API key is invalid.")
        super().__init__(
            name="bybit",
            errors={
                "missing_credentials": invalid_key,
                "unknown_key": invalid_key,
                "stale_timestamp": (
                    200,
                    10002,
                    "invalid request, please check your server timestamp or recv_window "
                    "param. req_timestamp[{ts}],server_timestamp[{now}],recv_window[{recv}]",
                ),
                "bad_signature": (401, 10004, "error sign! origin_string[{origin}]"),
                "ip_not_allowed": (
                    401,
                    10010,
                    "Unmatched IP, please check your API key's bound IP addresses.",
                ),
                "bad_request": (200, 10001, "params error"),
                "rate_limited": (429, 10006, "Too many visits!"),
                "maintenance": (503, 10016, "Internal server error or Service Restarting"),
            },
            public={("GET", "/v5/market/time"): _bybit_time},
            private={("GET", "/v5/user/query-api"): _bybit_query_api},
        )

    def error_body(self, code: object, message: str, state: ExchangeState) -> object:
        return {
            "retCode": code,
            "retMsg": message,
            "result": {},
            "retExtInfo": {},
            "time": state.clock_ms(),
        }

    def success(self, data: object, state: ExchangeState) -> object:
        return {
            "retCode": 0,
            "retMsg": "OK",
            "result": data,
            "retExtInfo": {},
            "time": state.clock_ms(),
        }

    def claim(self, request: Request) -> Claim:
        api_key = request.header("X-BAPI-API-KEY")
        timestamp = request.header("X-BAPI-TIMESTAMP")
        sign = request.header("X-BAPI-SIGN")
        if api_key is None or timestamp is None or sign is None:
            raise Refused("missing_credentials")
        recv = request.header("X-BAPI-RECV-WINDOW") or "5000"
        payload = request.text if request.method == "POST" else request.raw_query
        ts, window = _int(timestamp), _int(recv)
        if ts is None or window is None:
            raise Refused("bad_request")
        origin = timestamp + api_key + recv + payload

        def signature_ok(key: ApiKey) -> bool:
            return signing.same(signing.bybit(key.secret, timestamp, api_key, recv, payload), sign)

        def fresh(key: ApiKey, now: int) -> bool:
            if now - window <= ts < now + 1000:
                return True
            raise Refused("stale_timestamp", ts=ts, now=now, recv=window)

        def signature_or_refusal(key: ApiKey) -> bool:
            if signature_ok(key):
                return True
            raise Refused("bad_signature", origin=origin)

        return Claim(api_key=api_key, signature_ok=signature_or_refusal, fresh=fresh)


# ============================================================================ htx


def _htx_uid(state: ExchangeState, request: Request, key: ApiKey) -> object:
    return {"code": 200, "data": _uid(key.account.uid)}


def _htx_api_keys(state: ExchangeState, request: Request, key: ApiKey) -> object:
    params = dict(request.query_params())
    uid = params.get("uid")
    if not uid:
        return {"code": 2003, "message": "missing mandatory field: uid", "data": None}
    own = key.account
    allowed = uid == own.uid or uid in state.sub_accounts_of(own.uid)
    if not allowed:
        return {"code": 2002, "message": "invalid field value in `uid`", "data": None}
    wanted = params.get("accessKey")
    now = state.clock_ms()
    data = []
    for each in state.keys_of(uid):
        if wanted and each.api_key != wanted:
            continue
        entry: dict[str, Any] = {
            "accessKey": each.api_key,
            "note": each.label,
            "permission": ",".join(each.permissions),
            "ipAddresses": ",".join(each.ip_whitelist),
            "validDays": _days_left(each, now),
            "status": "expired" if each.expired(now) else "normal",
            "createTime": each.created_ms(),
            "updateTime": each.created_ms(),
        }
        entry.update(each.fields)
        data.append(entry)
    return {"code": 200, "message": "success", "data": data}


class Htx(Dialect):
    """HTX (Huobi): ``AccessKeyId``, ``SignatureMethod``, ``SignatureVersion``,
    ``Timestamp`` and ``Signature`` query parameters; base64 HMAC-SHA256 over
    ``METHOD\\nhost\\npath\\n`` + sorted parameters, host as the client sent it."""

    def __init__(self) -> None:
        not_valid = "api-signature-not-valid"
        super().__init__(
            name="htx",
            errors={
                "missing_credentials": (
                    200,
                    not_valid,
                    "Signature not valid: Verification failure [校验失败]",
                ),
                "bad_signature": (
                    200,
                    not_valid,
                    "Signature not valid: Verification failure [校验失败]",
                ),
                "unknown_key": (
                    200,
                    not_valid,
                    "Signature not valid: Incorrect Access key [Access key错误]",
                ),
                "stale_timestamp": (
                    200,
                    not_valid,
                    "Signature not valid: Invalid submission time or incorrect time format "
                    "[无效的提交时间, 或者时间格式错误]",
                ),
                "ip_not_allowed": (
                    200,
                    not_valid,
                    "Signature not valid: Incorrect IP address [IP地址错误]:{ip}",
                ),
                "bad_request": (200, "invalid-parameter", "invalid parameter"),
                "rate_limited": (
                    429,
                    "base-request-exceed-frequency-limit",
                    "Frequency of requests has exceeded the limit, please try again later",
                ),
                "maintenance": (200, "system-maintenance", "System is in maintenance!"),
            },
            public={
                ("GET", "/v1/common/timestamp"): lambda state, request: {
                    "status": "ok",
                    "data": state.clock_ms(),
                },
            },
            private={
                ("GET", "/v2/user/uid"): _htx_uid,
                ("GET", "/v2/user/api-key"): _htx_api_keys,
            },
        )

    def error_body(self, code: object, message: str, state: ExchangeState) -> object:
        return {"status": "error", "err-code": code, "err-msg": message, "data": None}

    def claim(self, request: Request) -> Claim:
        params = request.query_params()
        values = dict(params)
        api_key = values.get("AccessKeyId")
        signature = values.get("Signature")
        timestamp = values.get("Timestamp")
        if (
            not api_key
            or not signature
            or not timestamp
            or values.get("SignatureMethod") != "HmacSHA256"
            or values.get("SignatureVersion") != "2"
        ):
            raise Refused("missing_credentials")
        try:
            moment = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
        except ValueError:
            raise Refused("stale_timestamp") from None
        ts = int(moment.timestamp() * 1000)
        host, method, path = request.host, request.method, request.path
        return Claim(
            api_key=api_key,
            signature_ok=lambda key: signing.same(
                signing.htx(key.secret, method, host, path, params), signature
            ),
            fresh=lambda key, now: abs(now - ts) <= 5 * 60_000,
        )


# ============================================================================ kraken


def _kraken_key_info(state: ExchangeState, request: Request, key: ApiKey) -> object:
    created = str(key.created_ms() // 1000)
    result: dict[str, Any] = {
        "apiKeyName": key.label,
        "apiKey": key.api_key,
        "nonce": str(key.highest_nonce),
        "nonceWindow": 0,
        "permissions": list(key.permissions),
        "iban": key.account.uid,
        "validUntil": str(int(key.expires_at.timestamp())) if key.expires_at else "0",
        "queryFrom": "0",
        "queryTo": "0",
        "createdTime": created,
        "modifiedTime": created,
        "ipAllowlist": list(key.ip_whitelist),
        "lastUsed": str(state.clock_ms() // 1000),
    }
    result.update(key.fields)
    return result


def _kraken_time(state: ExchangeState, request: Request) -> object:
    now = state.clock_ms()
    moment = datetime.fromtimestamp(now / 1000, tz=timezone.utc)
    return {"unixtime": now // 1000, "rfc1123": moment.strftime("%a, %d %b %y %H:%M:%S +0000")}


class Kraken(Dialect):
    """Kraken spot REST: ``API-Key`` and ``API-Sign`` headers, POST body with a
    ``nonce`` that must exceed the key's highest nonce so far; base64 HMAC-SHA512
    keyed with the decoded secret over path + SHA256(nonce + body)."""

    def __init__(self) -> None:
        super().__init__(
            name="kraken",
            errors={
                "missing_credentials": (200, "", "EAPI:Invalid key"),
                "unknown_key": (200, "", "EAPI:Invalid key"),
                "bad_signature": (200, "", "EAPI:Invalid signature"),
                "stale_timestamp": (200, "", "EAPI:Invalid nonce"),
                "ip_not_allowed": (200, "", "EGeneral:Permission denied"),
                "bad_request": (200, "", "EGeneral:Invalid arguments"),
                "rate_limited": (429, "", "EAPI:Rate limit exceeded"),
                "maintenance": (200, "", "EService:Unavailable"),
            },
            public={("GET", "/0/public/Time"): _kraken_time},
            private={("POST", "/0/private/GetApiKeyInfo"): _kraken_key_info},
        )

    def error_body(self, code: object, message: str, state: ExchangeState) -> object:
        return {"error": [message]}

    def success(self, data: object, state: ExchangeState) -> object:
        return {"error": [], "result": data}

    def claim(self, request: Request) -> Claim:
        api_key = request.header("API-Key")
        sign = request.header("API-Sign")
        if api_key is None or sign is None:
            raise Refused("missing_credentials")
        body = request.text
        content_type = request.header("Content-Type") or ""
        nonce_value: object
        if content_type.startswith("application/json"):
            try:
                nonce_value = json.loads(body).get("nonce")
            except (ValueError, AttributeError):
                raise Refused("bad_request") from None
        else:
            nonce_value = dict(parse_qsl(body)).get("nonce")
        nonce = _int(str(nonce_value)) if nonce_value is not None else None
        if nonce is None:
            raise Refused("stale_timestamp")
        path = request.path

        def signature_ok(key: ApiKey) -> bool:
            try:
                expected = signing.kraken(key.secret, path, str(nonce_value), body)
            except (binascii.Error, ValueError):
                return False
            return signing.same(expected, sign)

        def accepted(key: ApiKey) -> None:
            key.highest_nonce = max(key.highest_nonce, nonce)

        return Claim(
            api_key=api_key,
            signature_ok=signature_ok,
            fresh=lambda key, now: nonce > key.highest_nonce,
            accepted=accepted,
        )


# ============================================================================ bitget


def _bitget_account_info(state: ExchangeState, request: Request, key: ApiKey) -> object:
    account = key.account
    data: dict[str, Any] = {
        "userId": account.uid,
        "inviterId": "0",
        "ips": ",".join(key.ip_whitelist),
        "authorities": list(key.permissions),
        "parentId": _uid(account.parent or account.uid),
        "traderType": "",
        "channelCode": "",
        "channel": "",
        "regisTime": str(key.created_ms()),
    }
    data.update(key.fields)
    return data


class Bitget(Dialect):
    """Bitget v2: ``ACCESS-*`` headers, base64 HMAC-SHA256 over timestamp + METHOD +
    path (+ ``?query``) + body; plain passphrase; 30 s window."""

    def __init__(self) -> None:
        super().__init__(
            name="bitget",
            errors={
                "missing_credentials": (400, "40001", "ACCESS_KEY cannot be empty"),
                "missing_credentials:sign": (400, "40003", "Signature cannot be empty"),
                "missing_credentials:timestamp": (400, "40005", "Invalid ACCESS_TIMESTAMP"),
                "missing_credentials:passphrase": (
                    400,
                    "40011",
                    "ACCESS_PASSPHRASE cannot be empty",
                ),
                "unknown_key": (400, "40006", "Invalid ACCESS_KEY"),
                "stale_timestamp": (400, "40008", "Request timestamp expired"),
                "bad_signature": (400, "40009", "sign signature error"),
                "bad_passphrase": (400, "40012", "apikey/password is incorrect"),
                "ip_not_allowed": (400, "40018", "Invalid IP"),
                "bad_request": (400, "40017", "Parameter verification failed"),
                "rate_limited": (429, "429", "Too Many Requests"),
                "maintenance": (503, "40200", "Server upgrade, please try again later"),
            },
            public={
                ("GET", "/api/v2/public/time"): lambda state, request: {
                    "serverTime": str(state.clock_ms())
                },
            },
            private={("GET", "/api/v2/spot/account/info"): _bitget_account_info},
        )

    def error_body(self, code: object, message: str, state: ExchangeState) -> object:
        return {"code": code, "msg": message, "requestTime": state.clock_ms(), "data": None}

    def success(self, data: object, state: ExchangeState) -> object:
        return {"code": "00000", "msg": "success", "requestTime": state.clock_ms(), "data": data}

    def claim(self, request: Request) -> Claim:
        api_key = request.header("ACCESS-KEY")
        sign = request.header("ACCESS-SIGN")
        timestamp = request.header("ACCESS-TIMESTAMP")
        passphrase = request.header("ACCESS-PASSPHRASE")
        if api_key is None:
            raise Refused("missing_credentials")
        if sign is None:
            raise Refused("missing_credentials", "sign")
        ts = _int(timestamp)
        if timestamp is None or ts is None:
            raise Refused("missing_credentials", "timestamp")
        if passphrase is None:
            raise Refused("missing_credentials", "passphrase")
        prehash = (timestamp, request.method, request.path_and_query(), request.text)
        return Claim(
            api_key=api_key,
            signature_ok=lambda key: signing.same(signing.bitget(key.secret, *prehash), sign),
            passphrase_ok=lambda key: signing.same(key.passphrase or "", passphrase),
            fresh=lambda key, now: abs(now - ts) <= 30_000,
        )


DIALECTS: dict[str, Callable[[], Dialect]] = {
    "binance": Binance,
    "kucoin": Kucoin,
    "okx": Okx,
    "bybit": Bybit,
    "htx": Htx,
    "kraken": Kraken,
    "bitget": Bitget,
}
