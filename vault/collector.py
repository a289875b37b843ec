"""The cyclic garbage collector, held off where its passes find nothing.

A pass walks every object made so far. Where a command makes many objects and no
reference cycles (a bulk read's rows, a command's imports), those passes are pure
cost, and reference counting still frees everything as before.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector off for the block, then put it back as it was.

    Used by the bulk reads (``list``, ``check``: making 100,000 rows' tuples triggers
    collections that take a fifth of those commands' time) and by the command group
    while it imports a command's modules (tens of thousands of objects: about a tenth
    of the import's time).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
