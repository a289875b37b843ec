"""The version of exvault: one source, read by ``pyproject.toml`` (without importing it)
and printed by ``exvault --version``; a module of its own so that any layer can name it
without importing the package's API (:mod:`vault`)."""

__version__ = "0.1.0"
