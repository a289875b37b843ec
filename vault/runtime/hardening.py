"""Process hardening for programs that hold decrypted secrets (the CLI calls it)."""

from __future__ import annotations

import sys

PR_SET_DUMPABLE = 4


def disable_core_dumps() -> None:
    """Stop this process from writing core dumps or being ptrace-attached by peers.

    ``RLIMIT_CORE = 0`` stops core files; on Linux ``prctl(PR_SET_DUMPABLE, 0)`` also
    makes /proc/PID/mem and ptrace off-limits to other processes of the same user
    (root excepted). Failures are ignored: hardening must not stop the tool working
    on a platform without these calls.
    """
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        except (OSError, AttributeError):
            pass


def is_dumpable() -> bool | None:
    """Linux: the dumpable flag of this process (None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(3, 0, 0, 0, 0))  # PR_GET_DUMPABLE
