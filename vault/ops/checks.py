"""The rotation checker: findings about every credential, from metadata alone.

``exvault check`` runs from cron without the passphrase: everything it needs (dates,
permissions, IP whitelists, policy, grants, last reads) is clear metadata. It reads
with a handful of bulk queries, so 100,000 credentials check in a few seconds.
Record signatures are not verified here (``exvault verify`` does that with the
passphrase); a finding is advice, never a decision made on unverified data. Reads are
the exception: a key looks in use only through a read entry whose signature verifies
with a public key, so that a forged entry cannot hide a dead key.

Each finding has a severity (``ok`` < ``warn`` < ``critical``), a stable code (the
table in docs/rotation.md), the credential it is about (or none, for vault-wide
findings) and a one-line message that says what to do.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import func, select

from vault.collector import collector_paused
from vault.db import audit, audit_file, keyslots
from vault.db.inventory import Inventory, ParsedOnce
from vault.db.store import driver_rows, orm_session
from vault.db.tables import AuditRecord, ClientRecord, CredentialRecord, GrantRecord, VersionRecord
from vault.db.transaction import Transaction
from vault.errors import InvalidInput, VaultError
from vault.exchanges.profiles import ExchangeProfile, get_profile
from vault.format import kdf_params
from vault.format.audit_entry import AUDIT_COLUMNS, AuditRow
from vault.format.model import from_epoch, split_list, to_epoch
from vault.format.policy import DEFAULT_WARN_BEFORE_DAYS, Policy, exchange_rule_finding
from vault.format.records import stored_date
from vault.network import WILDCARDS, is_unrestricted
from vault.ops.audit_signers import entry_signers, plausible_entry
from vault.ops.finding import RANK, SEVERITIES, Finding
from vault.ops.observations import ObservationState, latest_states, state_findings
from vault.ops.verified_reads import VerifiedReads

PENDING_TOO_LONG = timedelta(hours=24)
_TRADING = frozenset({"trade", "margin", "futures"})


class CredentialFacts(NamedTuple):
    """What the checker knows of one credential (all clear metadata).

    A named tuple: made once per credential, three times faster than a frozen
    dataclass.
    """

    name: str
    exchange: str
    permissions: tuple[str, ...]
    ips: tuple[str, ...]
    issued_on: date
    expires_on: date | None
    added_on: date
    policy: Policy
    grantees: int
    last_read: datetime | None
    pending_since: datetime | None
    previous_until: datetime | None
    exposed_at: datetime | None
    exposed_reason: str | None
    api_key_fingerprint: bytes
    probes: ObservationState | None = None
    """What the stored probe observations of its current version say (None: never probed)."""


class CredentialAge(NamedTuple):
    """One credential's lifetime as of the check: what the per-credential metrics show."""

    name: str
    age_days: int
    """Days since the current version was issued."""
    days_to_expiry: int | None
    """Days until the exchange expires the key (negative once expired); None: no expiry."""
    last_probe_at: datetime | None = None
    """When the exchange last answered a probe of the current version with a report
    (an authenticated observation); None: never, or no such observation verifies."""


@dataclass(frozen=True)
class Report:
    """The result of a check run."""

    generated_at: datetime
    credentials: int
    findings: tuple[Finding, ...]
    ages: tuple[CredentialAge, ...] = ()
    """Every credential's age and time to expiry, by name."""

    @property
    def worst(self) -> str:
        """The highest severity found (``ok`` when there is nothing)."""
        return max((f.severity for f in self.findings), key=RANK.__getitem__, default="ok")

    def at_least(self, severity: str) -> list[Finding]:
        """Findings at or above ``severity``."""
        return [f for f in self.findings if RANK[f.severity] >= RANK[severity]]

    def exit_code(self, fail_on: str = "critical") -> int:
        """0 when nothing reaches ``fail_on``; else 1 (worst is warn) or 2 (critical)."""
        if not self.at_least(fail_on):
            return 0
        return RANK[self.worst]

    def as_dict(self) -> dict[str, Any]:
        """JSON form (what ``--json`` prints and the webhook receives)."""
        counts = {s: sum(1 for f in self.findings if f.severity == s) for s in SEVERITIES}
        return {
            "generated_at": self.generated_at.isoformat(),
            "credentials": self.credentials,
            "worst": self.worst,
            "counts": counts,
            "findings": [f.as_dict() for f in self.findings],
        }


