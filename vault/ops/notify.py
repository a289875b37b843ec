"""Sending a check report to a webhook (``exvault check --notify-url``).

Webhook URLs often carry their secret in the path or query (Slack, Discord), so no
message, error or log of exvault shows more of a notify URL than its scheme and
host, and a URL the HTTP library would quote back in an error (one holding a space, a
control character or a non-ASCII character) is refused before anything is sent.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from vault.errors import InvalidInput, VaultUnavailable

TIMEOUT_SECONDS = 10

# What may appear in a URL as sent: printable ASCII without the space. http.client
# refuses the rest with a message that repeats the URL's path (the webhook's secret).
_URL_TEXT = re.compile(r"[!-~]+")


def _scheme_and_host(url: str) -> str:
    """What messages may show of a notify URL: its scheme and host only."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or '?'}"
    except ValueError:
        return "(malformed URL)"


def check_url(url: str) -> str:
    """Accept a well-formed http(s) URL with a host, in printable ASCII without spaces.

    :raises InvalidInput: for another scheme, a URL without a host, a malformed URL
        (a bad port, an unclosed ``[``), or one with a space, a control character or a
        non-ASCII character; the message shows nothing of the URL.
    """
    refused = InvalidInput(
        "the notify URL must be an http:// or https:// URL with a host, in ASCII "
        "without spaces or control characters (percent-encode them)"
    )
    if not _URL_TEXT.fullmatch(url):
        raise refused
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise refused from None
    if parts.scheme not in ("http", "https") or not host:
        raise refused
    return url


def _failure(exc: BaseException) -> str:
    """Why a request failed, built from error codes and type names only: the texts of
    the HTTP library's exceptions may quote the URL."""
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ssl.SSLError):
        return f"TLS error {reason.reason or type(reason).__name__}"
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        prefix = f"[Errno {reason.errno}] " if reason.errno is not None else ""
        return prefix + reason.strerror
    return type(reason).__name__


def post_json(url: str, document: dict[str, Any], timeout: float = TIMEOUT_SECONDS) -> int:
    """POST ``document`` as JSON; returns the HTTP status.

    :raises InvalidInput: when ``url`` is refused by :func:`check_url`.
    :raises VaultUnavailable: when the request fails or the server answers >= 400
        (the message names the scheme and host, never the full URL).
    """
    check_url(url)
    shown = _scheme_and_host(url)
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
        raise VaultUnavailable(f"webhook at {shown} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        raise VaultUnavailable(f"webhook at {shown} failed: {_failure(exc)}") from None
    return status
