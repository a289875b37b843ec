"""IP whitelist parsing for credential metadata.

An exchange key may be bound to a list of client addresses. exvault records that list
(in clear metadata, so ``exvault check`` can flag unbound keys without any secret) in a
normalized form, so that two spellings of one whitelist compare and hash alike inside
the associated data of the credential:

* a single address is stored bare: ``"203.0.113.7"``, never ``"203.0.113.7/32"``;
* a network is stored in compressed CIDR form: ``"2001:db8::/32"``;
* duplicates are dropped, first appearance wins, order is otherwise kept (the user's
  order is how they think of their hosts; sorting would only surprise them).

The wildcards ``0.0.0.0/0``, ``::/0`` and ``*`` are accepted on purpose: some keys
really are unrestricted, and recording that truthfully lets the rotation checker flag
them; refusing them would push users to record a lie (an empty or made-up list).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterable

from vault.errors import InvalidInput, quoted

__all__ = ["WILDCARDS", "is_unrestricted", "parse_ip_whitelist"]

#: Normalized whitelist entries that allow every client address.
WILDCARDS: frozenset[str] = frozenset({"0.0.0.0/0", "::/0", "*"})

# Commas are the documented separator; whitespace is accepted too because whitelists
# copied out of exchange web pages or shell variables are often space- or
# newline-separated.
_SEPARATORS = re.compile(r"[,\s]+")


# Long garbage is cut in messages: a mis-pasted blob (possibly a secret typed into the
# wrong prompt) should not be echoed whole, and the message must stay one line.
def _bad(item: str) -> InvalidInput:
    return InvalidInput(f"bad IP address or network {quoted(item)}")


def _address_text(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Return the stored spelling of a single address."""
    # An IPv4-mapped IPv6 address is an IPv4 client as the exchange sees it; storing
    # the IPv4 form also avoids the spelling of mapped addresses changing between
    # Python versions.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _normalize_one(item: str) -> str:
    """Normalize one whitelist entry (no separators, not empty).

    :raises InvalidInput: ``item`` is not an address, a network or ``*``, or it is a
        network with host bits set.
    """
    if item == "*":
        return item
    # A zone index ("fe80::1%eth0") names an interface of *this* host; an exchange
    # never sees it, so such an entry cannot mean what the user thinks.
    if "%" in item:
        raise InvalidInput(
            f"IP {quoted(item)} has a zone index (%...); list the address without it"
        )
    if "/" not in item:
        try:
            address = ipaddress.ip_address(item)
        except ValueError:
            raise _bad(item) from None
        return _address_text(address)
    try:
        network = ipaddress.ip_network(item, strict=False)
        interface = ipaddress.ip_interface(item)
    except ValueError:
        raise _bad(item) from None
    if interface.ip != network.network_address:
        raise InvalidInput(
            f"IP {quoted(item)} has host bits set; did you mean {network.compressed}?"
        )
    if network.prefixlen == network.max_prefixlen:
        # "/32" and "/128" are single hosts: store them the way a bare address is.
        return _address_text(network.network_address)
    return network.compressed


def parse_ip_whitelist(items: Iterable[str]) -> tuple[str, ...]:
    """Parse and normalize an IP whitelist.

    Each item is an IPv4 or IPv6 address, a network in CIDR (or address/netmask)
    form, or the wildcard ``*``; one item may hold several entries separated by
    commas or whitespace (``"1.2.3.4, 5.6.7.0/24"``). Empty entries are ignored. A
    single string passed instead of a list is taken as one item, not as characters.

    :param items: the entries as typed by the user.
    :returns: normalized entries, de-duplicated, in order of first appearance.
    :raises InvalidInput: an entry is not an address or network (the message quotes
        it), or is a network with host bits set (the message suggests the network).
    """
    if isinstance(items, str):
        items = (items,)
    seen: dict[str, None] = {}  # an insertion-ordered set
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput(f"bad IP address or network {item!r}: expected text")
        for part in _SEPARATORS.split(item):
            if part:
                seen.setdefault(_normalize_one(part), None)
    return tuple(seen)


def is_unrestricted(ips: Collection[str]) -> bool:
    """Tell whether a normalized whitelist lets any address use the key.

    :param ips: a whitelist as returned by :func:`parse_ip_whitelist`.
    :returns: ``True`` when the list is empty (no binding at all) or holds a wildcard.
    :raises: nothing.
    """
    return not ips or any(ip in WILDCARDS for ip in ips)
