from tests.mock_exchange.fixtures import mock_exchanges

__all__ = ["mock_exchanges"]
