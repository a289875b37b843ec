"""Makes the mock exchanges' fixtures available to the tests of this package."""

from tests.mock_exchange.fixtures import mock_exchanges

__all__ = ["mock_exchanges"]
