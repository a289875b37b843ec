"""exvault's benchmarks, side by side with the tools people use today.

Run ``python -m benchmarks`` (``--quick`` for tiny sizes, ``--only NAME``, ``--scale N``,
``--repeat N``); it prints one markdown table: figure, exvault value, peer value, ratio,
target, met?. Peers (pykeepass, ``pass``, ``keepassxc-cli``, eth-keyfile, ``age``) are
installed by ``bash benchmarks/install-peers.sh``; a peer that is missing is reported
as "skipped (not installed)", never faked. docs/benchmarks.md describes the method.

One module per figure:

====================  =====================================================
``warm_read``         1. warm ``ClientVault.get`` vs pykeepass, in-process
``cold_start``        2. a new process to key+secret vs pass, keepassxc-cli,
                      a hummingbot-style keystore pair, age
``admin_unlock``      3. Argon2id unlock time and memory; attacker cost per guess
``scale``             4. check, list, load one at 100,000 credentials; size, RSS
``bulk_insert``       5. 10,000 ``admin.add`` in one unlock
``cli_help``          6. ``exvault --help`` wall time
====================  =====================================================
"""

from __future__ import annotations

__all__ = ["FIGURES"]

FIGURES = ("warm-read", "cold-start", "admin-unlock", "scale", "bulk-insert", "cli-help")
"""Figure names in table order (``--only`` also takes their numbers, 1-6)."""
