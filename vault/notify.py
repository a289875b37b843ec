"""Sending a check report to a webhook (``exvault check --notify-url``)."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from vault.errors import InvalidInput, VaultUnavailable

TIMEOUT_SECONDS = 10


def _where(url: str) -> str:
    # Webhook URLs often carry their secret in the path or query (Slack, Discord):
    # messages name the scheme and host only.
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or '?'}"
    except ValueError:
        return "(malformed URL)"


def check_url(url: str) -> str:
    """Accept http(s) URLs only.

    :raises InvalidInput: for another scheme or a URL without a host.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise InvalidInput("the notify URL must be an http:// or https:// URL with a host")
    return url


def post_json(url: str, document: dict[str, Any], timeout: float = TIMEOUT_SECONDS) -> int:
    """POST ``document`` as JSON; returns the HTTP status.

    :raises VaultUnavailable: when the request fails or the server answers >= 400
        (the message names the host, never the full URL).
    """
    check_url(url)
    body = json.dumps(document).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "exvault-check"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        raise VaultUnavailable(f"webhook at {_where(url)} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise VaultUnavailable(f"webhook at {_where(url)} failed: {reason}") from None
    return status
