"""Operating a vault: checks from cron, verification, doctor, backups, notifications.

``checks`` turns keyless facts into findings with pure rules and an injected clock;
``verification`` proves every signature and wrap with the passphrase; ``doctor``
looks at the installation; ``backup`` copies and restores; ``notify`` sends findings.
"""
