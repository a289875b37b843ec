"""Exchange knowledge: permission names, payload fields, per-exchange profiles.

The names live in their submodules, imported from there (the package re-exports
nothing, so that importing one, say the permission names, does not load the
others):

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