def _days(n: int) -> str:
    return f"{n} day{'' if abs(n) == 1 else 's'}"


class _Rules:
    """The rules, one method each, appending findings to ``out`` (six generators per
    credential cost more than most rules' work); ``today``/``now`` come from the
    injected clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.today = now.date()
        self._profiles: dict[str, ExchangeProfile | None] = {}
        # Two rules ask; few distinct whitelists.
        self.unrestricted = ParsedOnce(is_unrestricted)

    def profile(self, exchange: str) -> ExchangeProfile | None:
        """The exchange's profile, looked up once per exchange (None when unknown)."""
        if exchange not in self._profiles:
            try:
                self._profiles[exchange] = get_profile(exchange)
            except InvalidInput:  # an exchange this version does not know: no rules
                self._profiles[exchange] = None
        return self._profiles[exchange]

    def deadline(
        self,
        f: CredentialFacts,
        code: str,
        when: date,
        what: str,
        fix: str,
        out: list[Finding],
    ) -> None:
        left = (when - self.today).days
        if left <= 0:
            out.append(
                Finding("critical", code, f.name, f"{what} on {when} ({_days(-left)} ago): {fix}")
            )
        elif left <= f.policy.warn_before_days:
            out.append(Finding("warn", code, f.name, f"{what} on {when} (in {_days(left)}): {fix}"))

    def age(self, f: CredentialFacts, out: list[Finding]) -> None:
        age = (self.today - f.issued_on).days
        due = f.policy.max_age_days - age
        rotate = f"rotate it: exvault rotate start {f.name}"
        if due <= 0:
            out.append(
                Finding(
                    "critical",
                    "age-overdue",
                    f.name,
                    f"key is {_days(age)} old, over its maximum age of {f.policy.max_age_days}: "
                    + rotate,
                )
            )
        elif due <= f.policy.warn_before_days:
            out.append(
                Finding(
                    "warn",
                    "age-due-soon",
                    f.name,
                    f"key is {_days(age)} old; rotation due in {_days(due)}: " + rotate,
                )
            )

    def expiry(self, f: CredentialFacts, out: list[Finding]) -> None:
        if f.expires_on is None:
            return
        left = (f.expires_on - self.today).days
        code = "expired" if left <= 0 else "expires-soon"
        self.deadline(
            f,
            code,
            f.expires_on,
            "the exchange expires this key",
            f"rotate it before then: exvault rotate start {f.name}",
            out,
        )

    def exchange_rules(self, f: CredentialFacts, out: list[Finding]) -> None:
        profile = self.profile(f.exchange)
        # Every lifetime rule is about keys without an IP whitelist.
        if profile is None or not self.unrestricted[f.ips]:
            return
        for rule in profile.lifetime_rules:
            if rule.days is None:
                continue  # expiry_set: the recorded expiry date covers it
            code = exchange_rule_finding(rule.code)
            bind = f"bind the key to IPs at {profile.display_name} (exvault edit {f.name} --ip ...)"
            if rule.applies_when == "no_ip" or (
                rule.applies_when == "no_ip_trade" and "trade" in f.permissions
            ):
                self.deadline(
                    f,
                    code,
                    f.issued_on + timedelta(days=rule.days),
                    f"{profile.display_name} disables this key (no IP whitelist)",
                    bind + " or rotate it",
                    out,
                )
            elif rule.applies_when == "no_ip_inactive" and (
                "trade" in f.permissions or "withdraw" in f.permissions
            ):
                last = f.last_read.date() if f.last_read else f.issued_on
                idle = (self.today - max(last, f.issued_on)).days
                message = (
                    f"unused for {_days(idle)}; {profile.display_name} deletes unbound "
                    f"trade/withdraw keys after {_days(rule.days)} without use: {bind}"
                )
                if idle >= rule.days:
                    out.append(Finding("critical", code, f.name, message))
                elif idle >= max(rule.days - f.policy.warn_before_days, rule.days // 2):
                    out.append(Finding("warn", code, f.name, message))
            # no_ip_withdraw is covered by withdraw-without-ip; no_ip_password_change
            # needs the account's password history, which exvault cannot know.

    def scope(self, f: CredentialFacts, out: list[Finding]) -> None:
        unbound = self.unrestricted[f.ips]
        if "withdraw" in f.permissions:
            if unbound:
                out.append(
                    Finding(
                        "critical",
                        "withdraw-without-ip",
                        f.name,
                        "withdraw permission without an IP whitelist: remove withdraw at the "
                        "exchange or bind the key to IPs",
                    )
                )
            elif "withdraw-enabled" in f.policy.accepted:
                risk = f.policy.accepted["withdraw-enabled"]
                out.append(
                    Finding(
                        "ok",
                        "withdraw-enabled",
                        f.name,
                        f"withdraw permission accepted on {risk.accepted_at:%Y-%m-%d}: "
                        f"{risk.reason}",
                    )
                )
            else:
                out.append(
                    Finding(
                        "critical",
                        "withdraw-enabled",
                        f.name,
                        "withdraw permission enabled: remove it at the exchange, or accept the "
                        f"risk: exvault policy accept-risk {f.name} withdraw-enabled "
                        '--reason "..."',
                    )
                )
        trading = not _TRADING.isdisjoint(f.permissions)
        if trading and unbound and "withdraw" not in f.permissions:
            severity = "ok" if "trade-without-ip" in f.policy.accepted else "warn"
            out.append(
                Finding(
                    severity,
                    "trade-without-ip",
                    f.name,
                    "trading permission without an IP whitelist: bind the key to your bot's IPs",
                )
            )
        if not WILDCARDS.isdisjoint(f.ips):
            out.append(
                Finding(
                    "critical",
                    "ip-unrestricted",
                    f.name,
                    f"whitelist allows any address ({', '.join(sorted(WILDCARDS & set(f.ips)))}): "
                    "list your bot's IPs instead",
                )
            )

    def usage(self, f: CredentialFacts, out: list[Finding]) -> None:
        stale = f.policy.stale_days
        # Idleness counts from when the key came into this vault, not from its issue
        # date: a key imported today has had no chance to be read yet.
        if (self.today - max(f.issued_on, f.added_on)).days < stale:
            return
        idle = (self.now - f.last_read).days if f.last_read else None
        if idle is not None and idle < stale:
            return
        never = "never read" if idle is None else f"not read for {_days(idle)}"
        if f.grantees == 0:
            severity = "ok" if "stale" in f.policy.accepted else "warn"
            out.append(
                Finding(
                    severity,
                    "stale",
                    f.name,
                    f"granted to no client and {never}: if unused, delete it at the exchange "
                    f"and here (exvault remove {f.name})",
                )
            )
        else:
            # An accepted "stale" covered "unread" too before each had its own code.
            accepted = not {"unread", "stale"}.isdisjoint(f.policy.accepted)
            out.append(
                Finding(
                    "ok" if accepted else "warn",
                    "unread",
                    f.name,
                    f"granted to {f.grantees} client(s) but {never}: revoke candidate",
                )
            )

    def state(self, f: CredentialFacts, out: list[Finding]) -> None:
        if f.exposed_at is not None:
            out.append(
                Finding(
                    "critical",
                    "exposed",
                    f.name,
                    f"{f.exposed_reason or 'exposed'} since {f.exposed_at:%Y-%m-%d}: "
                    f"rotate it: exvault rotate start {f.name}",
                )
            )
        if f.pending_since is not None and self.now - f.pending_since > PENDING_TOO_LONG:
            out.append(
                Finding(
                    "warn",
                    "rotation-pending",
                    f.name,
                    f"a rotation has been pending since {f.pending_since:%Y-%m-%d %H:%M} UTC: "
                    f"exvault rotate promote {f.name} (or abort)",
                )
            )
        if f.previous_until is not None and f.previous_until <= self.now:
            out.append(
                Finding(
                    "warn",
                    "rotation-unfinished",
                    f.name,
                    f"the previous key's grace period ended {f.previous_until:%Y-%m-%d %H:%M} UTC: "
                    f"delete it at the exchange, then exvault rotate finish {f.name}",
                )
            )

    def probes(self, f: CredentialFacts, out: list[Finding]) -> None:
        if f.probes is not None:
            out += state_findings(f, f.probes, f.policy, self.now)

    def all(self, f: CredentialFacts) -> list[Finding]:
        """Every rule's findings about ``f``."""
        out: list[Finding] = []
        self.age(f, out)
        self.expiry(f, out)
        self.exchange_rules(f, out)
        self.scope(f, out)
        self.usage(f, out)
        self.state(f, out)
        self.probes(f, out)
        return out


def _duplicates(facts: Iterable[CredentialFacts]) -> Iterator[Finding]:
    by_fp: dict[bytes, list[CredentialFacts]] = defaultdict(list)
    for f in facts:
        if f.api_key_fingerprint:
            by_fp[f.api_key_fingerprint].append(f)
    for group in by_fp.values():
        if len(group) < 2:
            continue
        names = sorted(g.name for g in group)
        for f in group:
            others = ", ".join(n for n in names if n != f.name)
            severity = "ok" if "duplicate-api-key" in f.policy.accepted else "warn"
            yield Finding(
                severity,
                "duplicate-api-key",
                f.name,
                f"the same API key is stored as {others}: keep one, remove the others",
            )


ClientFacts = tuple[str, int | None, int | None, int]
"""(name, expires_at, revoked_at, number of grants) of one client."""


def _collect(
    inventory: Inventory, now: datetime
) -> tuple[list[CredentialFacts], list[ClientFacts], list[kdf_params.KdfParams], list[str]]:
    """Read everything the rules need in a few bulk queries; the last item returned
    lists the audit files that could not be read (their reads are not counted).

    The driver's plain rows, no ORM objects nor SQLAlchemy rows, and each distinct
    stored text parsed once: 100,000 credentials share a few dates, lists and policies.
    """
    store = inventory.store
    with store.read() as transaction:
        session = orm_session(transaction)
        clients = list(
            driver_rows(
                session,
                select(
                    ClientRecord.id,
                    ClientRecord.name,
                    ClientRecord.expires_at,
                    ClientRecord.revoked_at,
                ),
            )
        )
        active = {client_id for client_id, _name, _expires, revoked in clients if revoked is None}
        # Counted here rather than by two GROUP BY joins over every grant.
        grants: Counter[str] = Counter()
        grants_of_client: Counter[str] = Counter()
        for credential_id, client_id in driver_rows(
            session, select(GrantRecord.credential_id, GrantRecord.client_id)
        ):
            grants_of_client[client_id] += 1
            if client_id in active:
                grants[credential_id] += 1
        signers = entry_signers(transaction, inventory)
        verified = VerifiedReads.load(inventory.vault_id)
        rekeys = audit.rekey_history(transaction, inventory.vault_id, inventory.verify_public)
        plausible = plausible_entry(transaction, to_epoch(now))
        last_reads = _last_verified_reads(transaction, signers, verified, plausible, rekeys)
        # A shared vault's bots record their reads in its audit file(s), checked the
        # same way; the owner never writes there, so only clients' keys count.
        client_signers = {k: v for k, v in signers.items() if k != audit.ROOT_SIGNER}
        unreadable: list[str] = []
        for path in inventory.audit_files():
            try:
                with audit_file.opened(path) as store, store.read() as file_transaction:
                    found = _last_verified_reads(
                        file_transaction, client_signers, verified, plausible
                    )
            except VaultError as exc:
                # A member of the bots' group may delete or replace the file: that must
                # not silence every other finding of the owner's cron check.
                unreadable.append(str(exc))
                continue
            for name, at in found.items():
                if at > last_reads.get(name, at - 1):
                    last_reads[name] = at
        probes = latest_states(
            transaction, inventory.vault_id, signers, verified, plausible, rekeys
        )
        verified.save()
        rows = driver_rows(
            session,
            select(
                CredentialRecord.id,
                CredentialRecord.name,
                CredentialRecord.pending_since,
                CredentialRecord.previous_until,
                CredentialRecord.policy,
                CredentialRecord.exposed_at,
                CredentialRecord.exposed_reason,
                CredentialRecord.created_at,
                VersionRecord.exchange,
                VersionRecord.permissions,
                VersionRecord.ips,
                VersionRecord.issued_on,
                VersionRecord.expires_on,
                VersionRecord.api_key_fingerprint,
            ).join(
                VersionRecord,
                (VersionRecord.credential_id == CredentialRecord.id)
                & (VersionRecord.version == CredentialRecord.current_version),
            ),
        )
        policies = ParsedOnce(Policy.from_json)
        dates = ParsedOnce(stored_date)
        days = ParsedOnce(lambda seconds: from_epoch(seconds).date())
        lists = ParsedOnce(split_list)
        # Positional, in the order of CredentialFacts' fields: a third of the cost of
        # keywords, 100,000 times.
        facts = [
            CredentialFacts(
                name,
                exchange,
                lists[permissions],
                lists[ips],
                dates[issued_on],
                dates[expires_on] if expires_on is not None else None,
                days[created_at],
                policies[policy],
                grants[cid],
                from_epoch(last) if (last := last_reads.get(name)) else None,
                from_epoch(pending_since) if pending_since else None,
                from_epoch(previous_until) if previous_until else None,
                from_epoch(exposed_at) if exposed_at else None,
                exposed_reason,
                fingerprint,
                probes.get(name),
            )
            for (
                cid,
                name,
                pending_since,
                previous_until,
                policy,
                exposed_at,
                exposed_reason,
                created_at,
                exchange,
                permissions,
                ips,
                issued_on,
                expires_on,
                fingerprint,
            ) in rows
        ]
        kdfs = keyslots.passphrase_kdf_params(transaction)
    client_facts = [
        (name, expires, revoked, grants_of_client[client_id])
        for client_id, name, expires, revoked in clients
    ]
    return facts, client_facts, kdfs, unreadable


_READ_ENTRY_COLUMNS = tuple(getattr(AuditRecord, name) for name in AUDIT_COLUMNS)
# A credential's reads that count: signed, successful (unsigned ones prove nothing).
_SIGNED_READS = (
    AuditRecord.action == "read",
    AuditRecord.outcome == "ok",
    AuditRecord.signature.is_not(None),
)


def _last_verified_reads(
    transaction: Transaction,
    signers: dict[str, tuple[str, bytes]],
    verified: VerifiedReads,
    plausible: Callable[[AuditRow], bool],
    rekeys: list[audit.Rekey] | None = None,
) -> dict[str, int]:
    """The time of each credential's newest ``read ok`` entry in the audit log of
    ``transaction`` that is ``plausible`` (:func:`vault.ops.audit_signers.plausible_entry`)
    and whose signature verifies (:meth:`VerifiedReads.signed`: an entry verified by an
    earlier run is not verified again) with one of ``signers``' keys.

    A non-NULL signature proves nothing by itself: anyone able to write the database
    could make a dead key look in use. Only the newest read of each credential is
    verified (one Ed25519 check per credential); when it fails, that credential's
    older reads are tried, newest first.
    """
    newest = (
        select(AuditRecord.credential, func.max(AuditRecord.at).label("at"))
        .where(*_SIGNED_READS)
        .group_by(AuditRecord.credential)
        .subquery()
    )
    found: dict[str, int] = {}
    doubtful: set[str] = set()
    session = orm_session(transaction)
    with transaction.tolerant_text():
        for values in driver_rows(
            session,
            select(*_READ_ENTRY_COLUMNS)
            .join(
                newest,
                (AuditRecord.credential == newest.c.credential) & (AuditRecord.at == newest.c.at),
            )
            .where(*_SIGNED_READS),
        ):
            entry = AuditRow(*values)
            name = entry.credential
            if name is None or name in found:
                continue
            if plausible(entry) and verified.signed(entry, signers, rekeys or ()):
                found[name] = entry.at
            else:
                doubtful.add(name)
        # Rare (a forged entry, a damaged row): that credential's reads, newest first,
        # through the index on (action, credential, at).
        for name in sorted(doubtful - found.keys()):
            older = (
                select(*_READ_ENTRY_COLUMNS)
                .where(*_SIGNED_READS, AuditRecord.credential == name)
                .order_by(AuditRecord.at.desc())
            )
            for values in driver_rows(session, older):
                entry = AuditRow(*values)
                if plausible(entry) and verified.signed(entry, signers, rekeys or ()):
                    found[name] = entry.at
                    break
    return found


def _vault_findings(
    clients: list[ClientFacts],
    kdfs: list[kdf_params.KdfParams],
    now: datetime,
) -> Iterator[Finding]:
    soon = to_epoch(now + timedelta(days=DEFAULT_WARN_BEFORE_DAYS))
    for name, expires, revoked, granted in clients:
        if revoked is not None or expires is None:
            continue
        when = from_epoch(expires)
        if expires <= to_epoch(now):
            if granted:
                yield Finding(
                    "warn",
                    "client-expired",
                    None,
                    f'client "{name}" expired on {when:%Y-%m-%d} and still holds grants: '
                    f"create a new client for the bot, then exvault client revoke {name}",
                    client=name,
                )
        elif expires <= soon:
            yield Finding(
                "warn",
                "client-expiring",
                None,
                f'client "{name}" token expires on {when:%Y-%m-%d %H:%M} UTC: create a new '
                "client and give the bot its token before then",
                client=name,
            )
    for params in kdfs:
        if not params.at_least(kdf_params.KDF_FLOOR):
            yield Finding(
                "critical",
                "kdf-weak",
                None,
                f"the passphrase keyslot uses {params} (as stored, unauthenticated), below "
                f"RFC 9106's minimum ({kdf_params.KDF_FLOOR}): exvault passwd --recalibrate",
            )
        elif params.memory_kib < kdf_params.KDF_DEFAULT_MEMORY_KIB:
            yield Finding(
                "warn",
                "kdf-below-policy",
                None,
                f"the passphrase keyslot uses {params} (as stored, unauthenticated), below "
                "the current default of "
                f"{kdf_params.KDF_DEFAULT_MEMORY_KIB // 1024} MiB: "
                "exvault passwd --recalibrate",
            )


def _last_report_at(state: ObservationState | None) -> datetime | None:
    """When the last report in ``state`` was observed: the last successful probe."""
    if state is None or state.last_report is None:
        return None
    return state.last_report.outcome.observed_at


def check(inventory: Inventory, now: datetime) -> Report:
    """Run every rule over the vault as of ``now`` (a timezone-aware UTC datetime)."""
    with collector_paused():
        facts, clients, kdfs, unreadable = _collect(inventory, now)
        rules = _Rules(now)
        findings: list[Finding] = []
        for f in facts:
            findings += rules.all(f)
        findings += _duplicates(facts)
        findings += _vault_findings(clients, kdfs, now)
        findings += (
            Finding(
                "warn",
                "audit-file-unreadable",
                None,
                f"{problem}: the reads recorded there are not counted",
            )
            for problem in unreadable
        )
        findings.sort(key=lambda x: (-RANK[x.severity], x.credential or "", x.code))
        today = now.date()
        ages = tuple(
            CredentialAge(
                f.name,
                (today - f.issued_on).days,
                None if f.expires_on is None else (f.expires_on - today).days,
                _last_report_at(f.probes),
            )
            for f in sorted(facts, key=lambda f: f.name)
        )
    return Report(generated_at=now, credentials=len(facts), findings=tuple(findings), ages=ages)
