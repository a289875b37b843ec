"""The introspection modules: each exchange's documented answer becomes the right
KeyReport, each of its error codes the right verdict, and no JSON at all can make a
parser or a classifier crash (it is a report or MalformedAnswer)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import MalformedAnswer
from vault.exchanges.introspection import INTROSPECTIONS, RETIRED, introspection_for
from vault.exchanges.introspection.answer import BUSY, CLOCK, Verdict, rejected
from vault.exchanges.key_report import ERROR_KINDS, REJECTION_REASONS, KeyReport

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
CREATED_MS = 1_767_605_400_000  # 2026-01-05T09:30:00Z
CREATED = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)
EXPIRES_MS = 1_775_001_600_000  # 2026-04-01T00:00:00Z
EXPIRES = datetime(2026, 4, 1, tzinfo=timezone.utc)

# exchange -> (an answer shaped as the exchange documents it, the report it means)
SAMPLES: dict[str, tuple[Any, KeyReport]] = {
    "binance": (
        {
            "ipRestrict": False,
            "createTime": CREATED_MS,
            "enableReading": True,
            "enableSpotAndMarginTrading": True,
            "enableWithdrawals": True,
            "enableInternalTransfer": False,
            "enableMargin": False,
            "enableFutures": False,
            "permitsUniversalTransfer": False,
            "enableVanillaOptions": False,
            "enableFixApiTrade": False,
            "enableFixReadOnly": False,
            "enablePortfolioMarginTrading": False,
            "tradingAuthorityExpirationTime": EXPIRES_MS,
        },
        KeyReport(("read", "trade", "withdraw"), False, None, EXPIRES, CREATED),
    ),
    "kucoin": (
        {
            "code": "200000",
            "data": {
                "remark": "bot",
                "apiKey": "64f1c0ffee5ca1ab1e00d1e5",
                "apiVersion": 3,
                "permission": "General,Spot,InnerTransfer",
                "ipWhitelist": "203.**.7,198.**.23",
                "createdAt": CREATED_MS,
                "uid": 1001,
                "isMaster": True,
            },
        },
        KeyReport(("read", "trade", "transfer"), True, ("203.**.7", "198.**.23"), None, CREATED),
    ),
    "okx": (
        {"code": "0", "msg": "", "data": [{"uid": "1", "perm": "read_only,withdraw", "ip": ""}]},
        KeyReport(("read", "withdraw"), False, (), None, None),
    ),
    "bybit": (
        {
            "retCode": 0,
            "retMsg": "OK",
            "result": {
                "readOnly": 0,
                "permissions": {
                    "ContractTrade": ["Order", "Position"],
                    "Spot": ["SpotTrade"],
                    "Wallet": ["AccountTransfer", "Withdraw"],
                    "Options": [],
                    "Affiliate": [],
                },
                "ips": ["*"],
                "deadlineDay": 30,
                "expiredAt": "",
                "createdAt": "2026-01-05T09:30:00Z",
            },
        },
        KeyReport(
            ("read", "trade", "futures", "withdraw", "transfer"),
            False,
            (),
            NOW + timedelta(days=30),
            CREATED,
        ),
    ),
    "htx": (
        {
            "code": 200,
            "message": "success",
            "data": [
                {
                    "accessKey": "e2a1b3c4",
                    "permission": "readOnly,trade",
                    "ipAddresses": "203.0.113.7,10.0.0.0/24",
                    "validDays": -1,
                    "status": "normal",
                    "createTime": CREATED_MS,
                    "updateTime": CREATED_MS,
                }
            ],
        },
        KeyReport(("read", "trade"), True, ("203.0.113.7", "10.0.0.0/24"), None, CREATED),
    ),
    "gate": (
        {"user_id": 1001, "ip_whitelist": ["203.0.113.7"], "currency_pairs": [], "key": {}},
        KeyReport(None, True, ("203.0.113.7",), None, None),
    ),
    "bitget": (
        {
            "code": "00000",
            "data": {"userId": "1", "ips": "", "authorities": ["readonly", "trade"]},
        },
        KeyReport(("read", "trade"), False, (), None, None),
    ),
    "kraken": (
        {
            "error": [],
            "result": {
                "permissions": ["query-funds", "withdraw-funds"],
                "ipAllowlist": ["203.0.113.7"],
                "validUntil": str(EXPIRES_MS // 1000),
                "createdTime": str(CREATED_MS // 1000),
            },
        },
        KeyReport(("read", "withdraw"), True, ("203.0.113.7",), EXPIRES, CREATED),
    ),
    "coinbase": (
        {"can_view": True, "can_trade": False, "can_transfer": True, "portfolio_uuid": "x"},
        KeyReport(("read", "withdraw"), None, None, None, None),
    ),
}


def test_every_exchange_of_the_issue_has_a_module() -> None:
    assert set(INTROSPECTIONS) == set(SAMPLES)
    assert introspection_for(" Binance ") is INTROSPECTIONS["binance"]
    assert introspection_for("ascendex") is None and "ascendex" in RETIRED


@pytest.mark.parametrize("exchange", list(SAMPLES))
def test_a_documented_answer_is_normalized(exchange: str) -> None:
    answer, expected = SAMPLES[exchange]
    spec = INTROSPECTIONS[exchange]
    assert spec.classify(answer) is None
    assert spec.parse(answer, NOW) == expected


def test_binance_never_claims_an_ip_list_and_gate_never_claims_permissions() -> None:
    assert INTROSPECTIONS["binance"].parse(SAMPLES["binance"][0], NOW).ips is None
    assert INTROSPECTIONS["gate"].parse(SAMPLES["gate"][0], NOW).permissions is None


def test_binance_without_expiry_time_has_none() -> None:
    answer = dict(SAMPLES["binance"][0], tradingAuthorityExpirationTime=0, ipRestrict=True)
    report = INTROSPECTIONS["binance"].parse(answer, NOW)
    assert report.expires_at is None and report.ip_restricted is True


def test_bybit_read_only_key_reports_read_only_and_its_fixed_expiry() -> None:
    answer: Any = SAMPLES["bybit"][0]
    result = dict(answer["result"], readOnly=1, expiredAt="2026-04-01T00:00:00Z", ips=["1.2.3.4"])
    report = INTROSPECTIONS["bybit"].parse({"retCode": 0, "result": result}, NOW)
    assert report == KeyReport(("read",), True, ("1.2.3.4",), EXPIRES, CREATED)


def test_htx_valid_days_is_an_expiry_from_now() -> None:
    answer: Any = SAMPLES["htx"][0]
    entry = dict(answer["data"][0], validDays=12, ipAddresses="")
    report = INTROSPECTIONS["htx"].parse({"code": 200, "data": [entry]}, NOW)
    assert report.expires_at == NOW + timedelta(days=12)
    assert report.ip_restricted is False
    assert INTROSPECTIONS["htx"].params("AK", "1001") == {"uid": "1001", "accessKey": "AK"}
    parse_account = INTROSPECTIONS["htx"].parse_account
    assert parse_account is not None and parse_account({"code": 200, "data": 1001}) == "1001"


@pytest.mark.parametrize(
    ("exchange", "answer"),
    [
        ("binance", {"enableReading": True}),  # ipRestrict missing
        ("binance", {"ipRestrict": "yes"}),
        ("binance", {"ipRestrict": True, "createTime": 10**20}),
        ("kucoin", {"code": "200000", "data": {"permission": 5}}),
        ("okx", {"code": "0", "data": []}),
        ("okx", {"code": "0", "data": [{"perm": "trade", "ip": ""}, {}]}),
        ("bybit", {"retCode": 0, "result": {"readOnly": 0, "ips": ["*", "1.2.3.4"]}}),
        ("bybit", {"retCode": 0, "result": {"readOnly": 2, "ips": []}}),
        ("htx", {"code": 200, "data": [{"validDays": 10**12}]}),
        ("gate", {"ip_whitelist": "1.2.3.4"}),
        ("kraken", {"error": [], "result": {"ipAllowlist": [1]}}),
        ("coinbase", {"can_view": "true"}),
        ("okx", '{"code":"0","data":[{"truncated": tru'),
    ],
)
def test_a_malformed_answer_raises_malformed_answer(exchange: str, answer: object) -> None:
    with pytest.raises(MalformedAnswer):
        INTROSPECTIONS[exchange].parse(answer, NOW)


def test_a_malformed_message_names_the_field_not_the_value() -> None:
    with pytest.raises(MalformedAnswer) as raised:
        INTROSPECTIONS["kucoin"].parse({"data": {"ipWhitelist": ["sekrit-value"]}}, NOW)
    assert "ipWhitelist" in str(raised.value) and "sekrit" not in str(raised.value)


# exchange -> (an error answer as the exchange sends it, its code, its verdict)
ERRORS: list[tuple[str, Any, str, Verdict | None]] = [
    ("binance", {"code": -2015, "msg": "Invalid API-key"}, "-2015", rejected("invalid-key")),
    ("binance", {"code": -1022, "msg": "Signature"}, "-1022", rejected("bad-signature")),
    ("binance", {"code": -1021, "msg": "Timestamp"}, "-1021", CLOCK),
    ("binance", {"code": -1003, "msg": "Too many"}, "-1003", BUSY),
    ("kucoin", {"code": "400003", "msg": ""}, "400003", rejected("invalid-key")),
    ("kucoin", {"code": "400004", "msg": ""}, "400004", rejected("wrong-passphrase")),
    ("kucoin", {"code": "400005", "msg": ""}, "400005", rejected("bad-signature")),
    ("kucoin", {"code": "400006", "msg": ""}, "400006", rejected("ip-not-allowed")),
    ("kucoin", {"code": "400002", "msg": ""}, "400002", CLOCK),
    ("okx", {"code": "50111", "data": []}, "50111", rejected("invalid-key")),
    ("okx", {"code": "50113", "data": []}, "50113", rejected("bad-signature")),
    ("okx", {"code": "50105", "data": []}, "50105", rejected("wrong-passphrase")),
    ("okx", {"code": "50110", "data": []}, "50110", rejected("ip-not-allowed")),
    ("okx", {"code": "50102", "data": []}, "50102", CLOCK),
    ("okx", {"code": "59999", "data": []}, "59999", None),
    ("bybit", {"retCode": 10003, "result": {}}, "10003", rejected("invalid-key")),
    ("bybit", {"retCode": 10004, "result": {}}, "10004", rejected("bad-signature")),
    ("bybit", {"retCode": 10010, "result": {}}, "10010", rejected("ip-not-allowed")),
    ("bybit", {"retCode": 10002, "result": {}}, "10002", CLOCK),
    (
        "htx",
        {
            "status": "error",
            "err-code": "api-signature-not-valid",
            "err-msg": "Incorrect Access key",
        },
        "api-signature-not-valid",
        rejected("invalid-key"),
    ),
    (
        "htx",
        {
            "status": "error",
            "err-code": "api-signature-not-valid",
            "err-msg": "Verification failure",
        },
        "api-signature-not-valid",
        rejected("bad-signature"),
    ),
    (
        "htx",
        {
            "status": "error",
            "err-code": "api-signature-not-valid",
            "err-msg": "Incorrect IP address",
        },
        "api-signature-not-valid",
        rejected("ip-not-allowed"),
    ),
    (
        "htx",
        {
            "status": "error",
            "err-code": "api-signature-not-valid",
            "err-msg": "Invalid submission time or incorrect time format",
        },
        "api-signature-not-valid",
        CLOCK,
    ),
    ("htx", {"code": 2002, "message": "invalid field value", "data": None}, "2002", None),
    (
        "gate",
        {"label": "INVALID_KEY", "message": "Invalid key"},
        "INVALID_KEY",
        rejected("invalid-key"),
    ),
    ("gate", {"label": "REQUEST_EXPIRED", "message": ""}, "REQUEST_EXPIRED", CLOCK),
    ("bitget", {"code": "40012", "msg": ""}, "40012", rejected("wrong-passphrase")),
    ("bitget", {"code": "40018", "msg": ""}, "40018", rejected("ip-not-allowed")),
    ("kraken", {"error": ["EAPI:Invalid key"]}, "EAPI:Invalid key", rejected("invalid-key")),
    ("kraken", {"error": ["EAPI:Invalid nonce"]}, "EAPI:Invalid nonce", CLOCK),
    (
        "coinbase",
        {"error": "UNAUTHENTICATED", "message": ""},
        "UNAUTHENTICATED",
        rejected("invalid-key"),
    ),
]


@pytest.mark.parametrize(("exchange", "answer", "code", "verdict"), ERRORS)
def test_an_error_code_has_its_verdict(
    exchange: str, answer: object, code: str, verdict: Verdict | None
) -> None:
    classified = INTROSPECTIONS[exchange].classify(answer)
    assert classified is not None
    assert (classified.code, classified.verdict) == (code, verdict)


def test_every_verdict_uses_the_shared_vocabulary() -> None:
    for _, _, _, verdict in ERRORS:
        if verdict is not None:
            assert verdict.kind in ERROR_KINDS
            assert verdict.reason is None or verdict.reason in REJECTION_REASONS


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)


def _shaped(exchange: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Answers in the exchange's documented shape, every field an arbitrary value."""
    sample: Any = SAMPLES[exchange][0]

    def fill(value: Any) -> st.SearchStrategy[Any]:
        if isinstance(value, dict):
            return st.fixed_dictionaries({key: fill(item) for key, item in value.items()})
        if isinstance(value, list) and value:
            return st.lists(fill(value[0]), max_size=2)
        return values

    return fill(sample)


@pytest.mark.parametrize("exchange", list(SAMPLES))
@settings(max_examples=40, deadline=None)
@given(answer=JSON)
def test_any_json_is_a_report_or_malformed(exchange: str, answer: object) -> None:
    _parse_or_malformed(exchange, answer)


@pytest.mark.parametrize("exchange", list(SAMPLES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_any_value_in_the_documented_shape_is_a_report_or_malformed(
    exchange: str, data: st.DataObject
) -> None:
    answer = data.draw(_shaped(exchange, JSON | st.sampled_from(["", "1", "*", "0", "-1"])))
    _parse_or_malformed(exchange, answer)


def _parse_or_malformed(exchange: str, answer: object) -> None:
    spec = INTROSPECTIONS[exchange]
    classified = spec.classify(answer)
    assert classified is None or isinstance(classified.code, str)
    try:
        report = spec.parse(answer, NOW)
    except MalformedAnswer:
        return
    assert isinstance(report, KeyReport)
    for moment in (report.expires_at, report.created_at):
        assert moment is None or moment.tzinfo is not None
