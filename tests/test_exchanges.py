"""Tests of vault.exchanges: profiles, permissions, IP limits, payload validation."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import InvalidInput
from vault.exchanges.fields import (
    CCXT_CREDENTIAL_NAMES,
    PERMISSIONS,
    STANDARD_FIELDS,
    validate_field_name,
)
from vault.exchanges.keyformats import normalize_payload, normalize_pem
from vault.exchanges.profiles import (
    APPLIES_WHEN,
    ExchangeProfile,
    LifetimeRule,
    all_profiles,
    get_profile,
)

EXCHANGE_IDS = ("binance", "kucoin", "okx", "bitget", "htx", "bybit", "gate", "kraken", "coinbase")

# Published example keys (from the exchanges' API documentation): real-shaped secrets that
# must be accepted.
BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
KRAKEN_SECRET = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)
CDP_KEY_NAME = "organizations/0a1b2c3d-org/apiKeys/9f8e7d6c-key"
CDP_KEY_ID = "4aea4397-7187-4f01-bd77-16d39af38b43"


# ---------------------------------------------------------------- key material


def _pem(
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey,
    fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    # RSA generation is the slow part of this module: once per module.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_pem(rsa_key: rsa.RSAPrivateKey) -> str:
    return _pem(rsa_key)


@pytest.fixture
def ed25519_pem() -> str:
    return _pem(ed25519.Ed25519PrivateKey.generate())


@pytest.fixture
def ec_sec1_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return _pem(key, serialization.PrivateFormat.TraditionalOpenSSL)


@pytest.fixture
def ec_pkcs8_pem() -> str:
    return _pem(ec.generate_private_key(ec.SECP256R1()))


def _coinbase_ed25519(key: ed25519.Ed25519PrivateKey | None = None) -> str:
    key = key or ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(seed + public).decode()


def _escaped(pem: str) -> str:
    """A PEM the way web UIs and JSON downloads give it: literal backslash-n."""
    return pem.replace("\n", "\\n")


# ---------------------------------------------------------------- profiles


def test_every_exchange_has_a_profile_plus_other() -> None:
    ids = [profile.id for profile in all_profiles()]
    assert ids == [*EXCHANGE_IDS, "other"]
    assert "ascendex" not in ids


@pytest.mark.parametrize("exchange_id", [*EXCHANGE_IDS, "other"])
def test_get_profile_is_case_insensitive(exchange_id: str) -> None:
    profile = get_profile(exchange_id.upper())
    assert profile.id == exchange_id
    assert get_profile(f" {exchange_id} ") is profile


def test_former_ccxt_ids_resolve() -> None:
    assert get_profile("huobi").id == "htx"
    assert get_profile("gateio").id == "gate"


def test_unknown_exchange_message() -> None:
    with pytest.raises(InvalidInput) as info:
        get_profile("foo")
    assert str(info.value) == (
        'unknown exchange "foo"; run "exvault exchanges" for the list, or use --exchange other'
    )


def test_ascendex_is_unknown() -> None:
    with pytest.raises(InvalidInput, match="--exchange other"):
        get_profile("ascendex")


def test_profiles_are_frozen_and_hashable() -> None:
    profile = get_profile("okx")
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.max_ips = 99  # type: ignore[misc]
    assert {profile: 1}[get_profile("OKX")] == 1
    with pytest.raises(TypeError):
        profile.permission_aliases["x"] = "read"  # type: ignore[index]


@pytest.mark.parametrize("exchange_id", EXCHANGE_IDS)
def test_required_fields_match_ccxt(exchange_id: str) -> None:
    ccxt = pytest.importorskip("ccxt")
    required = {
        name for name, needed in getattr(ccxt, exchange_id)().requiredCredentials.items() if needed
    }
    ours = {CCXT_CREDENTIAL_NAMES[name] for name in get_profile(exchange_id).required_fields}
    assert ours == required


def test_other_profile() -> None:
    other = get_profile("other")
    assert other.required_fields == ("api_key", "secret")
    assert other.max_ips is None and other.ip_ranges_allowed and other.ipv6_allowed
    other.validate_ips(tuple(f"10.0.{i // 256}.{i % 256}" for i in range(500)))
    other.validate_payload({"api_key": "k", "secret": "s", "custom_field": "x"})


def test_profile_table_errors_are_caught_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown"):
        ExchangeProfile("x", "X", ("api_key",), permission_aliases={"foo": "bar"})
    with pytest.raises(ValueError, match="ambiguous"):
        ExchangeProfile("x", "X", ("api_key",), permission_aliases={"Foo": "read", "foo": "trade"})


# ---------------------------------------------------------------- fields


def test_standard_fields() -> None:
    assert STANDARD_FIELDS[:5] == ("api_key", "secret", "passphrase", "uid", "private_key")
    assert set(STANDARD_FIELDS) == set(CCXT_CREDENTIAL_NAMES)
    assert CCXT_CREDENTIAL_NAMES["passphrase"] == "password"


@pytest.mark.parametrize("name", [*STANDARD_FIELDS, "a", "sub_account_2", "x" * 64])
def test_valid_field_names(name: str) -> None:
    validate_field_name(name)


@pytest.mark.parametrize("name", ["", "Api_key", "2fa", "_x", "api-key", "x" * 65, "ключ"])
def test_bad_field_names(name: str) -> None:
    with pytest.raises(InvalidInput, match="bad field name"):
        validate_field_name(name)


def test_long_bad_field_name_is_not_echoed() -> None:
    name = "Z" * 200
    with pytest.raises(InvalidInput) as info:
        validate_field_name(name)
    assert name not in str(info.value)


# ---------------------------------------------------------------- permissions

VOCABULARIES = {
    "binance": {
        "enableReading": "read",
        "enableSpotAndMarginTrading": "trade",
        "enableMargin": "margin",
        "enableFutures": "futures",
        "enableWithdrawals": "withdraw",
        "enableInternalTransfer": "transfer",
        "permitsUniversalTransfer": "transfer",
        "enableVanillaOptions": "futures",
    },
    "kucoin": {
        "General": "read",
        "Spot": "trade",
        "Margin": "margin",
        "Futures": "futures",
        "InnerTransfer": "transfer",
        "Withdrawal": "withdraw",
    },
    "okx": {"read_only": "read", "trade": "trade", "withdraw": "withdraw"},
    "bybit": {
        "readOnly": "read",
        "ContractTrade": "futures",
        "Spot": "trade",
        "Wallet": "transfer",
        "AccountTransfer": "transfer",
        "SubMemberTransferList": "transfer",
        "Options": "futures",
        "Derivatives": "futures",
        "Exchange": "trade",
        "Earn": "trade",
    },
    "htx": {"readOnly": "read", "trade": "trade", "withdraw": "withdraw"},
    "gate": {
        "wallet": "transfer",
        "spot": "trade",
        "futures": "futures",
        "delivery": "futures",
        "earn": "trade",
        "options": "futures",
        "account": "subaccount",
        "loan": "margin",
        "margin": "margin",
        "unified": "margin",
    },
    "kraken": {
        "query-funds": "read",
        "withdraw-funds": "withdraw",
        "query-open-trades": "read",
        "query-closed-trades": "read",
        "modify-trades": "trade",
    },
    "coinbase": {"View": "read", "Trade": "trade", "Transfer": "withdraw"},
}


@pytest.mark.parametrize(
    ("exchange_id", "alias", "expected"),
    [(ex, alias, perm) for ex, table in VOCABULARIES.items() for alias, perm in table.items()],
)
def test_exchange_vocabulary_maps(exchange_id: str, alias: str, expected: str) -> None:
    profile = get_profile(exchange_id)
    assert profile.normalize_permissions([alias]) == (expected,)
    assert profile.normalize_permissions([alias.upper()]) == (expected,)
    assert profile.normalize_permissions([alias.lower()]) == (expected,)


@pytest.mark.parametrize("exchange_id", [*EXCHANGE_IDS, "other"])
def test_normalized_names_accepted_everywhere(exchange_id: str) -> None:
    profile = get_profile(exchange_id)
    names = [name for name in PERMISSIONS if not (exchange_id == "coinbase" and name == "transfer")]
    assert profile.normalize_permissions(reversed(names)) == tuple(names)


def test_comma_separated_sorted_unique() -> None:
    binance = get_profile("binance")
    result = binance.normalize_permissions(
        ["enableWithdrawals, READ", "enableSpotAndMarginTrading,trade", "read"]
    )
    assert result == ("read", "trade", "withdraw")
    assert binance.normalize_permissions("withdraw,read") == ("read", "withdraw")
    assert binance.normalize_permissions([]) == ()


def test_other_understands_every_exchange_vocabulary() -> None:
    other = get_profile("other")
    assert other.normalize_permissions(["enableWithdrawals", "General", "ContractTrade"]) == (
        "read",
        "futures",
        "withdraw",
    )
    # Coinbase's "Transfer" clashes with our own "transfer": ours wins in "other".
    assert other.normalize_permissions(["transfer"]) == ("transfer",)


def test_aliases_only_clash_with_our_names_on_purpose() -> None:
    for profile in all_profiles():
        for alias, permission in profile.permission_aliases.items():
            if alias.lower() in PERMISSIONS and alias.lower() != permission:
                assert (profile.id, alias) == ("coinbase", "Transfer")


def test_unknown_permission_lists_valid_names() -> None:
    with pytest.raises(InvalidInput) as info:
        get_profile("kucoin").normalize_permissions(["read", "superuser"])
    message = str(info.value)
    assert message.startswith('unknown permission "superuser" for kucoin')
    for name in (*PERMISSIONS, "General", "InnerTransfer"):
        assert name in message


def test_vocabulary_of_one_exchange_is_not_accepted_by_another() -> None:
    with pytest.raises(InvalidInput):
        get_profile("okx").normalize_permissions(["enableWithdrawals"])


@settings(deadline=None)
@given(
    st.sampled_from(all_profiles()),
    st.lists(st.sampled_from([*PERMISSIONS, "General", "enableFutures", "Spot", "query-funds"])),
)
def test_normalizing_permissions_twice_equals_once(
    profile: ExchangeProfile, items: list[str]
) -> None:
    try:
        once = profile.normalize_permissions(items)
    except InvalidInput:
        return
    assert profile.normalize_permissions(once) == once
    assert list(once) == sorted(once, key=PERMISSIONS.index)


@settings(deadline=None)
@given(st.sampled_from(all_profiles()), st.lists(st.text(max_size=20), max_size=4))
def test_permission_junk_parses_or_raises_invalid_input(
    profile: ExchangeProfile, items: list[str]
) -> None:
    try:
        result = profile.normalize_permissions(items)
    except InvalidInput:
        return
    assert set(result) <= set(PERMISSIONS)


# ---------------------------------------------------------------- IP limits


def test_ip_limits_table() -> None:
    assert get_profile("gate").max_ips == 20
    assert get_profile("htx").max_ips == 10
    assert get_profile("okx").max_ips == 20
    assert get_profile("kucoin").max_ips == 20
    assert not get_profile("gate").ip_ranges_allowed
    assert get_profile("htx").ip_ranges_allowed


def test_gate_range_refused() -> None:
    with pytest.raises(InvalidInput, match=r'gate does not accept IP ranges \("10.0.0.0/8"\)'):
        get_profile("gate").validate_ips(("1.2.3.4", "10.0.0.0/8"))


def test_gate_ipv6_refused() -> None:
    with pytest.raises(InvalidInput, match="IPv4 addresses only"):
        get_profile("gate").validate_ips(("2001:db8::1",))


def test_gate_too_many_ips() -> None:
    ips = tuple(f"192.0.2.{i}" for i in range(1, 22))
    get_profile("gate").validate_ips(ips[:20])
    with pytest.raises(InvalidInput, match="gate allows at most 20 IP entries per key, got 21"):
        get_profile("gate").validate_ips(ips)


def test_htx_too_many_ips_ranges_fine() -> None:
    ips = tuple(f"10.{i}.0.0/16" for i in range(11))
    get_profile("htx").validate_ips(ips[:10])
    with pytest.raises(InvalidInput, match="at most 10"):
        get_profile("htx").validate_ips(ips)


@pytest.mark.parametrize("exchange_id", ["okx", "kucoin"])
def test_okx_kucoin_twenty_ips(exchange_id: str) -> None:
    ips = tuple(f"198.51.100.{i}" for i in range(1, 22))
    get_profile(exchange_id).validate_ips(ips[:20])
    with pytest.raises(InvalidInput, match="at most 20"):
        get_profile(exchange_id).validate_ips(ips)


@pytest.mark.parametrize("wildcard", ["*", "0.0.0.0/0", "::/0"])
def test_wildcard_is_not_a_range_or_counted(wildcard: str) -> None:
    get_profile("gate").validate_ips((wildcard,))
    get_profile("gate").validate_ips((wildcard, *(f"192.0.2.{i}" for i in range(1, 21))))


def test_validate_ips_refuses_garbage() -> None:
    with pytest.raises(InvalidInput, match='bad IP address or network "nope"'):
        get_profile("okx").validate_ips(("nope",))


# ---------------------------------------------------------------- payloads: accepted


def test_binance_hmac_secret(rsa_pem: str) -> None:
    get_profile("binance").validate_payload({"api_key": "k" * 64, "secret": BINANCE_SECRET})


def test_binance_rsa_and_ed25519_pem(rsa_pem: str, ed25519_pem: str) -> None:
    binance = get_profile("binance")
    binance.validate_payload({"api_key": "key", "secret": rsa_pem})
    binance.validate_payload({"api_key": "key", "secret": ed25519_pem})


def test_binance_pkcs1_rsa_pem(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = _pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL)
    get_profile("binance").validate_payload({"api_key": "key", "secret": pem})


def test_pem_with_literal_backslash_n_is_accepted(ed25519_pem: str, ec_sec1_pem: str) -> None:
    binance = get_profile("binance")
    stored = binance.prepare_payload({"api_key": "key", "secret": _escaped(ed25519_pem)})
    assert stored["secret"] == ed25519_pem.strip()
    coinbase = get_profile("coinbase")
    stored = coinbase.prepare_payload({"api_key": CDP_KEY_NAME, "secret": _escaped(ec_sec1_pem)})
    assert "\\n" not in stored["secret"]
    assert stored["secret"].startswith("-----BEGIN EC PRIVATE KEY-----\n")


def test_pem_collapsed_onto_one_line_is_accepted(rsa_pem: str) -> None:
    collapsed = " ".join(rsa_pem.split("\n"))
    stored = get_profile("bybit").prepare_payload({"api_key": "key", "secret": collapsed})
    assert stored["secret"] == rsa_pem.strip()


def test_pem_with_crlf_and_trailing_newline_is_accepted(ed25519_pem: str) -> None:
    raw = ed25519_pem.replace("\n", "\r\n") + "\r\n"
    stored = get_profile("binance").prepare_payload({"api_key": "key", "secret": raw})
    assert stored["secret"] == ed25519_pem.strip()


def test_bybit_hmac_and_rsa(rsa_pem: str) -> None:
    bybit = get_profile("bybit")
    bybit.validate_payload({"api_key": "XXXXXXXXXXXXXXXXXX", "secret": "a" * 36})
    bybit.validate_payload({"api_key": "XXXXXXXXXXXXXXXXXX", "secret": rsa_pem})


def test_kraken_vector_secret() -> None:
    get_profile("kraken").validate_payload({"api_key": "key", "secret": KRAKEN_SECRET})


def test_kucoin_okx_bitget_with_passphrase() -> None:
    get_profile("kucoin").validate_payload({"api_key": "k", "secret": "s", "passphrase": "1234567"})
    get_profile("okx").validate_payload({"api_key": "k", "secret": "s", "passphrase": "Ab1!efgh"})
    get_profile("bitget").validate_payload({"api_key": "k", "secret": "s", "passphrase": "x"})


def test_coinbase_ec_key_both_encodings(ec_sec1_pem: str, ec_pkcs8_pem: str) -> None:
    coinbase = get_profile("coinbase")
    coinbase.validate_payload({"api_key": CDP_KEY_NAME, "secret": ec_sec1_pem})
    coinbase.validate_payload({"api_key": CDP_KEY_NAME, "secret": ec_pkcs8_pem})


def test_coinbase_ed25519_key() -> None:
    secret = _coinbase_ed25519()
    assert len(secret) == 88
    get_profile("coinbase").validate_payload({"api_key": CDP_KEY_ID, "secret": secret})


def test_private_key_field_loads(ed25519_pem: str) -> None:
    get_profile("other").validate_payload(
        {"api_key": "k", "secret": "s", "private_key": _escaped(ed25519_pem)}
    )


def test_empty_optional_fields_are_dropped() -> None:
    payload = {"api_key": "k", "secret": BINANCE_SECRET, "uid": "", "passphrase": ""}
    stored = get_profile("binance").prepare_payload(payload)
    assert stored == {"api_key": "k", "secret": BINANCE_SECRET}


# ---------------------------------------------------------------- payloads: refused


def _refused(exchange_id: str, payload: dict[str, str], pattern: str) -> InvalidInput:
    with pytest.raises(InvalidInput, match=pattern) as info:
        get_profile(exchange_id).validate_payload(payload)
    return info.value


def test_missing_kucoin_passphrase() -> None:
    _refused("kucoin", {"api_key": "k", "secret": "s"}, 'kucoin needs the field "passphrase"')


def test_empty_required_field() -> None:
    _refused("okx", {"api_key": "k", "secret": "", "passphrase": "Ab1!efgh"}, '"secret"')


def test_kucoin_passphrase_too_short() -> None:
    _refused(
        "kucoin", {"api_key": "k", "secret": "s", "passphrase": "123456"}, "7 to 32 characters"
    )


@pytest.mark.parametrize(
    "passphrase", ["Ab1!efg", "ab1!efgh", "AB1!EFGH", "Abc!efgh", "Ab1cefgh", "Ab1!" + "x" * 29]
)
def test_bad_okx_passphrase(passphrase: str) -> None:
    _refused(
        "okx",
        {"api_key": "k", "secret": "s", "passphrase": passphrase},
        "okx passphrase must be 8 to 32 characters with a digit",
    )


def test_kraken_secret_not_base64() -> None:
    _refused("kraken", {"api_key": "k", "secret": "not base64 at all!"}, "base64 private key")


def test_kraken_secret_wrong_length() -> None:
    short = base64.b64encode(b"\0" * 32).decode()
    _refused("kraken", {"api_key": "k", "secret": short}, "64 bytes")


def test_binance_malformed_pem() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQ\n-----END PRIVATE KEY-----"
    _refused("binance", {"api_key": "k", "secret": pem}, "binance secret is not a readable PEM")


def test_binance_truncated_pem(rsa_pem: str) -> None:
    lines = rsa_pem.strip().split("\n")
    truncated = "\n".join([*lines[:5], lines[-1]])
    _refused("binance", {"api_key": "k", "secret": truncated}, "not a readable PEM")


def test_binance_ec_key_refused(ec_pkcs8_pem: str) -> None:
    _refused("binance", {"api_key": "k", "secret": ec_pkcs8_pem}, "RSA or Ed25519")


def test_bybit_ed25519_key_refused(ed25519_pem: str) -> None:
    _refused("bybit", {"api_key": "k", "secret": ed25519_pem}, "bybit takes RSA")


@pytest.mark.parametrize("secret", ["short", "has a space in the middle of it", "x" * 129])
def test_binance_bad_hmac_secret(secret: str) -> None:
    _refused("binance", {"api_key": "k", "secret": secret}, "HMAC secret")


def test_encrypted_pem_refused() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    ).decode()
    _refused("binance", {"api_key": "k", "secret": pem}, "password-protected")


def test_public_key_pasted_instead_of_private() -> None:
    public = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    _refused("binance", {"api_key": "k", "secret": public}, "public key")


def test_coinbase_malformed_pem() -> None:
    pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIJsB+NpntMgn\n-----END EC PRIVATE KEY-----"
    _refused(
        "coinbase", {"api_key": CDP_KEY_NAME, "secret": pem}, "coinbase secret is not a readable"
    )


def test_coinbase_wrong_curve_refused() -> None:
    pem = _pem(ec.generate_private_key(ec.SECP256K1()))
    _refused("coinbase", {"api_key": CDP_KEY_NAME, "secret": pem}, "EC P-256")


def test_coinbase_rsa_refused(rsa_pem: str) -> None:
    _refused("coinbase", {"api_key": CDP_KEY_NAME, "secret": rsa_pem}, "EC P-256")


def test_coinbase_damaged_ed25519() -> None:
    raw = bytearray(base64.b64decode(_coinbase_ed25519()))
    raw[40] ^= 1
    secret = base64.b64encode(bytes(raw)).decode()
    _refused("coinbase", {"api_key": CDP_KEY_ID, "secret": secret}, "not a consistent Ed25519")


def test_coinbase_secret_neither_form() -> None:
    _refused("coinbase", {"api_key": CDP_KEY_ID, "secret": "a" * 32}, "EC P-256 PEM")


@pytest.mark.parametrize("api_key", ["abcdEFGH12345678", "organizations/x/apiKeys/", "my key"])
def test_coinbase_legacy_or_bad_api_key(api_key: str, ec_sec1_pem: str) -> None:
    _refused("coinbase", {"api_key": api_key, "secret": ec_sec1_pem}, "CDP key name")


def test_api_key_holding_pem_refused(ec_sec1_pem: str) -> None:
    _refused("coinbase", {"api_key": ec_sec1_pem, "secret": ec_sec1_pem}, "api_key holds a PEM")


@pytest.mark.parametrize("value", [" key", "key ", "key\n", "\u00a0key"])
def test_surrounding_whitespace_refused(value: str) -> None:
    _refused("htx", {"api_key": value, "secret": "s"}, 'field "api_key" has leading or trailing')


def test_control_character_refused() -> None:
    _refused("gate", {"api_key": "k", "secret": "ab\x00cd"}, "control character")


def test_unloadable_private_key_field() -> None:
    _refused(
        "other",
        {"api_key": "k", "secret": "s", "private_key": "-----BEGIN PRIVATE KEY-----\nAA\n"},
        "other private_key is not a readable PEM",
    )


def test_bad_field_name_in_payload() -> None:
    _refused("other", {"api_key": "k", "secret": "s", "Bad-Name": "x"}, "bad field name")


def test_non_text_value_refused() -> None:
    _refused("other", {"api_key": "k", "secret": 5}, 'field "secret" must be text')  # type: ignore[dict-item]


# ---------------------------------------------------------------- no secret in messages


SECRET_MARK = "S3cr3tV4lu3"


@pytest.mark.parametrize(
    ("exchange_id", "payload"),
    [
        ("binance", {"api_key": "k", "secret": SECRET_MARK + " x"}),
        ("binance", {"api_key": "k", "secret": SECRET_MARK}),
        ("binance", {"api_key": "k", "secret": f"-----BEGIN PRIVATE KEY-----\n{SECRET_MARK}\n"}),
        ("kraken", {"api_key": "k", "secret": SECRET_MARK + "!"}),
        ("okx", {"api_key": "k", "secret": "s", "passphrase": SECRET_MARK}),
        ("kucoin", {"api_key": "k", "secret": "s", "passphrase": SECRET_MARK * 4}),
        ("coinbase", {"api_key": SECRET_MARK, "secret": SECRET_MARK}),
        ("coinbase", {"api_key": CDP_KEY_ID, "secret": SECRET_MARK}),
        ("gate", {"api_key": "k", "secret": f" {SECRET_MARK}"}),
        ("gate", {"api_key": "k", "secret": f"{SECRET_MARK}\x07"}),
        ("other", {"api_key": "k", "secret": "s", "private_key": f"-----BEGIN {SECRET_MARK}"}),
    ],
)
def test_messages_never_contain_the_secret(exchange_id: str, payload: dict[str, str]) -> None:
    with pytest.raises(InvalidInput) as info:
        get_profile(exchange_id).validate_payload(payload)
    error = info.value
    assert SECRET_MARK not in str(error)
    assert SECRET_MARK not in repr(error.args)
    assert exchange_id in str(error)
    # Nothing from the key parser is chained into the traceback.
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None


def test_message_does_not_contain_real_key(rsa_pem: str) -> None:
    damaged = rsa_pem.replace("M", "*", 3)
    with pytest.raises(InvalidInput) as info:
        get_profile("binance").validate_payload({"api_key": "k", "secret": damaged})
    body = "".join(rsa_pem.strip().split("\n")[1:-1])
    assert body[:16] not in str(info.value)


# ---------------------------------------------------------------- normalization properties

pem_bodies = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", max_size=300
)


@settings(deadline=None)
@given(pem_bodies, st.sampled_from(["\n", "\\n", "\r\n", " ", "\\r\\n"]), st.booleans())
def test_normalize_pem_is_idempotent(body: str, newline: str, trailing: bool) -> None:
    lines = [body[i : i + 50] for i in range(0, len(body), 50)]
    text = newline.join(["-----BEGIN PRIVATE KEY-----", *lines, "-----END PRIVATE KEY-----"])
    if trailing:
        text += newline
    once = normalize_pem(text)
    assert normalize_pem(once) == once
    assert "\\n" not in once and "\r" not in once
    assert once.startswith("-----BEGIN PRIVATE KEY-----")
    assert "".join(once.split("\n")[1:-1]) == body


@settings(deadline=None)
@given(st.dictionaries(st.sampled_from(STANDARD_FIELDS), st.text(max_size=60), max_size=6))
def test_normalize_payload_is_idempotent(payload: dict[str, str]) -> None:
    once = normalize_payload(payload)
    assert normalize_payload(once) == once


@settings(deadline=None)
@given(st.dictionaries(st.text(max_size=30), st.text(max_size=60), max_size=4))
def test_normalize_payload_junk_is_idempotent(payload: dict[str, str]) -> None:
    once = normalize_payload(payload)
    assert normalize_payload(once) == once


payload_values = st.one_of(
    st.text(max_size=100),
    st.text(max_size=100).map(
        lambda t: f"-----BEGIN PRIVATE KEY-----\n{t}\n-----END PRIVATE KEY-----"
    ),
    st.binary(min_size=60, max_size=68).map(lambda b: base64.b64encode(b).decode()),
    st.sampled_from([BINANCE_SECRET, KRAKEN_SECRET, CDP_KEY_ID, CDP_KEY_NAME, "Ab1!efgh"]),
)


@settings(deadline=None, max_examples=300)
@given(
    st.sampled_from(all_profiles()),
    st.dictionaries(
        st.one_of(st.sampled_from(STANDARD_FIELDS), st.text(max_size=10)),
        payload_values,
        max_size=5,
    ),
)
def test_payload_junk_validates_or_raises_invalid_input(
    profile: ExchangeProfile, payload: dict[str, str]
) -> None:
    try:
        stored = profile.prepare_payload(payload)
    except InvalidInput:
        return
    # Whatever passed validates again unchanged, in its stored form.
    assert profile.prepare_payload(stored) == stored


# ---------------------------------------------------------------- lifetime rules


def _rules() -> dict[str, LifetimeRule]:
    return {rule.code: rule for profile in all_profiles() for rule in profile.lifetime_rules}


def test_lifetime_rules_are_well_formed() -> None:
    codes = [rule.code for profile in all_profiles() for rule in profile.lifetime_rules]
    assert len(codes) == len(set(codes))
    for rule in _rules().values():
        assert rule.applies_when in APPLIES_WHEN
        assert rule.description and rule.source
        assert rule.days is None or rule.days >= 0


def test_lifetime_facts() -> None:
    def rule_of(exchange_id: str, applies_when: str) -> LifetimeRule:
        (rule,) = [
            r for r in get_profile(exchange_id).lifetime_rules if r.applies_when == applies_when
        ]
        return rule

    assert rule_of("okx", "no_ip_inactive").days == 14
    assert rule_of("bybit", "no_ip").days == 90
    assert rule_of("bybit", "no_ip_password_change").days == 7
    assert rule_of("binance", "no_ip_trade").days == 30
    assert rule_of("htx", "no_ip").days == 90
    kucoin = rule_of("kucoin", "expiry_set")
    assert kucoin.days is None and kucoin.choices_days == (30, 90, 180, 360)
    assert rule_of("kraken", "expiry_set").days is None
    assert get_profile("gate").lifetime_rules == ()
    assert get_profile("other").lifetime_rules == ()
