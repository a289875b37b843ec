"""A local stand-in for the exchanges' REST APIs, for tests only.

Each mock exchange (binance, kucoin, okx, bybit, htx, kraken, bitget) is an HTTP server
on 127.0.0.1 with a registry of accounts and API keys that the test fills
(:class:`~tests.mock_exchange.registry.ApiKey`: key, secret, passphrase, permissions in
the exchange's own vocabulary, IP whitelist, creation, expiry, sub-account). It serves
the exchange's server-time endpoint and its key-introspection endpoint, with bodies
shaped as in the exchange's documentation, and it verifies every private request's
signature with its own implementation of the exchange's recipe
(:mod:`~tests.mock_exchange.signing`, standard library only). A bad signature, an
unknown or expired key, a wrong passphrase, an IP off the whitelist and a timestamp
outside the receive window get the exchange's real error code and message.

A test can switch on faults per exchange (5xx, maintenance, 429 with Retry-After, a
delay, a malformed or oversized body, a stopped server), a rate limit (N requests per
second), and read the request log (method, path, time, verified key, outcome).

Use::

    def test_x(mock_exchanges):                     # fixture from fixtures.py
        okx = mock_exchanges["okx"]
        key = okx.add_key(ApiKey("key", "secret", Account("1001"), passphrase="pw"))
        client = ccxt_client(okx, key)              # ccxt pointed at the mock
        client.privateGetAccountConfig()

docs/reliability.md ("Mock exchanges") lists the endpoints and error codes.
"""
