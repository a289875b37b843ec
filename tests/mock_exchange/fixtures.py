"""Pytest fixtures of the mock exchanges (import them into a conftest to use them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mock_exchange.server import MockExchanges


@pytest.fixture
def mock_exchanges() -> Iterator[MockExchanges]:
    """Mock exchanges for one test: ``mock_exchanges["okx"]`` starts OKX's server on a
    free port of 127.0.0.1 with an empty registry; every server stops at teardown."""
    mocks = MockExchanges()
    yield mocks
    mocks.close()
