"""The automated-rotation fields of a policy: stored form, round trip, refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import IntegrityError, InvalidInput
from vault.format.policy import ON_PROMOTE_MAX, Policy

texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=60).filter(str.strip)


@given(
    st.one_of(st.none(), texts),
    st.one_of(st.none(), texts),
    st.booleans(),
    st.one_of(st.none(), texts),
)
def test_a_link_round_trips_through_the_stored_form(
    master: str | None, sub: str | None, auto: bool, command: str | None
) -> None:
    policy = Policy().with_link(on_promote=command)
    if master is not None:
        policy = policy.with_link(rotate_via=master, sub_account=sub, auto=auto)
    assert Policy.from_json(policy.to_json()) == policy


def test_an_unlinked_policy_stores_none_of_the_fields() -> None:
    assert Policy().to_json() == "{}"
    linked = Policy().with_link(rotate_via="okx-master", sub_account="grid", auto=True)
    assert linked.to_json() == '{"auto":true,"rotate_via":"okx-master","sub_account":"grid"}'


def test_unlinking_clears_sub_account_and_auto() -> None:
    linked = Policy().with_link(rotate_via="m", sub_account="s", auto=True, on_promote="x")
    unlinked = linked.with_link(rotate_via=None)
    assert (unlinked.rotate_via, unlinked.sub_account, unlinked.auto) == (None, None, False)
    assert unlinked.on_promote == "x"  # a restart command is not about the exchange


def test_fields_not_given_stay_as_they_were() -> None:
    linked = Policy().with_link(rotate_via="m", sub_account="s", auto=True)
    assert linked.with_link(auto=False) == Policy().with_link(rotate_via="m", sub_account="s")


@pytest.mark.parametrize(
    "change",
    [
        {"auto": True},
        {"sub_account": "grid"},
        {"rotate_via": ""},
        {"rotate_via": "  "},
        {"on_promote": ""},
        {"on_promote": "x" * (ON_PROMOTE_MAX + 1)},
        {"rotate_via": "\ud800"},
    ],
)
def test_bad_links_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        Policy().with_link(**change)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "stored",
    ['{"auto":"yes"}', '{"rotate_via":""}', '{"rotate_via":5}', '{"on_promote":[]}'],
)
def test_a_malformed_stored_link_is_damage(stored: str) -> None:
    with pytest.raises(IntegrityError):
        Policy.from_json(stored)
