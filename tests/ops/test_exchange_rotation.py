"""Automated rotation at the exchange (vault/ops/exchange_rotation.py) against the mock
exchanges: start, verify, promote, finish; faults and crashes at each exchange call
and what the next run does about them; the withdraw rule; no secret anywhere but the
sealed versions."""

from __future__ import annotations

import logging
import sqlite3
import threading
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import PASSPHRASE
from tests.mock_exchange import subaccount_keys as sk
from tests.mock_exchange.fixtures import mock_exchanges
from tests.mock_exchange.registry import Fault
from tests.mock_exchange.server import MockExchanges
from tests.ops.exchange_setup import GRANTS, IP, SUB, Setup, engine_of, make_setup
from vault.errors import Conflict, ExchangeUnreachable, InvalidInput
from vault.format import journal
from vault.format.model import utc_now
from vault.ops import exchange_keys, exchange_rotation
from vault.ops.exchange_keys import model
from vault.ops.exchange_rotation import DueItem, ExchangeRotation, due
from vault.owner import rotation
from vault.owner.admin import AdminVault

__all__ = ["mock_exchanges"]

EXCHANGES = list(GRANTS)


@pytest.fixture(params=EXCHANGES)
def setup(
    request: pytest.FixtureRequest, admin: AdminVault, mock_exchanges: MockExchanges
) -> Setup:
    return make_setup(admin, mock_exchanges[request.param])


@pytest.fixture
def okx(admin: AdminVault, mock_exchanges: MockExchanges) -> Setup:
    return make_setup(admin, mock_exchanges["okx"])


@pytest.fixture
def kucoin(admin: AdminVault, mock_exchanges: MockExchanges) -> Setup:
    return make_setup(admin, mock_exchanges["kucoin"])


def test_the_whole_rotation(setup: Setup) -> None:
    name = f"{setup.exchange}-grid"
    started = setup.engine.start(name)
    assert started.changed
    new = setup.admin.get(name, "pending").api_key.reveal()
    stored = setup.mock.state.key(new)
    assert stored is not None and stored.ip_whitelist == (IP,)
    assert tuple(sorted(stored.permissions)) == tuple(sorted(GRANTS[setup.exchange]))
    assert model.rotation_id_of(stored.label) is not None and name[:7] in stored.label
    assert stored.secret == setup.admin.get(name, "pending").secret.reveal()
    checks = setup.engine.verify(name)
    assert all(c.passed for c in checks), checks
    assert {"exchange-probe", "exchange-scope"} <= {c.name for c in checks}
    setup.engine.promote(name)
    with pytest.raises(Conflict, match="grace period"):
        setup.engine.finish(name)
    assert setup.mock.state.key(setup.first_key) is not None  # not deleted before then
    setup.engine.finish(name, force=True)
    assert [k.api_key for k in setup.sub_keys()] == [new]
    assert setup.admin.describe(name).previous_version is None
    assert [(e.step, e.state) for e in setup.journal_rows()] == [
        ("create", "done"),
        ("delete", "done"),
    ]


def test_a_5xx_on_create_leaves_an_entry_the_next_run_settles(setup: Setup) -> None:
    name = f"{setup.exchange}-grid"
    setup.mock.inject(Fault.server_error(502, **sk.create_fault(setup.exchange, SUB), times=1))
    with pytest.raises(ExchangeUnreachable):
        setup.engine.start(name)
    (entry,) = setup.journal_rows()
    assert (entry.step, entry.state, entry.attempts) == ("create", "intent", 1)
    assert setup.engine.resume(name) == [f"rotation {entry.rotation_id}: no key had been created"]
    assert [e.state for e in setup.journal_rows()] == ["abandoned"]
    assert [k.api_key for k in setup.sub_keys()] == [setup.first_key]


@pytest.mark.parametrize("exchange", ["okx", "kucoin"])  # with and without a passphrase rule
def test_a_timeout_on_create_whose_key_appears_later_is_deleted(
    exchange: str, request: pytest.FixtureRequest
) -> None:
    setup: Setup = request.getfixturevalue(exchange)
    name = f"{setup.exchange}-grid"
    setup.mock.inject(Fault.delay(1.3, **sk.create_fault(setup.exchange, SUB), times=1))
    with pytest.raises(ExchangeUnreachable):
        setup.engine.start(name)
    for _ in range(100):  # the exchange creates it after the client gave up
        if len(setup.sub_keys()) == 2:
            break
        setup.mock.stopping.wait(0.02)
    assert len(setup.sub_keys()) == 2
    (note,) = setup.engine.resume(name)
    assert "deleted 1 key(s) that never reached the vault" in note
    assert [k.api_key for k in setup.sub_keys()] == [setup.first_key]
    assert setup.admin.describe(name).pending_version is None


