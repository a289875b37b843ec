"""Rotating a sub-account's key at the exchange, through its master account's key.

Each exchange-side step is journalled (:class:`vault.owner.journal.Journal`): the
intent is committed before the call and settled after it, so that a run killed at any
point leaves what the next run needs to finish or undo it (:meth:`ExchangeRotation.resume`):

* a ``create`` left open: the sub-account's keys are listed; a key carrying the
  rotation's id in its label whose API key is in the vault is settled ``done``; one
  that never reached the vault is deleted (its passphrase is derived again from the
  rotation id, see :meth:`ExchangeRotation.passphrase_seed`) and the entry settled
  ``abandoned``;
* a ``delete`` left open (or failed): retried until the key is no longer listed.

The order keeps every credential with a working key: the old key is deleted only by
``finish``, once the new version is current (promoted, and verified first when the
rotation is automatic) and the grace period is over; and the version holding the old
key is dropped only once the exchange no longer lists it. A lease entry claimed in one
write transaction keeps two runs off one credential.

Every exchange call goes through :mod:`vault.ops.exchange_api`, the one door to the
exchanges: the master key's calls at the master credential's endpoint, the new key's
verification (the probe's introspection, signed with the new key) at the rotated
credential's endpoint (``live``, ``testnet``, or a base URL such as a regional host).

The new key's secret goes from the exchange's answer into a sealed version
(:func:`vault.owner.rotation.start`) and nowhere else: the journal holds public key ids.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

from vault.errors import (
    Conflict,
    ExchangeError,
    ExchangeUnreachable,
    InvalidInput,
    VaultError,
    quoted,
)
from vault.exchanges.key_report import KeyReport, ProbeError
from vault.format import encoding, journal
from vault.format.credential_info import CredentialInfo
from vault.format.model import utc_now
from vault.format.policy import Policy
from vault.format.schema import JournalRow
from vault.ops import exchange_keys
from vault.ops.checks import Report
from vault.ops.exchange_keys.model import (
    ListedKey,
    SignedRequests,
    SubAccountKeys,
    label_for,
    new_rotation_id,
    rotation_id_of,
)
from vault.ops.finding import Finding
from vault.owner import rotation
from vault.owner.admin import AdminVault
from vault.owner.journal import Journal
from vault.owner.rotation import StepResult, VerifyCheck
from vault.runtime.credential import Credential
from vault.secret import Secret

DEFAULT_TIMEOUT = 10.0
"""Seconds each exchange request may take before it counts as unanswered."""

ON_PROMOTE_TIMEOUT = 120
"""Seconds an ``--on-promote`` command may run."""


@dataclass(frozen=True)
class Link:
    """A credential rotated at the exchange: its master, sub-account and key management."""

    name: str
    master: str
    exchange: str
    sub_account: str
    keys: SubAccountKeys
    policy: Policy


@dataclass(frozen=True)
class DueItem:
    """What ``rotate due`` would do for one credential, and why."""

    name: str
    action: str
    """``start``, ``verify`` (a pending version to verify and promote), ``finish``
    (the grace period is over), ``wait`` (finish later), or ``resume`` (journal
    entries left open by an earlier run)."""
    reason: str
    auto: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "credential": self.name,
            "action": self.action,
            "reason": self.reason,
            "auto": self.auto,
        }


@dataclass
class RunResult:
    """What one automatic run did for one credential."""

    name: str
    steps: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"credential": self.name, "ok": self.ok, "steps": self.steps, "error": self.error}


def due(
    infos: list[CredentialInfo], open_entries: Mapping[str, int], now: datetime
) -> list[DueItem]:
    """What is due among the credentials linked to a master (``policy set
    --rotate-via``): a pure function of their metadata, the open journal entries per
    credential and ``now``."""
    items: list[DueItem] = []
    today = now.date()
    for info in sorted(infos, key=lambda i: i.name):
        policy = Policy.from_json(dict(info.policy))
        if policy.rotate_via is None:
            continue
        auto = policy.auto
        if open_entries.get(info.name):
            items.append(DueItem(info.name, "resume", "an earlier run left steps open", auto))
        elif info.pending_version is not None:
            items.append(
                DueItem(info.name, "verify", f"version {info.pending_version} is pending", auto)
            )
        elif info.previous_version is not None:
            until = info.previous_until
            if until is None or until <= now:
                items.append(
                    DueItem(
                        info.name, "finish", "the grace period is over: delete the old key", auto
                    )
                )
            else:
                items.append(
                    DueItem(
                        info.name, "wait", f"grace period until {until:%Y-%m-%d %H:%M} UTC", auto
                    )
                )
        else:
            age = info.age_days(today)
            limit = policy.max_age_days - policy.warn_before_days
            expires = info.metadata.expires_on
            if info.exposed_at is not None:
                items.append(DueItem(info.name, "start", "the key is marked exposed", auto))
            elif age >= limit:
                items.append(
                    DueItem(info.name, "start", f"{age} days old (rotate at {limit})", auto)
                )
            elif expires is not None and (expires - today).days <= policy.warn_before_days:
                items.append(
                    DueItem(info.name, "start", f"the exchange expires it on {expires}", auto)
                )
    return items


def process_holder() -> str:
    """This process, as a lease names it: host, pid and the process's start time."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def holder_alive(holder: str) -> bool:
    """Whether the process a lease names still runs (a holder of another host is
    taken to be alive: its liveness cannot be seen from here)."""
    host, _, rest = holder.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname():
        return True
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return _start_time(pid) == started


