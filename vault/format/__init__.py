"""The vault's format: what is stored and how it is sealed, with no I/O.

The tables and their plain rows (``schema``), canonical encodings, the cryptographic
primitives and key wrapping (``crypto``), the signed records and how a version is
opened (``records``), credential metadata (``model``), audit entries
(``audit_entry``), rotation policy (``policy``) and client scopes (``access``).
Everything here is pure: it takes bytes and rows and returns bytes and values, so the
storage layer and the bot's runtime share one definition.
"""
