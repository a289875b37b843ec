"""The owner's operations: everything that needs the passphrase.

``writer.Writer`` is the owner's unit of work (store, root identity, batch, audit
head) and the one way the owner writes; ``credentials``, ``clients``, ``passphrase``,
``rekey``, ``policies`` and ``rotation`` are operations over it; ``admin.AdminVault``
is the unlocked vault, a facade over them (add, edit, grant, passwd, rekey);
``layout`` switches between the single-user and shared SQLite layouts.
"""
