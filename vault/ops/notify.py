"""Sending a check report out (``exvault check --notify-url``).

An ``http://`` or ``https://`` URL is a plain JSON webhook: the report document is
POSTed as is. Any other URL is handed to apprise, which speaks to Telegram
(``tgram://``), Discord, Slack, ntfy, e-mail (``mailto://``) and many more from one
URL form, and sends a short text summary of the findings (credential names, codes and
the checker's messages: nothing secret is ever in a report).

Notify URLs often carry their secret in the path or query (webhook tokens, bot
tokens), so no message, error or log of exvault shows more of a notify URL than its
scheme and host, apprise's own log is silenced, and a URL the HTTP library would
quote back in an error (one holding a space, a control character or a non-ASCII
character) is refused before anything is sent.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import ssl
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from vault.errors import InvalidInput, VaultUnavailable

TIMEOUT_SECONDS = 10
WEBHOOK_SCHEMES = ("http", "https")
APPRISE_EXTRA = "install exvault with its notify extra, pip install '.[notify]' in its source tree"
MAX_LISTED_FINDINGS = 20
"""How many findings a text notification lists (chat services cap message length)."""

# What may appear in a URL as sent: printable ASCII without the space. http.client
# refuses the rest with a message that repeats the URL's path (the webhook's secret).
_URL_TEXT = re.compile(r"[!-~]+")


def _scheme_and_host(url: str) -> str:
    """What messages may show of a webhook URL: its scheme and host only."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or '?'}"
    except ValueError:
        return "(malformed URL)"


def _apprise() -> Any:
    """The apprise module, with its log silenced (it may quote a URL).

    Imported here: apprise loads its many service plugins, which only a check that
    notifies through a non-http URL needs (it is the optional `notify` extra).

    :raises VaultUnavailable: when apprise is not installed.
    """
    try:
        import apprise
    except ImportError:
        raise VaultUnavailable(
            f"notify URLs other than http(s) need apprise: {APPRISE_EXTRA}"
        ) from None
    log = logging.getLogger("apprise")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    log.setLevel(logging.CRITICAL + 1)
    return apprise


def is_webhook(url: str) -> bool:
    """Whether ``url`` is a plain JSON webhook (http or https), rather than an
    apprise URL."""
    try:
        return urlsplit(url).scheme in WEBHOOK_SCHEMES
    except ValueError:
        return False


def check_url(url: str) -> str:
    """Accept a well-formed http(s) URL with a host, or a URL apprise can send to, in
    printable ASCII without spaces.

    :raises InvalidInput: for a scheme apprise does not know, a URL without a host, a
        malformed URL (a bad port, an unclosed ``[``), an apprise URL it cannot parse,
        or one with a space, a control character or a non-ASCII character; the message
        shows nothing of the URL.
    :raises VaultUnavailable: for an apprise URL when apprise is not installed.
    """
    refused = InvalidInput(
        "the notify URL must be an http:// or https:// URL with a host (a JSON webhook) "
        "or a notification URL apprise knows (tgram://, discord://, slack://, ntfy://, "
        "mailto://, json://...), in ASCII without spaces or control characters "
        "(percent-encode them)"
    )
    if not _URL_TEXT.fullmatch(url):
        raise refused
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise refused from None
    if parts.scheme in WEBHOOK_SCHEMES:
        if not host:
            raise refused
        return url
    if not parts.scheme or _apprise().Apprise.instantiate(url) is None:
        raise refused
    return url


def summary(document: dict[str, Any]) -> tuple[str, str]:
    """The title and body of a text notification of the report ``document`` (the
    JSON form of a check report): the counts, then the findings worst first."""
    counts = document["counts"]
    title = (
        f"exvault check: {document['worst']} ({counts['critical']} critical, {counts['warn']} warn)"
    )
    shown = [f for f in document["findings"] if f["severity"] != "ok"]
    lines = [
        f"{f['severity'].upper()} {f['credential'] or '(vault)'} {f['code']}: {f['message']}"
        for f in shown[:MAX_LISTED_FINDINGS]
    ]
    if len(shown) > MAX_LISTED_FINDINGS:
        lines.append(f"... and {len(shown) - MAX_LISTED_FINDINGS} more: run exvault check")
    return title, "\n".join(lines)


def send(url: str, document: dict[str, Any]) -> None:
    """Send the report ``document``: POSTed as JSON to an http(s) URL, or as a text
    summary through apprise to any other URL.

    :raises InvalidInput: when ``url`` is refused by :func:`check_url`.
    :raises VaultUnavailable: when the notification fails (the message names a webhook's
        scheme and host, an apprise URL's scheme only, never the full URL), or apprise
        is missing.
    """
    check_url(url)
    if is_webhook(url):
        post_json(url, document)
        return
    # The scheme alone: in apprise's URLs the host position is often the secret itself
    # (tgram://BOTTOKEN/..., ntfy://TOPIC, pover://USER@TOKEN).
    shown = f"{urlsplit(url).scheme}://"
    notifier = _apprise().Apprise()
    title, body = summary(document)
    try:
        notifier.add(url)
        delivered = bool(notifier.notify(title=title, body=body))
    except Exception as exc:
        # A plugin's own error would otherwise end in a traceback, whose text may
        # quote the URL: only its type is shown.
        raise VaultUnavailable(f"notification via {shown} failed: {type(exc).__name__}") from None
    if not delivered:
        raise VaultUnavailable(f"notification via {shown} failed")


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
