"""The :class:`Secret` type: a string that does not show itself by accident."""

from __future__ import annotations

# hmac.compare_digest itself, from its C module: see vault.format.aead.constant_time_equal.
from _operator import _compare_digest
from typing import NoReturn

MASK = "********"


class Secret:
    """A secret string: masked ``repr``/``str``/``format``, not picklable, ``reveal()`` to read.

    Python cannot wipe an immutable ``str`` from memory (SECURITY.md says so); what
    this type prevents is the everyday leak: a secret in a log line, a traceback's
    locals, a ``print(cred)``, or a pickle sent to another process.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        """The secret value itself."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        return format(MASK, format_spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # Constant time: comparing secrets must not leak where they differ.
        return _compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]  # equal secrets must not be set/dict keys

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("Secret values cannot be pickled")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self
