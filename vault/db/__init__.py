"""Storage: the tables, the statements over them, and the keyless views of a vault.

SQLite files and PostgreSQL databases through SQLAlchemy: the tables (``tables``,
``postgres`` for what only PostgreSQL has), the engine and transactions (``store``,
``url``, ``sqlite_file``), the schema's version, migrations and comparison
(``schema_version``, ``migrations``, ``schema_check``); the statements and their two
executors (``queries``) and the bot's direct :mod:`sqlite3` read path
(``client_sql``); the audit log as stored (``audit``, ``access_history``,
``audit_file``), keyslots, and the keyless inventory that ``list`` and ``check`` read.
"""
