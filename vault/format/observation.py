"""One probe observation as stored: its canonical body, what its signature covers and
the digest its audit entry carries (docs/format.md).

Pure functions, no database: the owner's writer, a monitor client's store and the
keyless ``check`` all build and verify observations here.

The body is the :class:`~vault.exchanges.key_report.ProbeOutcome` as JSON with sorted
keys and no spaces, times as whole epoch seconds. The signature covers the body's
exact text, so a second spelling of the same outcome would need a signature of its
own; a reader parses only a body whose signature verified, strictly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vault.errors import IntegrityError
from vault.format import encoding, identities
from vault.format.model import from_epoch, to_epoch
from vault.format.schema import ObservationRow

if TYPE_CHECKING:
    from vault.exchanges.key_report import ProbeOutcome

REPORT = "report"
"""The ``kind`` of an observation holding a :class:`KeyReport`; otherwise the kind is
the error's (:data:`~vault.exchanges.key_report.ERROR_KINDS`)."""

AUDIT_ACTION = "probe"
"""The action of the audit entry that chains an observation into the log."""

MAX_BODY = 16 * 1024
# Far above any real outcome (a few hundred bytes; a whitelist of a few dozen IPs):
# a reader refuses a larger body before parsing it.


def _epoch(moment: Any) -> int | None:
    return None if moment is None else to_epoch(moment)


def kind_of(outcome: ProbeOutcome) -> str:
    """The ``kind`` column of ``outcome``: ``report`` or its error's kind."""
    if outcome.report is not None:
        return REPORT
    assert outcome.error is not None
    return outcome.error.kind


def encode_body(outcome: ProbeOutcome) -> str:
    """The canonical body of ``outcome`` (see the module's docstring)."""
    report = outcome.report
    error = outcome.error
    data: dict[str, Any] = {
        "observed_at": to_epoch(outcome.observed_at),
        "skew_ms": outcome.skew_ms,
        "receive_window_ms": outcome.receive_window_ms,
        "report": None
        if report is None
        else {
            "permissions": None if report.permissions is None else list(report.permissions),
            "ip_restricted": report.ip_restricted,
            "ips": None if report.ips is None else list(report.ips),
            "expires_at": _epoch(report.expires_at),
            "created_at": _epoch(report.created_at),
        },
        "error": None
        if error is None
        else {
            "kind": error.kind,
            "reason": error.reason,
            "code": error.code,
            "message": error.message,
        },
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _text_list(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError
    return tuple(value)


def _optional(value: object, kind: type) -> Any:
    if value is not None and (type(value) is not kind):
        raise TypeError
    return value


def decode_body(body: str) -> ProbeOutcome:
    """The outcome of a stored body, whose signature verified.

    :raises IntegrityError: for a body that is not one :func:`encode_body` writes.
    """
    # Imported here, not above: importing vault.exchanges loads every exchange profile,
    # which a monitor client's process that only records (encode_body) never needs.
    from vault.exchanges.key_report import ERROR_KINDS, KeyReport, ProbeError, ProbeOutcome

    try:
        if len(body) > MAX_BODY:
            raise ValueError
        data = json.loads(body)
        report = data["report"]
        error = data["error"]
        if (report is None) == (error is None):
            raise ValueError
        window = _optional(data["receive_window_ms"], int)
        outcome = ProbeOutcome(
            observed_at=from_epoch(_optional(data["observed_at"], int)),
            report=None
            if report is None
            else KeyReport(
                permissions=_text_list(report["permissions"]),
                ip_restricted=_optional(report["ip_restricted"], bool),
                ips=_text_list(report["ips"]),
                expires_at=None
                if report["expires_at"] is None
                else from_epoch(_optional(report["expires_at"], int)),
                created_at=None
                if report["created_at"] is None
                else from_epoch(_optional(report["created_at"], int)),
            ),
            error=None
            if error is None
            else ProbeError(
                kind=_optional(error["kind"], str),
                reason=_optional(error["reason"], str),
                code=_optional(error["code"], str),
                message=_optional(error["message"], str),
            ),
            skew_ms=_optional(data["skew_ms"], int),
            receive_window_ms=window,
        )
        if outcome.error is not None and outcome.error.kind not in ERROR_KINDS:
            raise ValueError
    except (ValueError, TypeError, KeyError, OverflowError, OSError):
        raise IntegrityError() from None
    return outcome


def message(vault_id: bytes, row: ObservationRow) -> bytes:
    """What an observation's signature covers: the vault, the credential (id, name,
    version), who signs, when, the kind and the body."""
    return encoding.signed_message(
        "probe_observation",
        vault_id,
        row.credential_id,
        row.name,
        row.version,
        row.signer,
        row.observed_at,
        row.kind,
        row.body,
    )


def digest(vault_id: bytes, row: ObservationRow) -> bytes:
    """The digest the observation's ``probe`` audit entry carries (of its signed
    message: two observations share it only if they are the same observation)."""
    return encoding.digest(b"exvault-observation", message(vault_id, row))


def audit_detail(vault_id: bytes, row: ObservationRow) -> str:
    """The detail of the ``probe`` audit entry of ``row``: its kind and digest."""
    return f"{row.kind} {digest(vault_id, row).hex()}"


def digest_of_detail(detail: str) -> bytes | None:
    """The digest a ``probe`` entry's detail names (None when it names none)."""
    _kind, _, hexed = detail.partition(" ")
    try:
        found = bytes.fromhex(hexed)
    except ValueError:
        return None
    return found if len(found) == 32 else None


def signed_row(
    vault_id: bytes,
    credential_id: str,
    name: str,
    version: int,
    outcome: ProbeOutcome,
    signer: str,
    sign: Callable[[bytes], bytes],
) -> ObservationRow:
    """The observation of ``outcome`` for one version of a credential, signed by
    ``signer`` (``root`` or a client id) with ``sign``."""
    unsigned = ObservationRow(
        id=0,  # numbered by the database
        credential_id=credential_id,
        version=version,
        name=name,
        observed_at=to_epoch(outcome.observed_at),
        kind=kind_of(outcome),
        body=encode_body(outcome),
        signer=signer,
        signature=b"",
    )
    return unsigned._replace(signature=sign(message(vault_id, unsigned)))


def verify(verify_public: bytes, vault_id: bytes, row: ObservationRow) -> ProbeOutcome:
    """The outcome of ``row`` once its signature verifies with ``verify_public`` (the
    root key or the signing client's) and its columns agree with its body.

    :raises IntegrityError: otherwise.
    """
    if not isinstance(row.signature, bytes) or not isinstance(row.body, str):
        raise IntegrityError()
    try:
        identities.verify_signature(verify_public, message(vault_id, row), row.signature)
    except (TypeError, ValueError):
        raise IntegrityError() from None
    outcome = decode_body(row.body)
    if to_epoch(outcome.observed_at) != row.observed_at or kind_of(outcome) != row.kind:
        raise IntegrityError()
    return outcome


__all__ = [
    "AUDIT_ACTION",
    "MAX_BODY",
    "REPORT",
    "audit_detail",
    "decode_body",
    "digest",
    "digest_of_detail",
    "encode_body",
    "kind_of",
    "message",
    "signed_row",
    "verify",
]