def _exchange_api() -> ModuleType:
    """:mod:`vault.ops.exchange_api`, imported on the first exchange call: it loads
    ccxt (the ``exchanges`` extra), which the commands sharing this module's callers
    (``rotate due --dry-run``, the manual rotation) never need.

    :raises VaultUnavailable: when ccxt is not installed.
    """
    from vault.ops import exchange_api  # same layer; deferred for the optional extra

    return exchange_api


def _start_time(pid: int) -> str:
    # Field 22 of /proc/PID/stat: the start time, so that a reused pid is not taken
    # for the process that held the lease.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


class ExchangeRotation:
    """Automated rotation of the credentials of one unlocked vault."""

    def __init__(
        self,
        admin: AdminVault,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        holder: str | None = None,
        alive: Callable[[str], bool] = holder_alive,
    ) -> None:
        self.admin = admin
        self.journal = Journal(admin.writer)
        self.timeout = timeout
        self._holder = holder or process_holder()
        self._alive = alive
        self._read: dict[tuple[str, str, int | None], Credential] = {}

    # ---------------------------------------------------------------- links and keys

    def link(self, name: str) -> Link:
        """The link of ``name`` to its master.

        :raises NotFound: when ``name`` does not exist.
        :raises InvalidInput: when it is not linked, has no sub-account, or its exchange
            cannot be automated.
        """
        info = self.admin.describe(name)
        policy = Policy.from_json(dict(info.policy))
        if policy.rotate_via is None:
            raise InvalidInput(
                f"{quoted(name)} is not rotated at the exchange: "
                f"exvault policy set {name} --rotate-via MASTER"
            )
        if policy.sub_account is None:
            raise InvalidInput(
                f"the sub-account of {quoted(name)} is not known: "
                f"exvault policy set {name} --sub-account UID|NAME"
            )
        keys = exchange_keys.for_exchange(info.metadata.exchange)
        return Link(
            name, policy.rotate_via, info.metadata.exchange, policy.sub_account, keys, policy
        )

    def _fields(self, name: str, stage: str) -> dict[str, str]:
        return {k: v.reveal() for k, v in self._version(name, stage).fields.items()}

    def _version(self, name: str, stage: str) -> Credential:
        # Each read of a version is audited (a write transaction): a run reads each
        # version it needs once, kept as Secrets until used.
        info = self.admin.describe(name)
        version = {
            "current": info.version,
            "pending": info.pending_version,
            "previous": info.previous_version,
        }[stage]
        key = (name, stage, version)
        if key not in self._read:
            self._read[key] = self.admin.get(name, stage)
        return self._read[key]

    def _master(self, link: Link) -> SignedRequests:
        """A client holding the master key, at the master credential's endpoint.

        :raises InvalidInput: when the master is of another exchange, or its endpoint
            is unusable.
        """
        master = self._version(link.master, "current")
        if master.exchange != link.exchange:
            raise InvalidInput(
                f"the master {quoted(link.master)} is a key of {master.exchange}, "
                f"not of {link.exchange}"
            )
        client: SignedRequests = _exchange_api().KeyClient(
            link.exchange, master.fields, master.endpoint, timeout=self.timeout
        )
        return client

    def probe(self, name: str, stage: str) -> KeyReport | ProbeError:
        """What the exchange says about the key of ``name``'s ``stage``, asked with that
        key at that version's endpoint (the probe's introspection call)."""
        version = self._version(name, stage)
        report: KeyReport | ProbeError = _exchange_api().ask_key(
            version.exchange,
            version.fields,
            version.endpoint,
            now=utc_now(),
            timeout=self.timeout,
        )
        return report

    def passphrase_seed(self, rotation_id: str) -> bytes:
        """The seed of the API passphrase of the key a rotation creates: the root key's
        signature of the rotation id (Ed25519 signs deterministically), so the next run
        derives the same passphrase to delete a key whose secret never reached the
        vault, and nobody without the root key can."""
        return self.admin.identity.sign(
            encoding.signed_message("rotation-passphrase", self.admin.vault_id, rotation_id)
        )

    def _stage_keys(self, name: str) -> dict[str, str]:
        """API key -> the stage holding it, for every stage of ``name``."""
        info = self.admin.describe(name)
        stages = ["current"]
        if info.pending_version is not None:
            stages.append("pending")
        if info.previous_version is not None:
            stages.append("previous")
        found: dict[str, str] = {}
        for stage in stages:
            found[self._fields(name, stage).get("api_key", "")] = stage
        return found

    # ---------------------------------------------------------------- resume

    def resume(self, name: str) -> list[str]:
        """Settle the journal entries an earlier run left open for ``name``; what was done.

        :raises ExchangeError: when the exchange refuses (the entry stays open).
        :raises ExchangeUnreachable: when it cannot be reached (the entry stays open).
        """
        entries = [
            e
            for e in self.journal.entries(open_only=True)
            if e.credential == name and e.step != journal.LEASE
        ]
        if not entries:
            return []
        link = self.link(name)
        master = self._master(link)
        done: list[str] = []
        for entry in entries:
            listed = link.keys.list_keys(master, link.sub_account)
            if entry.step == journal.CREATE:
                done.append(self._resume_create(link, master, entry, listed))
            else:
                done.append(self._delete(link, master, entry, listed))
        return done

    def _resume_create(
        self, link: Link, master: SignedRequests, entry: JournalRow, listed: list[ListedKey]
    ) -> str:
        mine = [k for k in listed if rotation_id_of(k.label) == entry.rotation_id]
        in_vault = self._stage_keys(link.name)
        kept = [k for k in mine if k.api_key in in_vault]
        for key in mine:
            if key.api_key not in in_vault:
                passphrase = link.keys.passphrase(self.passphrase_seed(entry.rotation_id))
                link.keys.delete_key(master, link.sub_account, key.api_key, passphrase)
        if kept:
            self.journal.settle(entry, journal.DONE, api_key=kept[0].api_key)
            return f"rotation {entry.rotation_id}: the new key is in the vault"
        self.journal.settle(
            entry,
            journal.ABANDONED,
            detail="created key never reached the vault: deleted" if mine else "no key created",
        )
        return (
            f"rotation {entry.rotation_id}: deleted {len(mine)} key(s) that never reached the vault"
            if mine
            else f"rotation {entry.rotation_id}: no key had been created"
        )

    def _delete(
        self,
        link: Link,
        master: SignedRequests,
        entry: JournalRow,
        listed: list[ListedKey] | None = None,
    ) -> str:
        """Delete the key of the ``delete`` entry unless the exchange no longer lists it;
        settle the entry ``done``. A failure counts an attempt and leaves it open."""
        api_key = entry.api_key or ""
        stage = self._stage_keys(link.name).get(api_key)
        if stage == "current":
            # Made current since the delete began (a promote after a failed abort):
            # deleting it now would leave the credential without a working key. The
            # entry is given up. (A pending key is deleted: that resumes its abort.)
            self.journal.settle(entry, journal.ABANDONED, detail="the key is current: kept")
            return f"kept the key {api_key} at {link.exchange}: it is the current key now"
        try:
            if listed is None:
                listed = link.keys.list_keys(master, link.sub_account)
            if any(k.api_key == api_key for k in listed):
                link.keys.delete_key(
                    master, link.sub_account, api_key, self._passphrase_of(link, entry, stage)
                )
        except VaultError:
            self.journal.settle(entry, journal.INTENT)
            raise
        self.journal.settle(entry, journal.DONE)
        return f"deleted the old key {api_key} at {link.exchange}"

    def _passphrase_of(self, link: Link, entry: JournalRow, stage: str | None) -> Secret | None:
        # The key's passphrase is in the vault version holding it (``stage``: an old
        # key may have been made by hand); a key exvault created has a derived one.
        if link.keys.passphrase_rules is None:
            return None
        if stage is not None:
            value = self._fields(link.name, stage).get("passphrase")
            return Secret(value) if value is not None else None
        return link.keys.passphrase(self.passphrase_seed(entry.rotation_id))

    # ---------------------------------------------------------------- the steps

    def current_key(self, link: Link, master: SignedRequests) -> ListedKey:
        """The current key as the master lists it.

        :raises ExchangeError: when the sub-account's listing does not hold it.
        """
        api_key = self._fields(link.name, "current").get("api_key", "")
        for key in link.keys.list_keys(master, link.sub_account):
            if key.api_key == api_key:
                return key
        raise ExchangeError(
            f"the current key of {quoted(link.name)} is not a key of sub-account "
            f"{quoted(link.sub_account)} at {link.exchange}: check --sub-account"
        )

    def start(self, name: str, *, allow_withdraw: bool = False) -> StepResult:
        """Create a new key at the exchange with the current key's permissions and IP
        whitelist as the exchange lists them (never wider), and stage it as pending.

        :raises Conflict: when a rotation is pending already.
        :raises InvalidInput: when the current key can withdraw and ``allow_withdraw``
            is not given, or has no IP whitelist.
        :raises ExchangeError: when the exchange refuses (nothing was created).
        :raises ExchangeUnreachable: when the outcome is unknown (the next run cleans up).
        """
        link = self.link(name)
        info = self.admin.describe(name)
        if info.pending_version is not None:
            raise Conflict(
                f'a rotation of "{name}" is already pending (version {info.pending_version}): '
                f"exvault rotate verify {name}"
            )
        if info.previous_version is not None:
            # A promote drops the previous version: its key would stay live at the
            # exchange with nothing left to delete it. The last rotation ends first.
            raise Conflict(
                f'the last rotation of "{name}" is not finished (version '
                f"{info.previous_version} is still readable as previous): exvault rotate "
                f"finish {name}"
            )
        master = self._master(link)
        current = self.current_key(link, master)
        permissions = link.keys.permissions(current.grants)
        if "withdraw" in permissions and not allow_withdraw:
            raise InvalidInput(
                f"the current key of {quoted(name)} can withdraw: the new key would too. "
                "Give --allow-withdraw to keep that, or remove withdraw at the exchange first"
            )
        if not current.ips:
            raise InvalidInput(
                f"the current key of {quoted(name)} has no IP whitelist at {link.exchange}: "
                "exvault creates no unbound key; bind it to IPs first"
            )
        rotation_id = new_rotation_id()
        entry = self.journal.begin(name, rotation_id, journal.CREATE)
        try:
            new = link.keys.create_key(
                master,
                link.sub_account,
                label_for(name, rotation_id),
                current.grants,
                current.ips,
                link.keys.passphrase(self.passphrase_seed(rotation_id)),
            )
        except ExchangeUnreachable:
            self.journal.settle(entry, journal.INTENT)  # the next run looks for the key
            raise
        except VaultError:
            self.journal.settle(entry, journal.FAILED, detail="refused by the exchange")
            raise
        try:
            result = rotation.start(
                self.admin,
                name,
                new.payload(),
                permissions=permissions,
                ips=current.ips,
                issued_on=utc_now().date(),
                expires_on=None,
            )
        except VaultError:
            # The vault refused the new version (a grantee's scope...): the key is
            # deleted again now; a crash here leaves it to resume.
            link.keys.delete_key(master, link.sub_account, new.api_key, new.passphrase)
            self.journal.settle(entry, journal.ABANDONED, detail="the vault refused it: deleted")
            raise
        self.journal.settle(
            entry, journal.DONE, api_key=new.api_key, detail=f"version {result.version}"
        )
        return result

    def verify(self, name: str) -> list[VerifyCheck]:
        """``rotate verify``'s checks, and the exchange's: the pending key, probed with
        itself at its endpoint, works and reports the current key's permissions and IPs
        (never wider), and the master lists it with the current key's grants and IPs
        exactly.

        :raises NotFound: when no rotation is pending.
        """
        checks = rotation.verify(self.admin, name)
        link = self.link(name)
        checks.append(self._probe_check(name, link))
        checks.append(self._listing_check(name, link))
        return checks

    def _probe_check(self, name: str, link: Link) -> VerifyCheck:
        """The pending key's own introspection against the current key's (or, when the
        current key cannot be probed, the current version's declared scope)."""
        pending = self.probe(name, "pending")
        if isinstance(pending, ProbeError):
            return VerifyCheck("exchange-probe", False, f"the pending key: {pending.message}")
        current = self.probe(name, "current")
        declared = self._version(name, "current")
        if isinstance(current, KeyReport):
            baseline_permissions = current.permissions
            baseline_ips = current.ips
            against = "the current key's, as the exchange reports them"
        else:
            baseline_permissions = tuple(declared.permissions)
            baseline_ips = tuple(declared.ips)
            against = "the current version's (the current key could not be probed)"
        problems = scope_problems(
            pending.permissions, pending.ips, baseline_permissions, baseline_ips
        )
        if problems:
            return VerifyCheck(
                "exchange-probe",
                False,
                "the pending key works, but " + "; ".join(problems) + f" (compared with {against})",
            )
        unsaid = [
            what
            for what, value in (("permissions", pending.permissions), ("IPs", pending.ips))
            if value is None
        ]
        note = f"; {link.exchange} does not report its {' or '.join(unsaid)}" if unsaid else ""
        return VerifyCheck(
            "exchange-probe",
            True,
            f"the pending key works and reports the permissions and IPs of {against}{note}",
        )

    def _listing_check(self, name: str, link: Link) -> VerifyCheck:
        """The master's listing: the pending key is listed with the current key's grants
        and IPs exactly, in the exchange's own vocabulary."""
        pending = self._fields(name, "pending")
        try:
            master = self._master(link)
            listed = {k.api_key: k for k in link.keys.list_keys(master, link.sub_account)}
        except VaultError as exc:
            return VerifyCheck("exchange-scope", False, str(exc))
        new = listed.get(pending.get("api_key", ""))
        old = listed.get(self._fields(name, "current").get("api_key", ""))
        if new is None:
            return VerifyCheck(
                "exchange-scope", False, "the exchange does not list the pending key"
            )
        same = old is None or (new.grants, new.ips) == (old.grants, old.ips)
        wider = "withdraw" in link.keys.permissions(new.grants) and (
            old is None or "withdraw" not in link.keys.permissions(old.grants)
        )
        ok = same and not wider and bool(new.ips)
        return VerifyCheck(
            "exchange-scope",
            ok,
            "the master lists the pending key with the current key's permissions and IPs"
            if ok
            else "the pending key's permissions or IPs differ from the current key's "
            f"({', '.join(new.grants)}; {', '.join(new.ips) or 'any IP'})",
        )

    def promote(
        self, name: str, *, grace: timedelta | None = None
    ) -> tuple[StepResult, str | None]:
        """``rotate promote``, then the policy's ``on_promote`` command; the result and
        what the command did (None without one)."""
        result = rotation.promote(self.admin, name, grace=grace)
        command = Policy.from_json(dict(self.admin.describe(name).policy)).on_promote
        if command is None or not result.changed:
            return result, None
        return result, run_on_promote(command, name)

    def finish(self, name: str, *, force: bool = False) -> StepResult:
        """Delete the old key at the exchange (journalled, retried until the exchange no
        longer lists it), then drop the previous version.

        :raises Conflict: before the grace period ends, unless ``force``; nothing changes.
        :raises ExchangeError: when the exchange refuses (the version is kept).
        :raises ExchangeUnreachable: when it cannot be reached (the version is kept).
        """
        info = self.admin.describe(name)
        if info.previous_version is None:
            return StepResult(name, "finish", False, info.version, "nothing to finish")
        if not force and info.previous_until is not None and info.previous_until > utc_now():
            raise Conflict(
                f'the grace period of "{name}" runs until '
                f"{info.previous_until:%Y-%m-%d %H:%M} UTC and bots may still read the previous "
                f"key: finish after then, or now with --force"
            )
        link = self.link(name)
        deleted = self._delete_stage_key(link, "previous", info.previous_version)
        result = rotation.finish(self.admin, name, force=True)
        if not deleted:
            return result
        # The manual finish's advice (delete the key at the exchange) is done already.
        done = f"the old key is deleted at {link.exchange}"
        return replace(result, message=f"version {info.previous_version} dropped; {done}")

    def abort(self, name: str) -> StepResult:
        """Delete the pending key at the exchange (journalled, as :meth:`finish` does),
        then drop the pending version.

        :raises ExchangeError: when the exchange refuses (the version is kept).
        :raises ExchangeUnreachable: when it cannot be reached (the version is kept).
        """
        info = self.admin.describe(name)
        if info.pending_version is None:
            return rotation.abort(self.admin, name)
        self._delete_stage_key(self.link(name), "pending", info.pending_version)
        return rotation.abort(self.admin, name)

    def _delete_stage_key(self, link: Link, stage: str, version: int) -> bool:
        """Delete the key of ``stage`` at the exchange, journalled first; False when
        there is none to delete (no API key, or the current key's own).

        :raises ExchangeError: when the exchange refuses (the entry stays open).
        :raises ExchangeUnreachable: when it cannot be reached (the entry stays open).
        """
        api_key = self._fields(link.name, stage).get("api_key", "")
        if not api_key or api_key == self._fields(link.name, "current").get("api_key", ""):
            return False
        entry = self.journal.begin(
            link.name,
            new_rotation_id(),
            journal.DELETE,
            api_key=api_key,
            detail=f"version {version}",
        )
        self._delete(link, self._master(link), entry)
        return True

    # ---------------------------------------------------------------- leases

    @contextmanager
    def leased(self, name: str) -> Iterator[None]:
        """Hold ``name``'s lease for the block (released, settled ``done``, after it;
        a process killed inside leaves it to be taken over once it is gone).

        :raises Conflict: when another live process holds it.
        """
        lease = self.journal.claim(name, new_rotation_id(), self._holder, self._alive)
        if lease is None:
            raise Conflict(f'another exvault process is rotating "{name}": try again later')
        try:
            yield
        finally:
            self.journal.settle(lease, journal.DONE)

    # ---------------------------------------------------------------- rotate due --auto

    def release_dead_leases(self) -> int:
        """Settle the leases of runs that are gone (killed while they held a credential
        with nothing left to do); how many."""
        return self.journal.release_dead(self._alive)

    def open_entries(self) -> dict[str, int]:
        """The number of open journal entries (leases aside) per credential."""
        counts: dict[str, int] = {}
        for entry in self.journal.entries(open_only=True):
            if entry.step != journal.LEASE:
                counts[entry.credential] = counts.get(entry.credential, 0) + 1
        return counts

    def run(self, item: DueItem, *, allow_withdraw: bool = False) -> RunResult:
        """Do what ``item`` says for its credential, under a lease: resume, then start,
        verify and promote, or finish. Never raises a :class:`VaultError`: the result
        holds it."""
        result = RunResult(item.name)
        try:
            lease = self.journal.claim(item.name, new_rotation_id(), self._holder, self._alive)
            if lease is None:
                result.steps.append("skipped: another run holds it")
                return result
            try:
                self._run(item, result, allow_withdraw=allow_withdraw)
            finally:
                self.journal.settle(lease, journal.DONE)
        except VaultError as exc:
            result.error = str(exc)
        return result

    def _run(self, item: DueItem, result: RunResult, *, allow_withdraw: bool) -> None:
        result.steps.extend(self.resume(item.name))
        info = self.admin.describe(item.name)
        idle = info.pending_version is None and info.previous_version is None
        if idle and item.action in ("start", "resume") and _still_due(item, info):
            started = self.start(item.name, allow_withdraw=allow_withdraw)
            result.steps.append(f"started: {started.message}")
            info = self.admin.describe(item.name)
        if info.pending_version is not None:
            failed = [c for c in self.verify(item.name) if not c.passed]
            if failed:
                result.error = "verify failed: " + "; ".join(
                    f"{c.name}: {c.detail}" for c in failed
                )
                return
            result.steps.append("verified")
            promoted, command = self.promote(item.name)
            result.steps.append(f"promoted: {promoted.message}")
            if command is not None:
                result.steps.append(command)
        elif info.previous_version is not None and (
            info.previous_until is None or info.previous_until <= utc_now()
        ):
            finished = self.finish(item.name)
            result.steps.append(f"finished: {finished.message}")


