"""The import plan: names, validation with the exchange profiles, skips and their
reasons, the one-transaction apply, and the removal of source files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import BINANCE_API_KEY, BINANCE_SECRET, KUCOIN_API_KEY, KUCOIN_SECRET
from vault.errors import AlreadyExists, InvalidInput
from vault.format.model import NAME_PATTERN
from vault.ops.importing.plan import (
    ADD,
    REPLACE,
    SKIP,
    FoundKey,
    Source,
    SourceFile,
    apply_plan,
    make_plan,
    name_for,
    remove_files,
)
from vault.owner.admin import AdminVault
from vault.secret import Secret

BINANCE = {"api_key": Secret(BINANCE_API_KEY), "secret": Secret(BINANCE_SECRET)}


def key(base: str, exchange: str | None = "binance", **fields: str) -> FoundKey:
    values = {k: Secret(v) for k, v in fields.items()} if fields else BINANCE
    return FoundKey(f"origin of {base}", base, exchange, values, Path("source"))


def source(*keys: FoundKey) -> Source:
    return Source("env", keys, files=(SourceFile(Path("source"), True),))


def test_a_new_key_is_added_under_prefix_and_base_name() -> None:
    plan = make_plan(source(key("binance")), [], prefix="ft-")
    (planned,) = plan.keys
    assert (planned.name, planned.exchange, planned.action) == ("ft-binance", "binance", ADD)
    assert planned.field_names == ("api_key", "secret")


def test_former_exchange_ids_are_planned_under_the_profile_id() -> None:
    plan = make_plan(source(key("gate", "gateio", api_key="k" * 16, secret="s" * 32)), [])
    assert plan.keys[0].exchange == "gate"


@pytest.mark.parametrize(
    ("found", "reason"),
    [
        (key("binance", None), "does not say which exchange"),
        (key("mexc", "mexc"), "no profile for the exchange"),
        (key("kucoin", "kucoin", api_key=KUCOIN_API_KEY, secret=KUCOIN_SECRET), "passphrase"),
        (key("bad name!"), "no valid name"),
        (
            FoundKey("f", "binance", "binance", BINANCE, Path("s"), problem="its key is odd"),
            "its key is odd",
        ),
    ],
)
def test_a_key_that_cannot_be_imported_is_skipped_with_its_reason(
    found: FoundKey, reason: str
) -> None:
    (planned,) = make_plan(source(found), []).keys
    assert planned.action == SKIP
    assert reason in planned.reason


def test_a_second_key_of_the_same_name_is_skipped() -> None:
    plan = make_plan(source(key("binance"), key("binance")), [])
    assert [k.action for k in plan.keys] == [ADD, SKIP]
    assert "same name" in plan.keys[1].reason


def test_a_bad_prefix_is_refused_as_a_whole() -> None:
    with pytest.raises(InvalidInput):
        make_plan(source(key("binance")), [], prefix="-x")


def test_an_existing_name_is_skipped_unless_replace(stocked: AdminVault) -> None:
    existing = list(stocked.listing())
    found = source(key("binance-main"), key("kucoin-sub1"))
    assert [k.action for k in make_plan(found, existing).keys] == [SKIP, SKIP]
    assert "--replace" in make_plan(found, existing).keys[0].reason
    replaced = make_plan(found, existing, replace=True).keys
    assert replaced[0].action == REPLACE
    # kucoin-sub1 is a kucoin key: a binance key under that name is not a new version of it
    assert replaced[1].action == SKIP
    assert "another exchange (kucoin)" in replaced[1].reason


class Pending:
    """A credential of the vault with a rotation pending."""

    name, exchange, pending_version = "binance-main", "binance", 2


def test_replace_skips_a_credential_with_a_rotation_pending() -> None:
    (planned,) = make_plan(source(key("binance-main")), [Pending()], replace=True).keys
    assert (planned.action, planned.reason) == (
        SKIP,
        "a rotation of it is pending; promote or abort it first",
    )


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True))
def test_names_are_the_prefix_then_the_base_name(base: str) -> None:
    assert name_for("ft-", base) == "ft-" + base
    assert NAME_PATTERN.fullmatch(name_for("ft-", base))


def test_apply_adds_and_replaces_in_one_go(stocked: AdminVault) -> None:
    plan = make_plan(
        source(key("binance-main"), key("binance-new")), list(stocked.listing()), replace=True
    )
    seen: list[tuple[int, int]] = []
    result = apply_plan(stocked, plan, lambda done, total: seen.append((done, total)))
    assert result.versions == {"binance-main": 2, "binance-new": 1}
    assert seen == [(1, 2), (2, 2)]
    assert stocked.get("binance-new").secret.reveal() == BINANCE_SECRET
    assert stocked.describe("binance-main").version == 2
    assert len(stocked.history("binance-main")) == 2  # a new version, nothing deleted


def test_a_failure_part_way_imports_nothing(admin: AdminVault) -> None:
    plan = make_plan(source(key("first"), key("second"), key("third")), [])
    # Taken after the plan was made (another writer): the batch fails at the second key.
    admin.add("second", "binance", {k: v.reveal() for k, v in BINANCE.items()})
    with pytest.raises(AlreadyExists):
        apply_plan(admin, plan)
    assert admin.names() == ["second"]


def test_removal_overwrites_then_deletes(tmp_path: Path) -> None:
    path = tmp_path / "keys.env"
    path.write_text(f"BINANCE_SECRET={BINANCE_SECRET}\n")
    link = tmp_path / "hard-link"
    link.hardlink_to(path)  # shows what was written over the file's blocks
    assert remove_files([SourceFile(path, True)]) == [path]
    assert not path.exists()
    assert link.read_bytes() == bytes(len(f"BINANCE_SECRET={BINANCE_SECRET}\n"))


@pytest.mark.parametrize("kind", ["directory", "fifo", "symlink"])
def test_removal_refuses_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / kind
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        (tmp_path / "target").write_text("x")
        path.symlink_to(tmp_path / "target")
    with pytest.raises(InvalidInput, match="not a regular file"):
        remove_files([SourceFile(path, True)])
    assert path.exists()


@pytest.mark.parametrize(
    ("plan_source", "refusal"),
    [
        (Source("keepass", (key("binance"),), removable=False), "keepass source holds more"),
        (source(key("binance"), key("mexc", "mexc")), "not imported"),
        (
            Source("env", (key("binance"),), files=(SourceFile(Path("f"), False, "LOG_LEVEL"),)),
            "f holds LOG_LEVEL",
        ),
        (source(), "nothing is imported"),
    ],
)
def test_when_the_source_may_be_removed(plan_source: Source, refusal: str) -> None:
    refused = make_plan(plan_source, []).removal_refused()
    assert (refusal in refused) if refusal else refused == ""


@pytest.mark.parametrize(
    ("kind", "refusal"),
    [
        ("regular", ""),
        ("symlink", "is a symbolic link, not a regular file"),
        ("fifo", "is not a regular file"),
        ("missing", "cannot examine"),
    ],
)
def test_a_source_file_removal_would_refuse_is_refused_in_the_plan(
    tmp_path: Path, kind: str, refusal: str
) -> None:
    # Found after the import had committed, it made a failed command of a done import.
    path = tmp_path / "keys.env"
    if kind == "regular":
        path.write_text("BINANCE_API_KEY=x\n")
    elif kind == "symlink":
        (tmp_path / "target").write_text("x")
        path.symlink_to(tmp_path / "target")
    elif kind == "fifo":
        os.mkfifo(path)
    found = Source("env", (key("binance"),), files=(SourceFile(path, True),))
    refused = make_plan(found, []).removal_refused()
    assert (refusal in refused and str(path) in refused) if refusal else refused == ""


def test_no_secret_in_the_repr_of_a_source_or_a_plan() -> None:
    found = source(key("binance"), key("kucoin", "kucoin", api_key="k" * 24, secret="s" * 36))
    shown = repr(found) + repr(make_plan(found, []))
    assert "binance" in shown  # the names are there to read
    for secret in (BINANCE_API_KEY, BINANCE_SECRET, "k" * 24, "s" * 36):
        assert secret not in shown
