"""Grants, exposure and version numbers checked against the signed audit log.

Each attack is what someone with write access to the database (a bot's host, for
instance) but without the passphrase can do with rows: keep a copy of a signed row
and put it back, or delete rows. The owner's operations must not act on those rows
when the owner's signed audit entries say otherwise.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vault
from tests.conftest import PASSPHRASE, db_exec
from vault.db import access_history
from vault.db.access_history import AccessFacts, FactsFold, SignedEntry, access_facts
from vault.errors import IntegrityError, NotFound
from vault.format.audit_entry import ROOT_SIGNER
from vault.format.schema import HeadRow
from vault.ops.verification import verify
from vault.owner import rotation
from vault.owner.admin import AdminVault

BACKENDS = ("sqlite", "postgresql")

NEW_KEY = {"api_key": "k" * 64, "secret": "s" * 64}
BINANCE_ID = "(SELECT id FROM credentials WHERE name = 'binance-main')"
BOT_ID = "(SELECT id FROM clients WHERE name = 'bot')"


@pytest.fixture
def token(stocked: AdminVault) -> str:
    """bot, granted binance-main."""
    _, tok = stocked.add_client("bot")
    stocked.grant("bot", ["binance-main"])
    return tok


def saved_grant(location: str) -> dict[str, Any]:
    """bot's grant row of binance-main, as a bot's host could copy it."""
    ((client_id, credential_id, created_at, signature),) = db_exec(
        location, f"SELECT * FROM grants WHERE client_id = {BOT_ID}"
    )
    return {"c": client_id, "k": credential_id, "t": created_at, "s": signature}


def put_back(location: str, grant: dict[str, Any]) -> None:
    db_exec(location, "INSERT INTO grants VALUES (:c, :k, :t, :s)", **grant)


def saved_head(location: str) -> dict[str, Any]:
    """binance-main's head row, every column, as a bot's host could copy it."""
    (row,) = db_exec(
        location,
        f"SELECT {', '.join(HeadRow._fields)} FROM credentials WHERE name = 'binance-main'",
    )
    return dict(zip(HeadRow._fields, row, strict=True))


def put_back_head(location: str, head: dict[str, Any]) -> None:
    """The saved head in place of today's: validly signed, from before an ungrant, so
    its signed grantee set still names the client."""
    columns = ", ".join(f"{name} = :{name}" for name in HeadRow._fields if name != "id")
    db_exec(location, f"UPDATE credentials SET {columns} WHERE id = :id", **head)


def wraps_for_bot(location: str) -> list[tuple[object, ...]]:
    return db_exec(location, f"SELECT version FROM dek_wraps WHERE recipient = {BOT_ID}")


def versions(location: str) -> list[tuple[object, ...]]:
    return db_exec(
        location,
        f"SELECT version FROM credential_versions WHERE credential_id = {BINANCE_ID} "
        "ORDER BY version",
    )


def problems(admin: AdminVault) -> list[str]:
    return [p.message for p in verify(admin).problems]


# ------------------------------------------------------------------ grant replay


@pytest.fixture
def replayed(stocked: AdminVault, token: str, vault_location: str) -> AdminVault:
    """bot ungranted, then its old signed grant row and the head from before the
    ungrant (whose signed grantee set names bot) put back."""
    grant, head = saved_grant(vault_location), saved_head(vault_location)
    stocked.ungrant("bot", ["binance-main"])
    put_back(vault_location, grant)
    put_back_head(vault_location, head)
    return stocked


def test_replayed_grant_is_not_wrapped_by_edit(replayed: AdminVault, vault_location: str) -> None:
    with pytest.raises(IntegrityError, match='"binance-main" is granted to client "bot"'):
        replayed.edit("binance-main", ips=["203.0.113.8"])
    assert versions(vault_location) == [(1,)]
    assert wraps_for_bot(vault_location) == []


def test_replayed_grant_is_not_wrapped_by_rotate_start(
    replayed: AdminVault, vault_location: str
) -> None:
    with pytest.raises(IntegrityError, match="run exvault verify"):
        rotation.start(replayed, "binance-main", NEW_KEY)
    assert versions(vault_location) == [(1,)]
    assert wraps_for_bot(vault_location) == []


def test_replayed_grant_is_reported_by_verify(replayed: AdminVault) -> None:
    found = problems(replayed)
    assert any(
        'granted to client "bot" but the signed audit log shows no standing grant' in p
        for p in found
    ), found


def test_the_owner_granting_again_after_a_replay_is_backed(
    replayed: AdminVault, vault_location: str
) -> None:
    replayed.grant("bot", ["binance-main"])
    info = replayed.edit("binance-main", ips=["203.0.113.8"])
    assert info.wrapped_for == ("bot",)
    assert wraps_for_bot(vault_location) == [(2,)]
    assert problems(replayed) == []


def test_ungrant_cut_out_of_the_log_is_refused(replayed: AdminVault, vault_location: str) -> None:
    """Deleting the signed ungrant from the middle of the chain breaks it: the grant
    before it no longer counts. (Cutting the log's tail is caught by audit verify's
    witness only.)"""
    replayed.set_policy("kucoin-sub1", max_age_days=30)
    db_exec(vault_location, "DELETE FROM audit_log WHERE action = 'ungrant'")
    with pytest.raises(IntegrityError, match="the audit log is broken at entry"):
        replayed.edit("binance-main", ips=["203.0.113.8"])
    assert wraps_for_bot(vault_location) == []


def test_revoked_client_put_back_with_its_grant_is_not_wrapped(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    grant, head = saved_grant(vault_location), saved_head(vault_location)
    ((signature,),) = db_exec(vault_location, "SELECT signature FROM clients WHERE name = 'bot'")
    stocked.revoke_client("bot")
    put_back_head(vault_location, head)
    db_exec(
        vault_location,
        "UPDATE clients SET revoked_at = NULL, signature = :sig WHERE name = 'bot'",
        sig=signature,
    )
    put_back(vault_location, grant)
    with pytest.raises(IntegrityError, match='client "bot"'):
        rotation.start(stocked, "binance-main", NEW_KEY)
    assert versions(vault_location) == [(1,)]
    assert wraps_for_bot(vault_location) == []


def test_grant_to_a_revoked_client_put_back_is_refused(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    ((signature,),) = db_exec(vault_location, "SELECT signature FROM clients WHERE name = 'bot'")
    stocked.revoke_client("bot")
    db_exec(
        vault_location,
        "UPDATE clients SET revoked_at = NULL, signature = :sig WHERE name = 'bot'",
        sig=signature,
    )
    with pytest.raises(IntegrityError, match='client "bot" was revoked'):
        stocked.grant("bot", ["kucoin-sub1"])
    assert wraps_for_bot(vault_location) == []


# ------------------------------------------------------------------ exposure


def test_bot_deleting_its_grant_and_wraps_is_still_marked_exposed(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    db_exec(vault_location, f"DELETE FROM dek_wraps WHERE recipient = {BOT_ID}")
    db_exec(vault_location, f"DELETE FROM grants WHERE client_id = {BOT_ID}")
    assert stocked.revoke_client("bot") == ["binance-main"]
    assert stocked.describe("binance-main").exposed_reason == 'readable by revoked client "bot"'


def test_bot_deleting_its_grant_and_wraps_is_reported_by_verify(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    db_exec(vault_location, f"DELETE FROM dek_wraps WHERE recipient = {BOT_ID}")
    db_exec(vault_location, f"DELETE FROM grants WHERE client_id = {BOT_ID}")
    found = problems(stocked)
    assert any(
        'granted to client "bot" (audit entry ' in p and "grant row is gone" in p for p in found
    ), found


def test_signed_reads_mark_exposed_after_an_ungrant(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    """The bot read the current key, then lost its grant: it may still hold the key."""
    vault.load("binance-main", where=vault_location, token=token)
    stocked.ungrant("bot", ["binance-main"])
    assert stocked.revoke_client("bot") == ["binance-main"]


def test_reads_of_a_retired_version_do_not_mark_exposed(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    vault.load("binance-main", where=vault_location, token=token)
    stocked.ungrant("bot", ["binance-main"])
    rotation.start(stocked, "binance-main", NEW_KEY)
    rotation.promote(stocked, "binance-main")
    rotation.finish(stocked, "binance-main", force=True)
    assert stocked.revoke_client("bot") == []


# ------------------------------------------------------------------ unverified fields


def test_far_future_created_at_does_not_clear_exposure_at_finish(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    rotation.start(stocked, "binance-main", NEW_KEY)
    rotation.promote(stocked, "binance-main")
    stocked.revoke_client("bot")  # after version 2 was written: the mark concerns it too
    db_exec(
        vault_location,
        f"UPDATE credential_versions SET created_at = 4102444800 "
        f"WHERE credential_id = {BINANCE_ID} AND version = 2",
    )
    with pytest.raises(IntegrityError):
        rotation.finish(stocked, "binance-main", force=True)
    (exposed_at,) = db_exec(
        vault_location, "SELECT exposed_at FROM credentials WHERE name = 'binance-main'"
    )[0]
    assert exposed_at is not None


def test_edited_revocation_of_a_grantee_is_refused_not_skipped(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    """An unsigned revoked_at must not quietly drop a grantee from the wraps."""
    db_exec(vault_location, "UPDATE clients SET revoked_at = 1 WHERE name = 'bot'")
    with pytest.raises(IntegrityError):
        stocked.edit("binance-main", ips=["203.0.113.8"])
    assert versions(vault_location) == [(1,)]


def test_forged_version_row_does_not_move_the_numbering(
    stocked: AdminVault, vault_location: str
) -> None:
    """A copy of version 1 numbered 99 (its signature covers the number, so it is
    forged): the next number comes from the head's signed counter, not from the rows."""
    db_exec(
        vault_location,
        "INSERT INTO credential_versions SELECT credential_id, 99, name, exchange, permissions,"
        " ips, issued_on, expires_on, created_at, api_key_fingerprint, payload_digest,"
        f" signature, endpoint FROM credential_versions WHERE credential_id = {BINANCE_ID}",
    )
    assert stocked.edit("binance-main", ips=["203.0.113.8"]).version == 2
    assert any("version 99" in p for p in problems(stocked)), problems(stocked)