def test_a_crash_between_create_and_store_is_cleaned_up(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"{setup.exchange}-grid"

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # stands for the SIGKILL: no handler runs

    monkeypatch.setattr(rotation, "start", killed)
    with pytest.raises(KeyboardInterrupt):
        setup.engine.start(name)
    assert len(setup.sub_keys()) == 2
    monkeypatch.undo()
    setup.engine.resume(name)  # KuCoin's deletion needs the derived passphrase
    assert [k.api_key for k in setup.sub_keys()] == [setup.first_key]
    assert [e.state for e in setup.journal_rows()] == ["abandoned"]


def test_a_crash_after_store_settles_as_done(okx: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    book = okx.engine.journal
    real_settle = book.settle

    def settle(entry: Any, state: str, **kwargs: Any) -> Any:
        if state == journal.DONE:
            raise KeyboardInterrupt
        return real_settle(entry, state, **kwargs)

    monkeypatch.setattr(book, "settle", settle)
    with pytest.raises(KeyboardInterrupt):
        okx.engine.start("okx-grid")
    monkeypatch.undo()
    assert okx.engine.resume("okx-grid") == [
        f"rotation {okx.journal_rows()[0].rotation_id}: the new key is in the vault"
    ]
    assert len(okx.sub_keys()) == 2  # the new key is kept: the vault holds it
    assert okx.journal_rows()[0].api_key == okx.admin.get("okx-grid", "pending").api_key.reveal()


def test_a_5xx_on_delete_keeps_the_old_version_and_is_retried(setup: Setup) -> None:
    name = f"{setup.exchange}-grid"
    setup.engine.start(name)
    setup.engine.promote(name)
    where = sk.delete_fault(setup.exchange, SUB, setup.first_key)
    setup.mock.inject(Fault.server_error(503, **where, times=1))
    with pytest.raises(ExchangeUnreachable):
        setup.engine.finish(name, force=True)
    assert setup.admin.describe(name).previous_version is not None  # kept
    assert setup.mock.state.key(setup.first_key) is not None
    (_, delete) = setup.journal_rows()
    assert (delete.step, delete.state, delete.attempts) == ("delete", "intent", 1)
    assert setup.engine.resume(name) == [
        f"deleted the old key {setup.first_key} at {setup.exchange}"
    ]
    assert setup.mock.state.key(setup.first_key) is None
    setup.engine.finish(name, force=True)  # the key is gone: only the version is dropped
    assert setup.admin.describe(name).previous_version is None


def test_withdraw_is_kept_only_when_allowed(
    admin: AdminVault, mock_exchanges: MockExchanges
) -> None:
    s = make_setup(admin, mock_exchanges["gate"], grants=("spot", "wallet"))
    with pytest.raises(InvalidInput, match="--allow-withdraw"):
        s.engine.start("gate-grid")
    assert len(s.sub_keys()) == 1 and s.journal_rows() == []
    s.engine.start("gate-grid", allow_withdraw=True)
    new = s.admin.get("gate-grid", "pending").api_key.reveal()
    assert s.mock.state.key(new).permissions == ("spot", "wallet")  # type: ignore[union-attr]


def test_an_unbound_current_key_is_refused(okx: Setup) -> None:
    okx.mock.state.key(okx.first_key).ip_whitelist = ()  # type: ignore[union-attr]
    with pytest.raises(InvalidInput, match="no IP whitelist"):
        okx.engine.start("okx-grid")
    assert len(okx.sub_keys()) == 1


def test_verify_fails_when_the_exchange_widened_the_new_key(okx: Setup) -> None:
    okx.engine.start("okx-grid")
    new = okx.mock.state.key(okx.admin.get("okx-grid", "pending").api_key.reveal())
    new.ip_whitelist = ("0.0.0.0/0",)  # type: ignore[union-attr]
    checks = {c.name: c for c in okx.engine.verify("okx-grid")}
    assert not checks["exchange-scope"].passed
    assert not checks["exchange-probe"].passed
    assert "0.0.0.0/0" in checks["exchange-probe"].detail


def test_verify_probes_the_pending_key_signed_with_itself(okx: Setup) -> None:
    okx.engine.start("okx-grid")
    pending = okx.admin.get("okx-grid", "pending").api_key.reveal()
    before = len(okx.mock.requests())
    checks = {c.name: c for c in okx.engine.verify("okx-grid")}
    assert checks["exchange-probe"].passed, checks["exchange-probe"].detail
    signed_by = {(r.path, r.api_key) for r in okx.mock.requests()[before:]}
    assert ("/api/v5/account/config", pending) in signed_by


def test_verify_fails_when_the_pending_secret_is_not_the_keys(okx: Setup) -> None:
    # The master's listing still shows the right scope: only the probe, signed with
    # the pending key itself, sees that the vault holds a secret that does not work.
    okx.engine.start("okx-grid")
    new = okx.mock.state.key(okx.admin.get("okx-grid", "pending").api_key.reveal())
    new.secret = "not-the-vaults"  # type: ignore[union-attr]
    checks = {c.name: c for c in okx.engine.verify("okx-grid")}
    assert checks["exchange-scope"].passed
    assert not checks["exchange-probe"].passed
    assert "signature" in checks["exchange-probe"].detail


@pytest.mark.parametrize(
    ("reported", "baseline", "problem"),
    [
        (
            (("read", "trade", "withdraw"), ("1.2.3.4",)),
            (("read", "trade"), ("1.2.3.4",)),
            "also withdraw",
        ),
        ((("read",), ("1.2.3.4",)), (("read", "trade"), ("1.2.3.4",)), "may not trade"),
        ((("read",), ("5.6.7.8",)), (("read",), ("1.2.3.4",)), "whitelist is 5.6.7.8"),
        ((("read",), ()), (("read",), ("1.2.3.4",)), "no IP address"),
    ],
)
def test_scope_problems_name_each_difference(
    reported: tuple[tuple[str, ...], tuple[str, ...]],
    baseline: tuple[tuple[str, ...], tuple[str, ...]],
    problem: str,
) -> None:
    (found,) = exchange_rotation.scope_problems(*reported, *baseline)
    assert problem in found


def test_scope_problems_compare_nothing_the_exchange_does_not_say() -> None:
    assert exchange_rotation.scope_problems(None, None, ("read",), ("1.2.3.4",)) == []
    assert exchange_rotation.scope_problems(("read",), ("1.2.3.4",), ("read",), ("1.2.3.4",)) == []


def test_management_goes_to_the_masters_endpoint_verification_to_the_keys(
    okx: Setup,
) -> None:
    # The rotated key's endpoint is a closed port: the master's calls (at the mock)
    # still create the key, and the probe of the new key (at its own endpoint) fails.
    okx.admin.edit("okx-grid", endpoint="http://127.0.0.1:9")
    okx.engine.start("okx-grid")
    assert len(okx.sub_keys()) == 2
    checks = {c.name: c for c in okx.engine.verify("okx-grid")}
    assert checks["exchange-scope"].passed
    assert not checks["exchange-probe"].passed
    assert "could not reach okx" in checks["exchange-probe"].detail


def test_an_unreachable_masters_endpoint_creates_nothing(okx: Setup) -> None:
    okx.admin.edit("okx-master", endpoint="http://127.0.0.1:9")
    with pytest.raises(ExchangeUnreachable):
        okx.engine.start("okx-grid")
    assert len(okx.sub_keys()) == 1 and okx.journal_rows() == []


def test_verify_fails_when_the_new_key_was_deleted(okx: Setup) -> None:
    okx.engine.start("okx-grid")
    with okx.mock.state.lock:
        okx.mock.state.keys.pop(okx.admin.get("okx-grid", "pending").api_key.reveal())
    checks = {c.name: c for c in okx.engine.verify("okx-grid")}
    assert not checks["exchange-probe"].passed and not checks["exchange-scope"].passed


def test_an_automatic_run_skips_a_credential_another_run_holds(okx: Setup) -> None:
    other = ExchangeRotation(okx.admin, holder="test:2", alive=lambda h: True)
    assert other.journal.claim("okx-grid", "0123abcd", "test:2", other._alive) is not None
    engine = engine_of(okx.admin, alive=True)
    result = engine.run(DueItem("okx-grid", "start", "due", True))
    assert result.steps == ["skipped: another run holds it"] and result.ok
    assert len(okx.sub_keys()) == 1


def test_an_automatic_run_rotates_then_a_later_one_finishes(
    okx: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = okx.engine.run(DueItem("okx-grid", "start", "due", True))
    assert first.ok, first.error
    assert [step.split(":")[0] for step in first.steps] == ["started", "verified", "promoted"]
    assert len(okx.sub_keys()) == 2
    info = okx.admin.describe("okx-grid")
    assert [i.action for i in due([info], {}, utc_now())] == ["wait"]
    assert okx.engine.run(DueItem("okx-grid", "wait", "grace", True)).steps == []
    later = utc_now() + timedelta(hours=25)
    (item,) = due([info], {}, later)
    assert item.action == "finish"
    monkeypatch.setattr(exchange_rotation, "utc_now", lambda: later)
    monkeypatch.setattr(rotation, "utc_now", lambda: later)
    second = okx.engine.run(item)
    assert second.ok, second.error
    assert second.steps == ["finished: version 1 dropped; the old key is deleted at okx"]
    new = okx.admin.get("okx-grid").api_key.reveal()
    assert [k.api_key for k in okx.sub_keys()] == [new]
    assert all(e.state != journal.INTENT for e in okx.journal_rows())


def test_no_secret_reaches_the_journal_the_audit_log_or_errors(
    okx: Setup, vault_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    okx.engine.start("okx-grid")
    pending = okx.admin.get("okx-grid", "pending")
    secrets_ = [
        pending.secret.reveal(),
        pending.passphrase.reveal(),  # type: ignore[union-attr]
        okx.master_fields["secret"],
        okx.master_fields["passphrase"],
    ]
    okx.admin.get("okx-grid")  # (an audited read, to have one more entry)
    rotation.abort(okx.admin, "okx-grid")
    okx.mock.inject(Fault.server_error(502, **sk.create_fault("okx", SUB), times=1))
    with pytest.raises(ExchangeUnreachable) as caught:
        okx.engine.start("okx-grid")
    texts = [str(caught.value), repr(caught.value)]
    texts += [repr(row) for row in okx.journal_rows()]
    if "://" not in vault_location:
        with sqlite3.connect(vault_location) as con:
            for table in ("rotation_journal", "audit_log"):
                texts += [repr(row) for row in con.execute(f"SELECT * FROM {table}")]
    blob = "\n".join(texts)
    for secret in secrets_:
        assert secret not in blob


def test_htx_cannot_be_linked_at_all(admin: AdminVault) -> None:
    with pytest.raises(InvalidInput, match="one-time password"):
        exchange_keys.for_exchange("htx")


def test_abort_deletes_the_pending_key_at_the_exchange(kucoin: Setup) -> None:
    kucoin.engine.start("kucoin-grid")
    assert len(kucoin.sub_keys()) == 2
    kucoin.engine.abort("kucoin-grid")  # KuCoin: with the pending version's passphrase
    assert [k.api_key for k in kucoin.sub_keys()] == [kucoin.first_key]
    assert kucoin.admin.describe("kucoin-grid").pending_version is None
    assert [(e.step, e.state) for e in kucoin.journal_rows()] == [
        ("create", "done"),
        ("delete", "done"),
    ]


def test_a_timeout_on_delete_whose_key_goes_later_is_settled(okx: Setup) -> None:
    okx.engine.start("okx-grid")
    okx.engine.promote("okx-grid")
    okx.mock.inject(Fault.delay(1.3, **sk.delete_fault("okx", SUB, okx.first_key), times=1))
    with pytest.raises(ExchangeUnreachable, match="whether it acted is unknown"):
        okx.engine.finish("okx-grid", force=True)
    assert okx.admin.describe("okx-grid").previous_version is not None  # kept
    for _ in range(100):  # the exchange deletes it after the client gave up
        if okx.mock.state.key(okx.first_key) is None:
            break
        okx.mock.stopping.wait(0.02)
    assert okx.mock.state.key(okx.first_key) is None
    (_, delete) = okx.journal_rows()
    assert (delete.step, delete.state) == ("delete", "intent")
    okx.engine.resume("okx-grid")  # not listed any more: settled without a call
    assert [e.state for e in okx.journal_rows()] == ["done", "done"]
    okx.engine.finish("okx-grid", force=True)
    assert okx.admin.describe("okx-grid").previous_version is None


def test_no_secret_reaches_a_log_record(okx: Setup, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    okx.engine.start("okx-grid")
    okx.engine.verify("okx-grid")
    okx.engine.promote("okx-grid")
    okx.engine.finish("okx-grid", force=True)
    current = okx.admin.get("okx-grid")
    secrets_ = [
        current.secret.reveal(),
        current.passphrase.reveal(),  # type: ignore[union-attr]
        okx.master_fields["secret"],
        okx.master_fields["passphrase"],
    ]
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    for secret in secrets_:
        assert secret not in logged


def test_two_concurrent_runs_never_rotate_one_credential_twice(
    okx: Setup, vault_location: str
) -> None:
    # The first create is slow: the other run starts while the first holds the lease.
    okx.mock.inject(Fault.delay(0.5, **sk.create_fault("okx", SUB), times=1))
    results: dict[str, exchange_rotation.RunResult] = {}

    def run(holder: str) -> None:
        with AdminVault.unlock(vault_location, PASSPHRASE) as admin:
            engine = ExchangeRotation(admin, timeout=5, holder=holder, alive=lambda h: True)
            results[holder] = engine.run(DueItem("okx-grid", "start", "due", True))

    first = threading.Thread(target=run, args=("test:first",))
    first.start()
    okx.mock.stopping.wait(0.25)
    run("test:second")
    first.join()
    skipped = [r for r in results.values() if r.steps == ["skipped: another run holds it"]]
    rotated = [r for r in results.values() if r.steps and r.steps[0].startswith("started")]
    assert (len(skipped), len(rotated)) == (1, 1), results
    assert rotated[0].ok, rotated[0].error
    assert len(okx.sub_keys()) == 2  # one new key, not two
    assert okx.admin.describe("okx-grid").version == 2


def test_a_dead_runs_lease_on_a_credential_not_due_is_released(okx: Setup) -> None:
    # Killed after promote, before its lease was settled: nothing is due for the
    # credential during its grace period, so only the release settles the lease.
    okx.engine.journal.claim("okx-grid", "0123abcd", "gone:1:1", lambda h: True)
    assert okx.engine.release_dead_leases() == 1  # the engine sees other holders dead
    assert [e.state for e in okx.journal_rows()] == [journal.ABANDONED]


def test_verify_compares_with_the_declared_scope_when_the_current_key_is_gone(
    okx: Setup,
) -> None:
    # The current key was deleted at the exchange (leaked, revoked by hand): the new
    # key is compared with what the current version declares.
    okx.engine.start("okx-grid")
    with okx.mock.state.lock:
        okx.mock.state.keys.pop(okx.first_key)
    checks = {c.name: c for c in okx.engine.verify("okx-grid")}
    assert checks["exchange-probe"].passed, checks["exchange-probe"].detail
    assert "current version's" in checks["exchange-probe"].detail


def test_a_key_made_current_after_a_failed_abort_is_never_deleted(okx: Setup) -> None:
    name = "okx-grid"
    okx.engine.start(name)
    new = okx.admin.get(name, "pending").api_key.reveal()
    okx.mock.inject(Fault.server_error(503, **sk.delete_fault("okx", SUB, new), times=1))
    with pytest.raises(ExchangeUnreachable):
        okx.engine.abort(name)
    okx.engine.promote(name)  # the owner promotes the key the abort failed to delete
    assert okx.admin.get(name, "current").api_key.reveal() == new
    assert okx.engine.resume(name) == [f"kept the key {new} at okx: it is the current key now"]
    assert okx.mock.state.key(new) is not None
    assert [row.state for row in okx.journal_rows() if row.step == "delete"] == ["abandoned"]


def test_a_second_start_waits_for_the_first_rotation_to_finish(okx: Setup) -> None:
    name = "okx-grid"
    okx.engine.start(name)
    okx.engine.promote(name)
    # A promote would drop the previous version with its key still live at the exchange.
    with pytest.raises(Conflict, match="not finished"):
        okx.engine.start(name)
    assert okx.mock.state.key(okx.first_key) is not None
    okx.engine.finish(name, force=True)
    assert okx.engine.start(name).changed
    assert okx.mock.state.key(okx.first_key) is None


def test_no_rollback_to_a_key_whose_deletion_began(okx: Setup) -> None:
    name = "okx-grid"
    okx.engine.start(name)
    okx.engine.promote(name)
    okx.mock.inject(Fault.server_error(503, **sk.delete_fault("okx", SUB, okx.first_key), times=1))
    with pytest.raises(ExchangeUnreachable):
        okx.engine.finish(name, force=True)  # the delete may have acted: unknown
    before = okx.admin.describe(name)
    with pytest.raises(Conflict, match="being deleted at the exchange"):
        rotation.rollback(okx.admin, name)
    after = okx.admin.describe(name)
    assert (after.version, after.previous_version) == (before.version, before.previous_version)
