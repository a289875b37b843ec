"""Real ccxt clients pointed at a mock exchange.

Every entry of the client's ``urls['api']`` keeps its path and gets the mock's
``http://127.0.0.1:PORT`` instead of the exchange's host; HTX also signs the host, so
its ``hostname`` becomes the mock's ``127.0.0.1:PORT`` (what the client sends as Host).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.mock_exchange.registry import ApiKey
from tests.mock_exchange.server import MockExchange


def rebase(urls: Any, base: str) -> Any:
    """``urls`` (a URL or a nested dict of them) with every host replaced by ``base``."""
    if isinstance(urls, dict):
        return {name: rebase(url, base) for name, url in urls.items()}
    if isinstance(urls, str) and "://" in urls:
        return base + urlsplit(urls).path.rstrip("/")
    return urls


def ccxt_client(
    mock: MockExchange,
    key: ApiKey,
    *,
    timeout_ms: int = 5000,
    **credentials: str | None,
) -> Any:
    """A ccxt client of ``mock``'s exchange holding ``key``'s credentials, each of
    ``api_key``, ``secret`` and ``passphrase`` replaceable through ``credentials``."""
    import ccxt  # type: ignore[import-untyped]

    values = {"api_key": key.api_key, "secret": key.secret, "passphrase": key.passphrase}
    values.update(credentials)
    config: dict[str, Any] = {
        "apiKey": values["api_key"],
        "secret": values["secret"],
        "timeout": timeout_ms,
        "enableRateLimit": False,
    }
    if values["passphrase"] is not None:
        config["password"] = values["passphrase"]
    return pointed(getattr(ccxt, mock.name)(config), mock)


def pointed(client: Any, mock: MockExchange) -> Any:
    """``client`` (a bare ccxt client of ``mock``'s exchange, for the mock's own tests)
    with its API URLs and host pointed at ``mock``, and no client-side rate limit.
    exvault's clients are never re-pointed: its credentials name the mock as their
    endpoint (``--endpoint http://127.0.0.1:PORT``)."""
    client.urls["api"] = rebase(client.urls["api"], mock.url)
    client.hostname = f"127.0.0.1:{mock.port}"
    client.enableRateLimit = False
    return client