def test_forged_grant_row_does_not_make_a_grant_a_no_op(
    stocked: AdminVault, vault_location: str
) -> None:
    stocked.add_client("bot")
    db_exec(
        vault_location,
        f"INSERT INTO grants SELECT {BOT_ID}, id, 0, :sig FROM credentials "
        "WHERE name = 'binance-main'",
        sig=b"\0" * 64,
    )
    with pytest.raises(IntegrityError):
        stocked.grant("bot", ["binance-main"])


# ------------------------------------------------------------------ versions


def test_repeated_version_number_is_reported_by_verify(
    stocked: AdminVault, vault_location: str
) -> None:
    """The head from before a rotation (its counter one lower) put back once the
    aborted version's row is deleted: the owner's next rotation takes number 2 again,
    which only the signed log can tell."""
    head = saved_head(vault_location)
    rotation.start(stocked, "binance-main", NEW_KEY)
    rotation.abort(stocked, "binance-main")
    db_exec(
        vault_location,
        f"DELETE FROM credential_versions WHERE credential_id = {BINANCE_ID} AND version = 2",
    )
    put_back_head(vault_location, head)
    rotation.start(stocked, "binance-main", {"api_key": "a" * 64, "secret": "b" * 64})
    found = problems(stocked)
    assert any("version 2 created twice" in p for p in found), found


