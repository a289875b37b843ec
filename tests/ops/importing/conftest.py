"""Fixtures of the import readers' tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


@pytest.fixture
def default_recursion_limit() -> Iterator[None]:
    """Python's default recursion limit, as exvault runs with it (the depth limit of
    PyYAML and rapidjson too): in this process, tests/import_sources.py imported
    eth-keyfile, whose py_ecc raised it to 100,000."""
    raised = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield
    sys.setrecursionlimit(raised)
