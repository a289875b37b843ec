"""Tests of vault.network: IP whitelist parsing and normalization."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import InvalidInput
from vault.network import WILDCARDS, is_unrestricted, parse_ip_whitelist


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7/32", "203.0.113.7"),
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("10.0.0.0/255.0.0.0", "10.0.0.0/8"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("2001:db8::1/128", "2001:db8::1"),
        ("2001:0db8::/32", "2001:db8::/32"),
        ("::ffff:198.51.100.1", "198.51.100.1"),
        ("::ffff:198.51.100.1/128", "198.51.100.1"),
        (" 203.0.113.7 ", "203.0.113.7"),
    ],
)
def test_single_entries_are_normalized(raw: str, expected: str) -> None:
    assert parse_ip_whitelist([raw]) == (expected,)


def test_comma_separated_items_in_one_string() -> None:
    assert parse_ip_whitelist(["1.2.3.4, 5.6.7.0/24", "2001:db8::/48"]) == (
        "1.2.3.4",
        "5.6.7.0/24",
        "2001:db8::/48",
    )


def test_whitespace_and_newlines_also_separate() -> None:
    assert parse_ip_whitelist(["1.2.3.4 5.6.7.8\n9.9.9.9"]) == ("1.2.3.4", "5.6.7.8", "9.9.9.9")


def test_duplicates_dropped_first_appearance_kept() -> None:
    result = parse_ip_whitelist(["5.6.7.8", "1.2.3.4/32", "1.2.3.4", "5.6.7.8"])
    assert result == ("5.6.7.8", "1.2.3.4")


def test_empty_items_ignored() -> None:
    assert parse_ip_whitelist(["", " ", ",,", "1.2.3.4,", ""]) == ("1.2.3.4",)
    assert parse_ip_whitelist([]) == ()


def test_single_string_is_one_item_not_characters() -> None:
    assert parse_ip_whitelist("1.2.3.4,5.6.7.8") == ("1.2.3.4", "5.6.7.8")


@pytest.mark.parametrize(
    ("raw", "expected"), [("0.0.0.0/0", "0.0.0.0/0"), ("::/0", "::/0"), ("*", "*")]
)
def test_wildcards_are_accepted(raw: str, expected: str) -> None:
    assert parse_ip_whitelist([raw]) == (expected,)
    assert expected in WILDCARDS


def test_host_bits_set_is_refused_with_suggestion() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_ip_whitelist(["203.0.113.7/24"])
    assert str(info.value) == (
        'IP "203.0.113.7/24" has host bits set; did you mean 203.0.113.0/24?'
    )


def test_host_bits_set_ipv6() -> None:
    with pytest.raises(InvalidInput, match=r"did you mean 2001:db8::/32\?"):
        parse_ip_whitelist(["2001:db8::1/32"])


@pytest.mark.parametrize("bad", ["xyz", "1.2.3", "1.2.3.4/33", "256.1.1.1", "1.2.3.4/x", "::g"])
def test_garbage_is_refused_and_quoted(bad: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_ip_whitelist([bad])
    assert str(info.value) == f'bad IP address or network "{bad}"'


def test_garbage_message_exact() -> None:
    with pytest.raises(InvalidInput, match=r'^bad IP address or network "xyz"$'):
        parse_ip_whitelist(["1.2.3.4", "xyz"])


def test_long_garbage_is_shortened_in_message() -> None:
    blob = "A" * 500
    with pytest.raises(InvalidInput) as info:
        parse_ip_whitelist([blob])
    assert blob not in str(info.value)
    assert len(str(info.value)) < 120


def test_zone_index_refused() -> None:
    with pytest.raises(InvalidInput, match="zone index"):
        parse_ip_whitelist(["fe80::1%eth0"])


def test_non_text_item_refused() -> None:
    with pytest.raises(InvalidInput):
        parse_ip_whitelist([42])  # type: ignore[list-item]


def test_is_unrestricted() -> None:
    assert is_unrestricted(())
    assert is_unrestricted(("1.2.3.4", "0.0.0.0/0"))
    assert is_unrestricted(("::/0",))
    assert is_unrestricted(("*",))
    assert not is_unrestricted(("1.2.3.4", "10.0.0.0/8"))


# ---------------------------------------------------------------- properties

networks = st.one_of(
    st.builds(
        lambda address, prefix: ipaddress.ip_network((address, prefix), strict=False),
        st.ip_addresses(v=4),
        st.integers(0, 32),
    ),
    st.builds(
        lambda address, prefix: ipaddress.ip_network((address, prefix), strict=False),
        st.ip_addresses(v=6),
        st.integers(0, 128),
    ),
)


@settings(deadline=None)
@given(networks)
def test_any_network_parses_back(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
    for spelling in (str(network), network.exploded, network.with_prefixlen):
        (entry,) = parse_ip_whitelist([spelling])
        if network.prefixlen == network.max_prefixlen:
            address = network.network_address
            mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
            assert entry == str(mapped if mapped is not None else address)
        else:
            assert entry == network.compressed
            assert ipaddress.ip_network(entry) == network


@settings(deadline=None)
@given(st.lists(st.one_of(networks.map(str), st.ip_addresses().map(str)), max_size=8))
def test_normalizing_twice_equals_once(items: list[str]) -> None:
    once = parse_ip_whitelist(items)
    assert parse_ip_whitelist(once) == once
    assert parse_ip_whitelist([",".join(items)]) == once


@settings(deadline=None)
@given(st.lists(st.text(max_size=30), max_size=4))
def test_junk_parses_or_raises_invalid_input(items: list[str]) -> None:
    try:
        result = parse_ip_whitelist(items)
    except InvalidInput:
        return
    assert parse_ip_whitelist(result) == result


@settings(deadline=None)
@given(st.text(alphabet="0123456789abcdef.:/%*, ", max_size=40))
def test_ip_looking_junk_parses_or_raises_invalid_input(item: str) -> None:
    with contextlib.suppress(InvalidInput):
        parse_ip_whitelist([item])