# ------------------------------------------------------------------ grantees named


def test_edit_names_the_clients_it_wrapped_for(stocked: AdminVault, token: str) -> None:
    stocked.add_client("bot-b")
    stocked.grant("bot-b", ["binance-main"])
    assert stocked.edit("binance-main", ips=["203.0.113.8"]).wrapped_for == ("bot", "bot-b")
    assert stocked.edit("kucoin-sub1", ips=["203.0.113.8"]).wrapped_for == ()


def test_rotate_start_names_the_clients_it_wrapped_for(stocked: AdminVault, token: str) -> None:
    result = rotation.start(stocked, "binance-main", NEW_KEY)
    assert result.wrapped_for == ("bot",)
    assert result.message == "version 2 staged as pending; wrapped for clients: bot"


# ------------------------------------------------------------------ the pure facts


def entry(
    seq: int, action: str, credential: str | None, detail: str = "", **kw: Any
) -> SignedEntry:
    return SignedEntry(
        seq, action, credential, kw.get("version"), detail, kw.get("signer", ROOT_SIGNER)
    )


def test_a_grant_stands_until_the_newest_word_is_an_ungrant() -> None:
    log = [
        entry(1, "add", "x", version=1),
        entry(2, "grant", "x", "to client bot"),
        entry(3, "ungrant", "x", "from client bot"),
    ]
    assert access_facts(log[:2]).grant_standing("bot", "x")
    assert not access_facts(log).grant_standing("bot", "x")
    regrant = entry(4, "grant", "x", "to client bot")
    assert access_facts([*log, regrant]).grant_standing("bot", "x")


