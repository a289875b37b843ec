"""Stages: which version of a credential its head labels current, pending or previous.

A credential's head row holds three version numbers, one per stage, and for each the
digest of that version's signed message. This module is the one place that turns a
stage name into those columns and back; the owner's reads, a client's reads, the
bot's SQL and ``exvault verify`` all resolve stages through it.
"""

from __future__ import annotations

from typing import Any

from vault.errors import InvalidInput, NotFound, quoted

STAGES = ("current", "pending", "previous")
"""The stage labels a head gives, in the order of its columns."""


def check_stage(stage: str) -> str:
    """``stage`` itself, when it is one of :data:`STAGES`.

    :raises InvalidInput: for any other text.
    """
    if stage not in STAGES:
        raise InvalidInput(f"unknown stage {quoted(stage)} (use current, pending or previous)")
    return stage


def version_column(stage: str) -> str:
    """The head column that holds ``stage``'s version number (``current_version``)."""
    assert stage in STAGES
    return f"{stage}_version"


def digest_column(stage: str) -> str:
    """The head column that holds the digest of ``stage``'s version (``current_digest``)."""
    assert stage in STAGES
    return f"{stage}_digest"


def number_at(head: Any, stage: str) -> int | None:
    """The version number ``head`` labels ``stage``, or None when that stage is empty."""
    number: int | None = getattr(head, version_column(stage))
    return number


def digest_at(head: Any, stage: str) -> bytes | None:
    """The digest ``head`` holds for ``stage``'s version, or None when it is empty."""
    digest: bytes | None = getattr(head, digest_column(stage))
    return digest


def version_at(head: Any, stage: str) -> int:
    """The version number ``head`` (with ``name``) labels ``stage``.

    :raises InvalidInput: for an unknown stage name.
    :raises NotFound: when that stage is empty.
    """
    number = number_at(head, check_stage(stage))
    if number is None:
        raise NotFound(f'credential "{head.name}" has no {stage} version')
    return number


def stages_of(head: Any, version: int) -> tuple[str, ...]:
    """The stage labels ``head`` gives ``version``, in :data:`STAGES` order."""
    return tuple(stage for stage in STAGES if number_at(head, stage) == version)
