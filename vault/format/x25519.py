"""X25519 keys made from raw bytes or fresh, without loading cryptography's OpenSSL
backend module.

cryptography's ``X25519PrivateKey.generate``, ``from_private_bytes`` and
``X25519PublicKey.from_public_bytes`` each import ``cryptography.hazmat.backends.openssl
.backend`` (with its RSA, EC and padding modules) only to ask whether X25519 is
supported, which it is unless OpenSSL runs in FIPS mode; then they call the Rust
binding that does the work. That import costs a new process 6-15 ms, paid by every
wrap of a data key (an owner's ``grant`` and ``edit``) and every unwrap of a bot's
read, where the whole command takes about 100 ms (docs/benchmarks.md). Ed25519's
constructors no longer make that check.

So this module calls the same Rust functions the public constructors end in, and the
keys are the same objects (instances of the public classes, through their ABC
registration). The binding module is private to cryptography: when it is missing or
has moved (another release), or when OpenSSL is in FIPS mode, the public constructors
are used, with their check and their ``UnsupportedAlgorithm``. Nothing else depends on
which path is taken; ``tests/format/test_x25519.py`` holds both to the same results.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from vault.errors import UnsupportedFormat

_K = TypeVar("_K", X25519PrivateKey, X25519PublicKey)


def native_binding(rust_openssl: object) -> ModuleType | None:
    """The Rust binding of X25519 in cryptography's ``rust_openssl`` module, when it is
    there and OpenSSL is not in FIPS mode; else None (the public constructors decide)."""
    try:
        fips = rust_openssl.is_fips_enabled()  # type: ignore[attr-defined]
        binding = rust_openssl.x25519  # type: ignore[attr-defined]
        for name in ("generate_key", "from_private_bytes", "from_public_bytes"):
            getattr(binding, name)
    except AttributeError:
        return None
    return None if fips or not isinstance(binding, ModuleType) else binding


def _load_binding() -> ModuleType | None:
    try:
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl
    except ImportError:
        return None
    return native_binding(rust_openssl)


_NATIVE = _load_binding()


NO_X25519 = "this OpenSSL offers no X25519 (is it in FIPS mode?), and every vault's keys are X25519"


def _made(make: Callable[..., _K], *raw: bytes) -> _K:
    # The public constructors refuse X25519 in FIPS mode with UnsupportedAlgorithm: one
    # line to the user, as any other VaultError, rather than an internal error.
    try:
        return make(*raw)
    except UnsupportedAlgorithm:
        raise UnsupportedFormat(NO_X25519) from None


def generate() -> X25519PrivateKey:
    """A fresh X25519 private key.

    :raises UnsupportedFormat: OpenSSL offers no X25519 (FIPS mode).
    """
    make: Callable[[], X25519PrivateKey] = (
        X25519PrivateKey.generate if _NATIVE is None else _NATIVE.generate_key
    )
    return _made(make)


def private_key(raw: bytes) -> X25519PrivateKey:
    """The X25519 private key of 32 raw bytes.

    :raises ValueError: for any other length.
    :raises UnsupportedFormat: OpenSSL offers no X25519 (FIPS mode).
    """
    make: Callable[[bytes], X25519PrivateKey] = (
        X25519PrivateKey.from_private_bytes if _NATIVE is None else _NATIVE.from_private_bytes
    )
    return _made(make, raw)


def public_key(raw: bytes) -> X25519PublicKey:
    """The X25519 public key of 32 raw bytes.

    :raises ValueError: for any other length.
    :raises UnsupportedFormat: OpenSSL offers no X25519 (FIPS mode).
    """
    make: Callable[[bytes], X25519PublicKey] = (
        X25519PublicKey.from_public_bytes if _NATIVE is None else _NATIVE.from_public_bytes
    )
    return _made(make, raw)


__all__ = ["NO_X25519", "generate", "native_binding", "private_key", "public_key"]