def test_a_name_reused_after_remove_forgets_the_old_grants_and_reads() -> None:
    facts = access_facts(
        [
            entry(1, "add", "x", version=1),
            entry(2, "grant", "x", "to client bot"),
            entry(3, "read", "x", version=1, signer="c1"),
            entry(4, "remove", "x"),
            entry(5, "add", "x", version=1),
        ]
    )
    assert not facts.grant_standing("bot", "x")
    assert facts.readable_by("bot", "c1") == {}


def test_a_revoked_client_has_no_standing_grant() -> None:
    facts = access_facts(
        [
            entry(1, "grant", "x", "to client bot"),
            entry(2, "client-revoke", None, "client bot; exposed: x"),
        ]
    )
    assert facts.revoked == {"bot": 2}
    assert not facts.grant_standing("bot", "x")


def test_readable_by_counts_open_grants_and_signed_reads() -> None:
    facts = access_facts(
        [
            entry(1, "grant", "x", "to client bot"),
            entry(2, "grant", "y", "to client bot"),
            entry(3, "read", "y", version=1, signer="c1"),
            entry(4, "ungrant", "y", "from client bot"),
            entry(5, "read", "z", version=2, signer="other"),
        ]
    )
    assert facts.readable_by("bot", "c1") == {"x": None, "y": {1}}


def test_two_adds_without_a_remove_repeat_version_one() -> None:
    facts = access_facts([entry(1, "add", "x", version=1), entry(2, "add", "x", version=1)])
    assert [(r.credential, r.version) for r in facts.repeated_versions] == [("x", 1)]


@given(st.lists(st.sampled_from(["add", "edit", "rotate-start", "remove"]), max_size=30))
def test_versions_numbered_as_the_writer_does_never_repeat(actions: list[str]) -> None:
    log, highest = [], 0
    for seq, action in enumerate(actions, 1):
        if action == "remove":
            highest = 0
            log.append(entry(seq, action, "x"))
            continue
        if action == "add":
            if highest:
                continue  # the writer refuses to add a name that exists
            highest = 1
        else:
            if not highest:
                continue
            highest += 1
        log.append(entry(seq, action, "x", version=highest))
    assert access_facts(log).repeated_versions == []


def test_facts_of_no_entries_are_empty() -> None:
    assert access_facts([]) == AccessFacts()


signed_entries = st.builds(
    SignedEntry,
    seq=st.just(0),
    action=st.sampled_from(["add", "edit", "rotate-start", "remove", "grant", "ungrant", "read"]),
    credential=st.sampled_from(["x", "y"]),
    version=st.integers(1, 3),
    detail=st.sampled_from(["to client bot", "from client bot", "to client ops"]),
    signer=st.sampled_from([ROOT_SIGNER, ROOT_SIGNER, "c1"]),
) | st.builds(
    SignedEntry,
    seq=st.just(0),
    action=st.just("client-revoke"),
    credential=st.none(),
    version=st.none(),
    detail=st.sampled_from(["client bot; exposed: x", "client ops; exposed: none"]),
    signer=st.just(ROOT_SIGNER),
)


@given(st.lists(signed_entries, max_size=40), st.lists(st.integers(0, 40), max_size=5))
def test_folding_in_pieces_is_folding_at_once(entries: list[SignedEntry], cuts: list[int]) -> None:
    log = [e._replace(seq=seq) for seq, e in enumerate(entries, 1)]
    fold = FactsFold()
    bounds = [0, *sorted(c % (len(log) + 1) for c in cuts), len(log)]
    for start, end in itertools.pairwise(bounds):
        fold.add(log[start:end])
    assert fold.facts == access_facts(log)


# ------------------------------------------------------------------ the handle's verified prefix


