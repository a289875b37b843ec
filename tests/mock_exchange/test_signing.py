"""The mock's own signing recipes against the exchanges' published test vectors."""

from __future__ import annotations

from tests.mock_exchange import signing

BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
BINANCE_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
BINANCE_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"

KRAKEN_SECRET = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)
KRAKEN_NONCE = "1616492376594"
KRAKEN_PATH = "/0/private/AddOrder"
KRAKEN_BODY = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
KRAKEN_SIGNATURE = (
    "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="
)


def test_binance_recipe_matches_the_published_vector() -> None:
    assert signing.binance(BINANCE_SECRET, BINANCE_PAYLOAD) == BINANCE_SIGNATURE


def test_kraken_recipe_matches_the_published_vector() -> None:
    signature = signing.kraken(KRAKEN_SECRET, KRAKEN_PATH, KRAKEN_NONCE, KRAKEN_BODY)
    assert signature == KRAKEN_SIGNATURE


def test_signatures_compare_exactly() -> None:
    assert signing.same(BINANCE_SIGNATURE, BINANCE_SIGNATURE)
    assert not signing.same(BINANCE_SIGNATURE, BINANCE_SIGNATURE[:-1] + "0")
    assert not signing.same(BINANCE_SIGNATURE, BINANCE_SIGNATURE.upper())


def test_htx_parameters_are_sorted_and_encoded_with_upper_case_escapes() -> None:
    params = [
        ("Timestamp", "2017-05-11T15:19:30"),
        ("AccessKeyId", "e2xxxxxx-99xxxxxx"),
        ("SignatureVersion", "2"),
        ("SignatureMethod", "HmacSHA256"),
        ("Signature", "x"),
    ]
    assert signing.htx_canonical_query(params) == (
        "AccessKeyId=e2xxxxxx-99xxxxxx&SignatureMethod=HmacSHA256&SignatureVersion=2"
        "&Timestamp=2017-05-11T15%3A19%3A30"
    )
