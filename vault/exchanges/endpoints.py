"""Where a credential's exchange is reached: its live API, its testnet, or a base URL.

Stored in a version's signed metadata (``endpoint``), so that a database writer cannot
point a key at a server of theirs. ``live`` is the exchange's production API as ccxt
knows it; ``testnet`` its sandbox (ccxt's sandbox mode); a URL replaces the scheme and
host of every API URL of that exchange, keeping the paths (a regional host such as
``https://my.okx.com``, or a local test server).

A URL is ``https://host[:port]`` (no path, query, fragment or user), or plain
``http://`` only to this machine (``127.0.0.1``, ``[::1]`` or ``localhost``): a key's
signed requests must never cross a network in clear.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from vault.errors import InvalidInput, quoted

__all__ = ["LIVE", "LOOPBACK_HOSTS", "MAX_LENGTH", "TESTNET", "parse_endpoint"]

LIVE = "live"
"""The exchange's production API (stored as NULL; the same word as
:data:`vault.format.model.LIVE`, which a bot's process reads without importing this
package)."""
TESTNET = "testnet"
"""The exchange's sandbox, as ccxt's sandbox mode reaches it."""
MAX_LENGTH = 255
"""The length of the stored column."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
"""The hosts a plain ``http://`` endpoint may name."""

# A DNS name: labels of letters, digits and inner hyphens.
_HOST = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)


def _bad(text: str | None, why: str) -> InvalidInput:
    # ``text`` None: the input is not echoed (a user, password or query may be a secret).
    shown = "" if text is None else f" {quoted(text)}"
    return InvalidInput(
        f"bad endpoint{shown}: {why}; use live, testnet, https://HOST[:PORT] or "
        "http://127.0.0.1[:PORT]"
    )


def parse_endpoint(text: str) -> str:
    """The stored form of an endpoint as typed: ``live``, ``testnet`` or a base URL
    with its scheme and host in lower case and no trailing slash.

    :raises InvalidInput: for anything else, saying what is wrong.
    """
    if not isinstance(text, str):
        raise InvalidInput("the endpoint must be text")
    word = text.strip().lower()
    if word in (LIVE, TESTNET):
        return word
    if len(text) > MAX_LENGTH:
        raise _bad(None, f"longer than {MAX_LENGTH} characters")
    if "://" not in text:
        raise _bad(None if len(text) > 40 else text, "not live, testnet or a URL")
    if "@" in text:
        raise _bad(None, "a user or password in a URL is not allowed")
    if "?" in text or "#" in text:
        raise _bad(None, "only a scheme, a host and a port: the exchange's paths are kept")
    if any(c.isspace() or not c.isprintable() for c in text) or not text.isascii():
        raise _bad(None, "spaces, control or non-ASCII characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise _bad(text, "not a URL with a valid port") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise _bad(text, "not an https URL")
    if parts.path not in ("", "/"):
        raise _bad(None, "only a scheme, a host and a port: the exchange's paths are kept")
    host = (parts.hostname or "").lower()
    if not host:
        raise _bad(text, "no host")
    if port == 0:
        raise _bad(text, "port 0")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _HOST.fullmatch(host):
            raise _bad(text, "not a host name") from None
        shown = host
    else:
        shown = f"[{address.compressed}]" if address.version == 6 else address.compressed
        host = address.compressed
    if scheme == "http" and host not in LOOPBACK_HOSTS:
        raise _bad(text, "plain http is only for a server on this machine")
    return f"{scheme}://{shown}" + (f":{port}" if port is not None else "")