def audit_signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The entry hashes whose signature the signed-log reader checks from now on."""
    checked: list[bytes] = []
    original = access_history.signed_entry

    def counting(vault_id: bytes, hash_: bytes) -> bytes:
        checked.append(hash_)
        return original(vault_id, hash_)

    monkeypatch.setattr(access_history, "signed_entry", counting)
    return checked


def test_a_warm_handle_checks_no_old_signature_again(
    stocked: AdminVault, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stocked.edit("binance-main", ips=["203.0.113.8"])
    checked = audit_signature_checks(monkeypatch)
    stocked.edit("binance-main", ips=["203.0.113.9"])
    stocked.grant("bot", ["binance-main"])
    assert checked == []


def test_an_edit_after_the_remembered_entry_was_changed_is_refused(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    """The handle remembers the chain up to its newest entry; that entry edited (the
    edit hashed anew, the chain broken) makes it walk again, and refuse."""
    stocked.edit("binance-main", ips=["203.0.113.8"])
    db_exec(
        vault_location,
        "UPDATE audit_log SET detail = 'v' WHERE seq = (SELECT max(seq) FROM audit_log)",
    )
    with pytest.raises(IntegrityError, match="the audit log is broken at entry"):
        stocked.edit("binance-main", ips=["203.0.113.9"])
    assert versions(vault_location) == [(1,), (2,)]


def test_an_ungrant_edited_in_place_inside_the_remembered_prefix_still_refuses(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    """The handle walked the ungrant before it was edited into another action (and the
    grant rows put back): it does not read the prefix again, and what it verified
    stands; a new handle finds the chain broken. Either way nothing is wrapped."""
    grant, head = saved_grant(vault_location), saved_head(vault_location)
    stocked.ungrant("bot", ["binance-main"])
    stocked.set_policy("kucoin-sub1", max_age_days=30)
    stocked.signed_access_facts(["binance-main"])
    db_exec(vault_location, "UPDATE audit_log SET action = 'policy' WHERE action = 'ungrant'")
    put_back(vault_location, grant)
    put_back_head(vault_location, head)
    with pytest.raises(IntegrityError, match="run exvault verify"):
        stocked.edit("binance-main", ips=["203.0.113.8"])
    with (
        AdminVault.unlock(vault_location, PASSPHRASE) as fresh,
        pytest.raises(IntegrityError, match="the audit log is broken at entry"),
    ):
        fresh.edit("binance-main", ips=["203.0.113.8"])
    assert versions(vault_location) == [(1,)]
    assert wraps_for_bot(vault_location) == []


def test_a_log_cut_before_the_remembered_entry_is_walked_again(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    """The handle's newest remembered entry (a grant) cut off the log: the handle must
    walk it again and say what the log now says, not what it remembers."""
    stocked.add_client("ops")
    stocked.grant("ops", ["binance-main"])
    assert stocked.signed_access_facts(["binance-main"]).grant_standing("ops", "binance-main")
    db_exec(vault_location, "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)")
    assert not stocked.signed_access_facts(["binance-main"]).grant_standing("ops", "binance-main")


def test_the_state_after_many_operations_equals_a_fresh_walk(
    stocked: AdminVault, token: str, vault_location: str
) -> None:
    stocked.add_client("ops")
    stocked.add_client("gone")
    names = ["binance-main", "kucoin-sub1"]
    stocked.signed_access_facts(names)
    with stocked.batch():
        stocked.grant("ops", names)
        with pytest.raises(NotFound):
            # Its first grant is written, then rolled back with the rest.
            stocked.grant("gone", ["binance-main", "missing"])
        stocked.ungrant("bot", ["binance-main"])
        stocked.edit("kucoin-sub1", ips=["203.0.113.8"])
    stocked.grant("gone", ["kucoin-sub1"])
    stocked.revoke_client("gone")
    stocked.remove("binance-main")
    stocked.grant("bot", ["kucoin-sub1"])
    kept = stocked.signed_access_facts(names)
    with AdminVault.unlock(vault_location, PASSPHRASE) as fresh:
        walked = fresh.signed_access_facts(names)
    assert kept == walked
    assert kept.revoked.keys() == {"gone"}
    assert {name: set(clients) for name, clients in kept.granted.items()} == {
        "kucoin-sub1": {"ops", "gone", "bot"}
    }