def scope_problems(
    permissions: tuple[str, ...] | None,
    ips: tuple[str, ...] | None,
    baseline_permissions: tuple[str, ...] | None,
    baseline_ips: tuple[str, ...] | None,
) -> list[str]:
    """How a new key's reported scope differs from the baseline's (empty: it matches).
    ``None`` is "not reported" and compares with nothing; an empty IP list is an
    unbound key, always a problem."""
    problems: list[str] = []
    if permissions is not None and baseline_permissions is not None:
        wider = sorted(set(permissions) - set(baseline_permissions))
        narrower = sorted(set(baseline_permissions) - set(permissions))
        if wider:
            problems.append(f"it may also {', '.join(wider)}")
        if narrower:
            problems.append(f"it may not {', '.join(narrower)}")
    if ips is not None:
        if not ips:
            problems.append("it is bound to no IP address")
        elif baseline_ips is not None and set(ips) != set(baseline_ips):
            problems.append(f"its IP whitelist is {', '.join(sorted(ips))}")
    return problems


def _still_due(item: DueItem, info: CredentialInfo) -> bool:
    # A resumed credential starts a rotation only when its policy says it is due.
    if item.action == "start":
        return True
    return any(d.action == "start" for d in due([info], {}, utc_now()))


def run_on_promote(command: str, name: str) -> str:
    """Run the ``on_promote`` command (no shell; ``EXVAULT_CREDENTIAL`` names the
    credential); one line saying how it ended, never its output."""
    try:
        argv = shlex.split(command)
        # The owner's own command from the signed policy, run without a shell.
        completed = subprocess.run(  # noqa: S603
            argv,
            env={**os.environ, "EXVAULT_CREDENTIAL": name},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=ON_PROMOTE_TIMEOUT,
            check=False,
        )
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        return f"on-promote command failed to run ({type(exc).__name__})"
    if completed.returncode != 0:
        return f"on-promote command exited {completed.returncode}"
    return "on-promote command ran"


def report(results: list[RunResult], credentials: int, now: datetime) -> Report:
    """The findings of an automatic run, in the form ``check`` notifies: a failure is
    ``warn`` (``rotation-failed``), a credential rotated or finished ``ok``."""
    findings = []
    for result in results:
        if result.error is not None:
            findings.append(Finding("warn", "rotation-failed", result.name, result.error))
        elif result.steps:
            findings.append(Finding("ok", "rotated", result.name, "; ".join(result.steps)))
    return Report(now, credentials, tuple(findings))


def find_due(admin: AdminVault, now: datetime) -> list[DueItem]:
    """:func:`due` over the vault's credentials, with its open journal entries."""
    return due(admin.credentials(), ExchangeRotation(admin).open_entries(), now)


__all__ = [
    "DEFAULT_TIMEOUT",
    "DueItem",
    "ExchangeRotation",
    "Link",
    "RunResult",
    "due",
    "find_due",
    "holder_alive",
    "process_holder",
    "report",
    "run_on_promote",
    "scope_problems",
]
