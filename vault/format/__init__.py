"""The vault's format: what is stored and how it is sealed, with no I/O.

The canonical encoding (``encoding``); the primitives, one module per concern:
AES-256-GCM (``aead``), Argon2id (``passphrase_kdf``), recovery keys (``recovery``), the
root identity, client keys and signatures (``identities``), wrapping a data key for a
recipient (``keywrap``); the signed records and how a version is opened (``records``),
credential metadata (``model``), audit entries (``audit_entry``), rotation policy
(``policy``) and client scopes (``access``). Everything here is pure: it takes bytes and
rows and returns bytes and values, so the storage layer and the bot's runtime share one
definition.
"""
