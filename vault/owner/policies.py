"""A credential's rotation policy, as the owner changes it over a
:class:`~vault.owner.writer.Writer`: limits and accepted risks, signed with the head."""

from __future__ import annotations

from collections.abc import Callable

from vault.errors import InvalidInput, quoted
from vault.exchanges.profiles import all_profiles
from vault.format.model import to_epoch, utc_now
from vault.format.policy import (
    EXCHANGE_RULE_REASON,
    Policy,
    check_acceptable,
    exchange_rule_finding,
)
from vault.owner.writer import Writer


def _update(writer: Writer, name: str, change: Callable[[Policy], Policy], detail: str) -> Policy:
    """Apply ``change`` to the policy of ``name``, re-sign its head and audit ``detail``.

    :raises NotFound: when there is no such credential.
    :raises InvalidInput: as ``change`` raises it.
    """
    with writer.write() as transaction:
        head = writer.head(transaction, name, for_update=True)
        policy = change(Policy.from_json(head.policy))
        head.policy = policy.to_json()
        head.updated_at = to_epoch(utc_now())
        writer.sign_head(transaction, head)
        writer.audit(transaction, "policy", name, detail=detail)
    return policy


def set_policy(
    writer: Writer,
    name: str,
    *,
    max_age_days: int | None = None,
    warn_before_days: int | None = None,
    stale_days: int | None = None,
    grace_hours: int | None = None,
    probe_stale_days: int | None = None,
) -> Policy:
    """Change a credential's rotation limits (the rest stays as it is).

    :raises InvalidInput: for limits out of range.
    :raises NotFound: when there is no such credential.
    """
    return _update(
        writer,
        name,
        lambda p: p.with_limits(
            max_age_days=max_age_days,
            warn_before_days=warn_before_days,
            stale_days=stale_days,
            grace_hours=grace_hours,
            probe_stale_days=probe_stale_days,
        ),
        "limits changed",
    )


def link_rotation(
    writer: Writer,
    name: str,
    *,
    rotate_via: str | object | None = ...,
    sub_account: str | object | None = ...,
    auto: bool | None = None,
    on_promote: str | object | None = ...,
) -> Policy:
    """Link ``name`` to the master credential that rotates its key at the exchange
    (``rotate_via``; None unlinks), and set the sub-account, ``auto`` and the
    ``on_promote`` command (``...``: unchanged). One transaction, audited.

    :raises NotFound: when ``name`` or the master does not exist.
    :raises InvalidInput: for a master that is ``name`` itself, of another exchange, or
        itself linked to a master; or a value :meth:`Policy.with_link` refuses.
    """
    with writer.write() as transaction:
        head = writer.head(transaction, name, for_update=True)
        policy = Policy.from_json(head.policy).with_link(
            rotate_via=rotate_via, sub_account=sub_account, auto=auto, on_promote=on_promote
        )
        if policy.rotate_via is not None and rotate_via is not ...:
            if policy.rotate_via == name:
                raise InvalidInput(f"{quoted(name)} cannot rotate itself: name its master key")
            master = writer.head(transaction, policy.rotate_via)
            master_meta, _ = writer.open_version(transaction, master, "current")
            meta, _ = writer.open_version(transaction, head, "current")
            if master_meta.exchange != meta.exchange:
                raise InvalidInput(
                    f"the master {quoted(policy.rotate_via)} is a {master_meta.exchange} key "
                    f"and {quoted(name)} a {meta.exchange} one"
                )
            if Policy.from_json(master.policy).rotate_via is not None:
                raise InvalidInput(
                    f"the master {quoted(policy.rotate_via)} is itself rotated through a "
                    "master: link to the master account's key"
                )
        head.policy = policy.to_json()
        head.updated_at = to_epoch(utc_now())
        writer.sign_head(transaction, head)
        detail = (
            f"rotate via {policy.rotate_via}" + (" (auto)" if policy.auto else "")
            if policy.rotate_via
            else "not rotated at the exchange"
        )
        writer.audit(transaction, "policy", name, detail=detail)
    return policy


def acceptable_code(code: str) -> str:
    """``code`` itself, when it names a finding of ``exvault check`` the owner may
    accept; the one test ``policy accept-risk`` and ``clear-risk`` run before asking
    for the passphrase.

    :raises InvalidInput: saying why the finding cannot be accepted (a finding named
        after an exchange's lifetime rule included), or listing the acceptable codes
        for one check never prints.
    """
    for profile in all_profiles():
        for rule in profile.lifetime_rules:
            if exchange_rule_finding(rule.code) == code:
                raise InvalidInput(f"cannot accept {quoted(code)}: {EXCHANGE_RULE_REASON}")
    return check_acceptable(code)


def accept_risk(writer: Writer, name: str, risk: str, reason: str) -> Policy:
    """Record that the owner accepts the finding ``risk`` (a code ``exvault check``
    prints, e.g. ``withdraw-enabled``) for this credential.

    :raises InvalidInput: for a finding that cannot be accepted (saying why), a code
        check never prints, or an empty reason; nothing is written.
    :raises NotFound: when there is no such credential.
    """
    acceptable_code(risk)
    now = utc_now()
    return _update(
        writer, name, lambda p: p.accept(risk, reason, now), f"accepted risk {risk}: {reason}"
    )


def clear_risk(writer: Writer, name: str, risk: str) -> Policy:
    """Stop accepting the finding ``risk``.

    :raises InvalidInput: for a finding that cannot be accepted in the first place.
    :raises NotFound: when there is no such credential.
    """
    acceptable_code(risk)
    return _update(writer, name, lambda p: p.clear(risk), f"cleared risk {risk}")


def policy(writer: Writer, name: str) -> Policy:
    """The credential's policy (its head's signature verified).

    :raises NotFound: when there is no such credential.
    """
    with writer.read() as transaction:
        return Policy.from_json(writer.head(transaction, name).policy)
