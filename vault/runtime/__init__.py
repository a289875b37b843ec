"""The bot's side: loading a granted secret with a client token, and running programs.

This is the path a trading bot's process imports for one secret, so it is kept lean:
on SQLite it reads through the standard library's :mod:`sqlite3` and never imports
SQLAlchemy or argon2 (``tests/db/test_client_sql.py`` guards it).
"""
