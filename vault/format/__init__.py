"""The vault's format: what is stored and how it is sealed, with no I/O.

The tables and their plain rows (``schema``); the canonical encoding (``encoding``); the
primitives, one module per concern: AES-256-GCM (``aead``), Argon2id's parameters
(``kdf_params``) and derivation (``passphrase_kdf``, the one module that loads argon2),
recovery keys (``recovery``), the root identity, client keys and signatures
(``identities``), wrapping a data key for a recipient (``keywrap``); the signed records
and how a version is opened (``records``), credential metadata (``model``), audit
entries (``audit_entry``), rotation policy (``policy``) and client scopes (``access``).
Everything here is pure: it takes bytes and rows and returns bytes and values, so the
storage layer and the bot's runtime share one definition.
"""
