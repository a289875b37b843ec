"""Storage: the tables, the statements over them, and the keyless views of a vault.

SQLite files and PostgreSQL databases through SQLAlchemy (``store``), schema
migrations (``migrations``), the bot's direct :mod:`sqlite3` read path
(``client_sql``, ``rows``), the audit log as stored (``audit``, ``access_history``,
``audit_file``), keyslots, and the keyless inventory that ``list`` and ``check`` read.
"""
