"""Observations as stored (vault/format/observation.py): the body round trip, what the
signature covers, and bodies a reader refuses."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import IntegrityError
from vault.exchanges.fields import PERMISSIONS
from vault.exchanges.key_report import (
    ERROR_KINDS,
    REJECTION_REASONS,
    KeyReport,
    ProbeError,
    ProbeOutcome,
)
from vault.format import identities, observation

VAULT_ID = bytes(range(16))
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
times = st.integers(0, 10**8).map(lambda s: EPOCH + timedelta(seconds=s))
texts = st.text(max_size=30)
reports = st.builds(
    KeyReport,
    st.none() | st.lists(st.sampled_from(PERMISSIONS), unique=True).map(tuple),
    st.none() | st.booleans(),
    st.none() | st.lists(texts, max_size=4).map(tuple),
    st.none() | times,
    st.none() | times,
)
errors = st.builds(
    ProbeError,
    st.sampled_from(ERROR_KINDS),
    st.none() | st.sampled_from(REJECTION_REASONS),
    st.none() | texts,
    texts,
    st.none(),
)
skews = st.none() | st.integers(-(10**9), 10**9)


@st.composite
def outcomes(draw: st.DrawFn) -> ProbeOutcome:
    report = draw(st.none() | reports)
    error = draw(errors) if report is None else None
    return ProbeOutcome(
        draw(times), report, error, draw(skews), draw(st.none() | st.integers(0, 60000))
    )


@given(outcomes())
def test_the_body_round_trips(outcome: ProbeOutcome) -> None:
    body = observation.encode_body(outcome)
    assert observation.decode_body(body) == outcome
    assert observation.encode_body(observation.decode_body(body)) == body


def _row(outcome: ProbeOutcome) -> tuple[identities.RootIdentity, observation.ObservationRow]:
    identity = identities.RootIdentity.generate()
    row = observation.signed_row(VAULT_ID, "c" * 32, "k", 3, outcome, "root", identity.sign)
    return identity, row


def _outcome() -> ProbeOutcome:
    return ProbeOutcome(
        EPOCH, KeyReport(("read",), True, ("203.0.113.7",), None, None), None, 5, 5000
    )


def test_a_signed_row_verifies_and_gives_its_outcome() -> None:
    identity, row = _row(_outcome())
    assert observation.verify(identity.verify_public, VAULT_ID, row) == _outcome()
    assert row.kind == observation.REPORT
    assert observation.digest_of_detail(observation.audit_detail(VAULT_ID, row)) == (
        observation.digest(VAULT_ID, row)
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("credential_id", "d" * 32),
        ("name", "other"),
        ("version", 4),
        ("signer", "client"),
        ("observed_at", 1),
        ("kind", "rejected-key"),
        ("body", observation.encode_body(_outcome()._replace(skew_ms=6))),
    ],
)
def test_every_column_is_covered_by_the_signature(column: str, value: object) -> None:
    identity, row = _row(_outcome())
    with pytest.raises(IntegrityError):
        observation.verify(identity.verify_public, VAULT_ID, row._replace(**{column: value}))
    assert observation.digest(VAULT_ID, row._replace(**{column: value})) != observation.digest(
        VAULT_ID, row
    )


def test_another_vault_or_key_does_not_verify() -> None:
    identity, row = _row(_outcome())
    with pytest.raises(IntegrityError):
        observation.verify(identity.verify_public, bytes(16), row)
    with pytest.raises(IntegrityError):
        observation.verify(identities.RootIdentity.generate().verify_public, VAULT_ID, row)


def _body(**changes: object) -> str:
    data = json.loads(observation.encode_body(_outcome()))
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        _body(report=None),  # neither a report nor an error
        _body(error={"kind": "unreachable", "reason": None, "code": None, "message": "x"}),
        _body(skew_ms="5"),
        _body(skew_ms=True),
        _body(observed_at=1.5),
        _body(report={"permissions": "read"}),
        _body(report=None, error={"kind": "boom", "reason": None, "code": None, "message": ""}),
        '{"observed_at": 1}',
        " " * (observation.MAX_BODY + 1),
    ],
)
def test_a_malformed_body_is_an_integrity_error(body: str) -> None:
    with pytest.raises(IntegrityError):
        observation.decode_body(body)


@pytest.mark.parametrize("detail", ["", "report", "report zz", "report " + "00" * 31])
def test_a_detail_naming_no_digest(detail: str) -> None:
    assert observation.digest_of_detail(detail) is None
