"""Exchange knowledge: permission names, payload fields, per-exchange profiles.

The public names live in three submodules and are re-exported here:

* :mod:`vault.exchanges.fields` -- :data:`PERMISSIONS`, :data:`STANDARD_FIELDS`,
  :func:`validate_field_name`, the ccxt name mapping;
* :mod:`vault.exchanges.keyformats` -- :func:`normalize_payload` and the shape checks
  of PEM keys, HMAC secrets and passphrases;
* :mod:`vault.exchanges.profiles` -- :class:`ExchangeProfile`, :class:`LifetimeRule`,
  :func:`get_profile`, :func:`all_profiles`.

Typical use when a credential is added::

    profile = get_profile(exchange_id)
    payload = profile.prepare_payload(payload)        # validated, normalized
    permissions = profile.normalize_permissions(perms)
    ips = parse_ip_whitelist(raw_ips); profile.validate_ips(ips)
"""

from __future__ import annotations

from vault.exchanges.fields import (
    CCXT_CREDENTIAL_NAMES,
    CORE_FIELDS,
    EXTRA_FIELDS,
    PERMISSIONS,
    STANDARD_FIELDS,
    validate_field_name,
)
from vault.exchanges.keyformats import normalize_payload, normalize_pem
from vault.exchanges.profiles import (
    APPLIES_WHEN,
    ExchangeProfile,
    LifetimeRule,
    all_profiles,
    get_profile,
)

__all__ = [
    "APPLIES_WHEN",
    "CCXT_CREDENTIAL_NAMES",
    "CORE_FIELDS",
    "EXTRA_FIELDS",
    "PERMISSIONS",
    "STANDARD_FIELDS",
    "ExchangeProfile",
    "LifetimeRule",
    "all_profiles",
    "get_profile",
    "normalize_payload",
    "normalize_pem",
    "validate_field_name",
]
