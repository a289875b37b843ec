"""What a probe's answer means: findings from comparing it with the declared metadata.

Pure rules over a declared key (its name, permissions and IP whitelist as stored in
the vault), one :class:`~vault.exchanges.key_report.ProbeOutcome` and an injected
clock. ``exvault probe`` applies them to the answer it just got; ``exvault check``
applies them to each credential's latest stored observation (:mod:`vault.ops.observations`).
No rule reads the clock, the database or the network.

Every finding has a stable code (docs/rotation.md): ``exchange-permission-wider``,
``exchange-permission-narrower``, ``exchange-ip-unrestricted``, ``exchange-ip-mismatch``,
``exchange-expires-soon``, ``exchange-rejected-key``, ``clock-skew`` and ``probe-stale``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from vault.exchanges.key_report import ProbeOutcome
from vault.format.policy import Policy
from vault.ops.checks import Finding


class DeclaredKey(Protocol):
    """What the rules read of a credential as the vault declares it
    (:class:`vault.format.model.CredentialMetadata` and ``Credential`` both fit)."""

    @property
    def name(self) -> str: ...

    @property
    def permissions(self) -> Sequence[str]: ...

    @property
    def ips(self) -> Sequence[str]: ...


def findings(
    declared: DeclaredKey,
    outcome: ProbeOutcome | None,
    policy: Policy,
    now: datetime,
    *,
    last_success: datetime | None = None,
) -> list[Finding]:
    """The findings about ``declared`` from ``outcome`` (None: never probed), as of
    ``now`` (timezone-aware UTC).

    ``last_success`` is when the exchange last answered with a report on this key
    (``outcome.observed_at`` counts too when ``outcome.ok``); ``probe-stale`` fires when
    it is older than ``policy.probe_stale_days``. An ``unreachable``, ``malformed`` or
    ``unsupported`` outcome yields no finding about the key.
    """
    raise NotImplementedError


__all__ = ["DeclaredKey", "findings"]
