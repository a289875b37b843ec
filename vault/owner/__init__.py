"""The owner's operations: everything that needs the passphrase.

``admin.AdminVault`` is the unlocked vault (add, edit, grant, passwd, rekey),
``rotation`` the staged rotation of a credential's versions, ``layout`` the switch
between the single-user and shared SQLite layouts.
"""
