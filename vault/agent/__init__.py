"""The unlock agent: a per-user process that keeps unlocked vaults' root keys for a while.

A layer between :mod:`vault.owner` (which uses it) and :mod:`vault.runtime`:
:mod:`~vault.agent.protocol` (the wire format), :mod:`~vault.agent.server` (the agent
process) and :mod:`~vault.agent.client` (finding, starting and asking it).
"""
