"""The Secret type never shows its value by accident."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.secret import MASK, Secret


@given(st.text(min_size=1))
def test_secret_is_masked_everywhere(value: str) -> None:
    s = Secret(value)
    assert s.reveal() == value
    assert str(s) == MASK
    assert repr(s) == f"Secret('{MASK}')"
    assert f"{s}" == MASK and f"{s:>12}" == f"{MASK:>12}"
    assert "%s" % s == MASK  # noqa: UP031
    assert repr([s]) == f"[Secret('{MASK}')]"


def test_secret_is_not_picklable() -> None:
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(Secret("abc"))


def test_secret_copies_are_the_same_object() -> None:
    s = Secret("abc")
    assert copy.copy(s) is s and copy.deepcopy(s) is s


def test_secret_equality_and_unhashable() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    with pytest.raises(TypeError):
        hash(Secret("a"))


def test_secret_not_in_log_records(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("t").debug("value %s %r", Secret("hunter2"), Secret("hunter2"))
    assert "hunter2" not in caplog.text
