"""Reading credentials for ``run`` and ``render``: as the client whose token the
environment holds, else as the owner.

Apart from :mod:`vault.cli.unlock`, which every owner command imports: the client's
read path (its store, its token) is loaded only by the two commands that use it.
"""

from __future__ import annotations

from collections.abc import Sequence

from vault.runtime.client import ClientVault
from vault.runtime.credential import Credential
from vault.runtime.token import token_in_environment

from .unlock import open_admin


def read_credentials(
    vault_location: str | None,
    passphrase_file: str | None,
    names: Sequence[str],
    stage: str = "current",
) -> list[Credential]:
    """The credentials ``names`` at ``stage``: read as the client whose token the
    environment holds (EXVAULT_TOKEN_FILE, EXVAULT_TOKEN, systemd's credentials
    directory), else, or when a passphrase file is named, as the owner. Each read is
    audited.

    :raises InvalidToken: for a token that is there but malformed.
    :raises NotFound, AccessDenied, IntegrityError: as the reads raise them.
    """
    token = token_in_environment() if passphrase_file is None else None
    if token is not None:
        with ClientVault.open(vault_location, token=token) as handle:
            return [handle.get(name, stage) for name in names]
    with open_admin(vault_location, passphrase_file) as admin:
        return [admin.get(name, stage) for name in names]
