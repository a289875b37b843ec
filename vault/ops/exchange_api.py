"""The one door to the exchanges: every ccxt client exvault uses is built here, at the
credential's endpoint (``live``, ``testnet`` through ccxt's sandbox mode, or a base URL
that replaces the host of every API URL), with a timeout, a capped answer size,
ccxt's logging silenced and secret-free errors.

It serves the probe (:func:`ask_key`, :func:`server_skew`: a key's introspection call
and the server time, every failure a :class:`~vault.exchanges.key_report.ProbeError`)
and automated rotation (:class:`KeyClient`: the master key's sub-account key calls,
every failure an :class:`~vault.errors.ExchangeError` or
:class:`~vault.errors.ExchangeUnreachable` built from the same classification).

Only the commands that talk to exchanges import this module (it imports ccxt, the
``exchanges`` extra); ``list``, ``check`` and a bot's ``vault.load`` never do.

Nothing secret leaves it. ccxt's exception texts hold the request URL (Binance and
HTX sign in the query string) and the answer's body, and its debug log the request
headers (the key, the signature, OKX's and KuCoin's passphrase): a :class:`ProbeError`
message is built here from the exchange's code and the kind of failure only, ccxt's
logger is replaced by a silent one, and urllib3's debug lines (URL with its query) are
dropped.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from vault.errors import (
    ExchangeError,
    ExchangeUnreachable,
    InvalidInput,
    MalformedAnswer,
    VaultError,
    VaultUnavailable,
    printable,
    quoted,
)
from vault.exchanges.endpoints import LIVE, TESTNET, parse_endpoint
from vault.exchanges.fields import CCXT_CREDENTIAL_NAMES
from vault.exchanges.introspection import RETIRED, introspection_for
from vault.exchanges.introspection.answer import Classified, Introspection, Verdict
from vault.exchanges.key_report import KeyReport, ProbeError
from vault.secret import Secret

try:
    import ccxt  # type: ignore[import-untyped]
    import requests
except ImportError:
    raise VaultUnavailable(
        "talking to exchanges needs ccxt: install exvault with its exchanges extra, "
        "pip install '.[exchanges]' in its source tree"
    ) from None

__all__ = [
    "BODY_LIMIT",
    "DEFAULT_TIMEOUT",
    "KeyClient",
    "ask_key",
    "check_endpoint",
    "server_skew",
    "unsupported",
]

BODY_LIMIT = 1024 * 1024
"""The largest answer read (bytes): an introspection answer is a few hundred bytes, and
a larger one is refused before it is parsed."""

DEFAULT_TIMEOUT = 10.0
"""Seconds a request may take (connect, then each read) before it counts as
unreachable."""

#: Longest exchange code kept in a ProbeError (a hostile server could send a novel).
_CODE_LIMIT = 64

WITHHELD = "withheld"
"""The code shown instead of an exchange's code that repeats a value of the request
or of the credential (the key, the signature, the passphrase, the secret)."""

#: Shorter values sent are not looked for in a code: "0", "GET", a one-digit window.
_SHORTEST_WITHHELD = 6

_REASONS = {
    "invalid-key": "unknown or deleted key (or, on Binance, an IP off its whitelist)",
    "bad-signature": "the signature does not match: the secret is not this key's",
    "wrong-passphrase": "wrong API passphrase",
    "ip-not-allowed": "this host's IP address is not on the key's whitelist",
    "expired": "the key has expired",
    "permission-denied": "the key may not call this endpoint (or this IP is not allowed)",
}


class _DropUrlLines(logging.Filter):
    """Drops urllib3's debug lines: each names a request's URL with its query string,
    where Binance and HTX put the key and the signature."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


logging.getLogger("urllib3.connectionpool").addFilter(_DropUrlLines())

# A logger outside the hierarchy, disabled: ccxt logs each request's headers at DEBUG.
_SILENT = logging.Logger("exvault.exchange_api.silenced")
_SILENT.disabled = True


class _AnswerTooLarge(Exception):
    """An answer beyond :data:`BODY_LIMIT` (raised inside ccxt's fetch, caught here)."""


class _AnswerTooSlow(Exception):
    """An answer still arriving when the request's time was up: a server that sends a
    byte now and then never trips the socket's own timeout, which counts each read."""


class _CappedSession(requests.Session):
    """A requests session that reads at most :data:`BODY_LIMIT` bytes of an answer and
    remembers the last answer's status, ``Retry-After`` and body (ccxt's exceptions
    carry them only in their text)."""

    def __init__(self) -> None:
        super().__init__()
        self.forget()

    def forget(self, pace: Callable[[], None] = lambda: None) -> None:
        """Clear what the last request left (before each call); ``pace`` is called
        right before the next request leaves, as close to the wire as can be."""
        self.pace = pace
        self.last_status: int | None = None
        self.last_retry_after: str | None = None
        self.last_body: bytes | None = None
        self.sent: list[str] = []

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["stream"] = True
        # A call of several requests (a listing's pages) is classified by its last.
        self.last_status = self.last_retry_after = self.last_body = None
        # requests would send the key, the signature and OKX's passphrase (headers of
        # its own, not Authorization) on to wherever a redirect points, even over http.
        kwargs["allow_redirects"] = False
        # What this request carries (the key, the signature, the passphrase: in its
        # headers or its query string): an answer's code that repeats one is withheld.
        url = str(args[1] if len(args) > 1 else kwargs.get("url", ""))
        headers = kwargs.get("headers") or {}
        self.sent += [str(value) for value in headers.values()]
        self.sent += [value for _, value in parse_qsl(urlsplit(url).query)]
        self.pace()
        timeout = kwargs.get("timeout")
        deadline = time.monotonic() + timeout if isinstance(timeout, (int, float)) else None
        response = super().request(*args, **kwargs)
        self.last_status = response.status_code
        self.last_retry_after = response.headers.get("Retry-After")
        try:
            declared = int(response.headers.get("Content-Length") or 0)
        except ValueError:
            declared = 0
        try:
            body = b"" if declared > BODY_LIMIT else _read_capped(response.raw, deadline)
        finally:
            response.close()
        if declared > BODY_LIMIT or len(body) > BODY_LIMIT:
            raise _AnswerTooLarge
        self.last_body = body
        response._content = body
        return response


def _read_capped(raw: Any, deadline: float | None) -> bytes:
    """At most :data:`BODY_LIMIT` + 1 bytes of an answer, decoded as read (exchanges
    gzip their JSON, and a small compressed answer may inflate past the limit, which
    stops the read), a chunk at a time so that the request's time is kept.

    :raises _AnswerTooSlow: ``deadline`` (``time.monotonic()``) passed mid-answer.
    """
    read = getattr(raw, "read1", None) or raw.read  # read1: what one socket read brings
    chunks: list[bytes] = []
    size = 0
    while size <= BODY_LIMIT:
        chunk = read(BODY_LIMIT + 1 - size, decode_content=True)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if deadline is not None and time.monotonic() > deadline:
            raise _AnswerTooSlow
    return b"".join(chunks)


def check_endpoint(endpoint: str | None) -> str | None:
    """Why ``endpoint`` cannot be used (``None``: it can): the rule of
    :func:`vault.exchanges.endpoints.parse_endpoint` (``live``, ``testnet``,
    ``https://host[:port]``, plain ``http://`` to this machine only), applied again
    here because the endpoint comes from the database."""
    if endpoint is None:
        return None
    try:
        parse_endpoint(endpoint)
    except InvalidInput as exc:
        return str(exc)
    return None


def _rebase(urls: Any, base: str) -> Any:
    """``urls`` (ccxt's ``urls['api']``: a URL or nested dicts of them) with the scheme
    and host of each replaced by ``base``, paths kept."""
    if isinstance(urls, dict):
        return {name: _rebase(url, base) for name, url in urls.items()}
    if isinstance(urls, str) and "://" in urls:
        return base + urlsplit(urls).path.rstrip("/")
    return urls


class _Unusable(Exception):
    """A client cannot be built; carries the ProbeError to report."""

    def __init__(self, error: ProbeError) -> None:
        super().__init__(error.message)
        self.error = error


# Building a ccxt client costs 7 to 15 ms of CPU (it merges the exchange's whole
# description): a thousand keys would spend seconds on it alone. Each thread keeps one
# client per exchange and endpoint and lends it to one key at a time.
_THREAD = threading.local()


def _client(exchange: str, endpoint: str | None, timeout: float) -> Any:
    """This thread's ccxt client of ``exchange`` at ``endpoint``, with no credentials.

    :raises _Unusable: ccxt has no such exchange, or the endpoint is unusable.
    """
    clients: dict[tuple[str, str | None], Any] = _THREAD.__dict__.setdefault("clients", {})
    client = clients.get((exchange, endpoint))
    if client is None:
        client = _new_client(exchange, endpoint)
        clients[(exchange, endpoint)] = client
    client.timeout = max(1, round(timeout * 1000))
    return client


def _new_client(exchange: str, endpoint: str | None) -> Any:
    factory = getattr(ccxt, exchange, None)
    if not isinstance(factory, type) or not issubclass(factory, ccxt.Exchange):
        raise _Unusable(ProbeError("unsupported", None, None, f"ccxt has no exchange {exchange}"))
    problem = check_endpoint(endpoint)
    if problem is not None:
        raise _Unusable(ProbeError("unsupported", None, None, problem))
    client = factory({"enableRateLimit": False})
    client.logger = _SILENT
    client.session = _CappedSession()
    if endpoint == TESTNET:
        try:
            client.set_sandbox_mode(True)
        except ccxt.NotSupported:
            message = f"{exchange} has no testnet in ccxt"
            raise _Unusable(ProbeError("unsupported", None, None, message)) from None
    elif endpoint not in (None, LIVE):
        parts = urlsplit(endpoint)
        client.urls["api"] = _rebase(client.urls["api"], f"{parts.scheme}://{parts.netloc}")
        # Exchanges that sign the host (HTX) sign the one they are sent to.
        client.hostname = parts.netloc
    return client


@contextmanager
def _holding(client: Any, fields: Mapping[str, Secret]) -> Iterator[Any]:
    """``client`` holding ``fields``' secrets for the ``with`` block only."""
    for ours, theirs in CCXT_CREDENTIAL_NAMES.items():
        setattr(client, theirs, fields[ours].reveal() if ours in fields else "")
    try:
        yield client
    finally:
        for theirs in CCXT_CREDENTIAL_NAMES.values():
            setattr(client, theirs, "")


def _code(text: str, withheld: Collection[str]) -> str:
    """The exchange's code as shown and stored: printable, at most :data:`_CODE_LIMIT`
    characters, and :data:`WITHHELD` when it repeats one of ``withheld`` (an exchange
    that echoes what it was sent must not put a signature or a passphrase in the
    output)."""
    if any(len(value) >= _SHORTEST_WITHHELD and value in text for value in withheld):
        return WITHHELD
    return printable(text)[:_CODE_LIMIT]


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from an API; the limiter's own pause applies
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def _from_verdict(
    exchange: str,
    classified: Classified,
    verdict: Verdict,
    retry_after: float | None,
    withheld: Collection[str],
) -> ProbeError:
    code = _code(classified.code, withheld)
    if verdict.kind == "rejected-key":
        reason = verdict.reason or "invalid-key"
        text = f"{exchange} refused the key: {_REASONS[reason]} (code {code})"
        return ProbeError("rejected-key", reason, code, text)
    if verdict.kind == "clock-skew":
        text = f"{exchange} refused the request's time stamp: check this host's clock (code {code})"
        return ProbeError("clock-skew", None, code, text)
    text = f"{exchange} is busy or under maintenance (code {code})"
    return ProbeError("unreachable", None, code, text, retry_after)


def _classify(
    exchange: str,
    spec: Introspection | None,
    exc: BaseException,
    session: Any,
    fields: Mapping[str, Secret],
) -> ProbeError:
    """The ProbeError for a failed call. Built from codes and classes only: ccxt's
    exception text (URL with signature, body) is never used, and a code that repeats
    what the request carried or one of ``fields`` is withheld."""
    withheld = [*getattr(session, "sent", ()), *(value.reveal() for value in fields.values())]
    if isinstance(exc, _AnswerTooSlow):
        return ProbeError("unreachable", None, None, f"{exchange} did not answer in time")
    if isinstance(exc, _AnswerTooLarge):
        message = f"{exchange} sent an answer larger than {BODY_LIMIT // 1024} KiB"
        return ProbeError("malformed", None, None, message)
    status: int | None = getattr(session, "last_status", None)
    body: bytes | None = getattr(session, "last_body", None)
    answer: object = None
    if body:
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
    classified = spec.classify(answer) if spec is not None and answer is not None else None
    retry_after = _retry_after(getattr(session, "last_retry_after", None))
    if status == 429 or isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
        code = _code(classified.code, withheld) if classified is not None else "429"
        wait = f", retry after {retry_after:g} s" if retry_after is not None else ""
        return ProbeError(
            "unreachable", None, code, f"{exchange} is rate limiting requests{wait}", retry_after
        )
    if classified is not None and classified.verdict is not None:
        return _from_verdict(exchange, classified, classified.verdict, retry_after, withheld)
    if status is not None and 300 <= status < 400:
        message = f"could not reach {exchange}: redirected elsewhere"
        return ProbeError("unreachable", None, str(status), message)
    if status is not None and status >= 500:
        return ProbeError("unreachable", None, str(status), f"{exchange} answered HTTP {status}")
    if isinstance(exc, ccxt.OnMaintenance):
        return ProbeError("unreachable", None, None, f"{exchange} is under maintenance")
    if isinstance(exc, ccxt.RequestTimeout):
        return ProbeError("unreachable", None, None, f"{exchange} did not answer in time")
    # requests' cause says more than ccxt's class (which files TLS under either).
    if isinstance(exc.__cause__, requests.exceptions.SSLError):
        return ProbeError("unreachable", None, None, f"could not reach {exchange}: TLS failed")
    if isinstance(exc, ccxt.NetworkError):  # ExchangeNotAvailable too
        return ProbeError("unreachable", None, None, f"could not reach {exchange}")
    if isinstance(exc, requests.exceptions.RequestException):
        return ProbeError("unreachable", None, None, f"could not reach {exchange}")
    if classified is not None:
        code = _code(classified.code, withheld)
        message = f"{exchange} answered with an error exvault does not know (code {code})"
        return ProbeError("malformed", None, code, message)
    if isinstance(exc, ccxt.AuthenticationError):
        return ProbeError(
            "rejected-key", "invalid-key", None, f"{exchange} refused the key (no known code)"
        )
    if isinstance(exc, ccxt.PermissionDenied):
        return ProbeError(
            "rejected-key", "permission-denied", None, f"{exchange} refused the key (no known code)"
        )
    if isinstance(exc, ccxt.InvalidNonce):
        text = f"{exchange} refused the request's time stamp: check this host's clock"
        return ProbeError("clock-skew", None, None, text)
    if isinstance(exc, MalformedAnswer):
        return ProbeError("malformed", None, None, f"{exchange}'s answer is unreadable: {exc}")
    if status is not None and status >= 400:
        message = f"{exchange} answered HTTP {status} without a known code"
        return ProbeError("malformed", None, str(status), message)
    return ProbeError("malformed", None, None, f"{exchange}'s answer is unreadable")


def unsupported(exchange: str) -> ProbeError | None:
    """The error of an exchange exvault cannot ask about a key (``None``: it can)."""
    name = exchange.strip().lower()
    if name in RETIRED:
        return ProbeError("unsupported", None, None, f"{name}: {RETIRED[name]}")
    if introspection_for(name) is None:
        return ProbeError(
            "unsupported",
            None,
            None,
            f"exvault does not know how to ask {quoted(exchange)} about a key",
        )
    return None


def ask_key(
    exchange: str,
    fields: Mapping[str, Secret],
    endpoint: str | None,
    *,
    now: datetime,
    timeout: float = DEFAULT_TIMEOUT,
    pace: Callable[[], None] = lambda: None,
) -> KeyReport | ProbeError:
    """What ``exchange`` says about the key in ``fields`` (our field names), asked at
    ``endpoint`` (``None``/``live``, ``testnet`` or a base URL).

    ``pace`` is called before each request (a rate limiter's wait; it may raise a
    :class:`BaseException` to stop, which passes through).

    Never raises for anything the exchange or the network does: each failure is a
    :class:`ProbeError` whose message holds no secret, URL query or header.
    """
    failure = unsupported(exchange)
    if failure is not None:
        return failure
    spec = introspection_for(exchange)
    assert spec is not None
    name = spec.exchange
    try:
        client = _client(name, endpoint, timeout)
    except _Unusable as unusable:
        return unusable.error
    session = client.session
    try:
        with _holding(client, fields):
            return _introspect(client, session, spec, fields, now, pace)
    except Exception as exc:  # every failure is reported, none escapes with its text
        return _classify(name, spec, exc, session, fields)
    finally:
        session.forget()  # the thread's client keeps no header of this key


def _introspect(
    client: Any,
    session: Any,
    spec: Introspection,
    fields: Mapping[str, Secret],
    now: datetime,
    pace: Callable[[], None],
) -> KeyReport:
    """The introspection call(s) and the parsed report.

    :raises Exception: whatever ccxt or the parser raises (classified by the caller).
    """
    uid = fields["uid"].reveal() if "uid" in fields else None
    if uid is None and spec.account_method is not None and spec.parse_account is not None:
        answer = _call(client, session, spec.account_method, {}, pace)
        _raise_if_error(spec, answer)
        uid = spec.parse_account(answer)
    params = spec.params(fields["api_key"].reveal(), uid)
    answer = _call(client, session, spec.method, params, pace)
    _raise_if_error(spec, answer)
    if isinstance(answer, str):
        raise MalformedAnswer("not JSON")
    return spec.parse(answer, now)


class _ErrorInAnswer(Exception):
    """A 200 answer that carries the exchange's error code."""


def _raise_if_error(spec: Introspection, answer: object) -> None:
    if spec.classify(answer) is not None:
        raise _ErrorInAnswer


def _call(
    client: Any, session: Any, method: str, params: Mapping[str, str], pace: Callable[[], None]
) -> object:
    session.forget(pace)
    return getattr(client, method)(dict(params))


def server_skew(
    exchange: str,
    endpoint: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    pace: Callable[[], None] = lambda: None,
) -> int | ProbeError:
    """The exchange's clock minus this host's, in milliseconds, from one server-time
    request (ccxt's ``fetch_time``; no key needed): measured at the middle of the
    request and brought closer to zero by half its round trip, and by half a second for
    Kraken, whose clock is read in whole seconds, so that only a skew that is certain is
    reported.

    Never raises for anything the exchange or the network does (``pace`` as in
    :func:`ask_key`).
    """
    failure = unsupported(exchange)
    if failure is not None:
        return failure
    spec = introspection_for(exchange)
    assert spec is not None
    try:
        client = _client(spec.exchange, endpoint, timeout)
    except _Unusable as unusable:
        return unusable.error
    session = client.session
    session.forget(pace)
    try:
        started = time.time()
        server_ms = client.fetch_time()
        finished = time.time()
        if isinstance(server_ms, bool) or not isinstance(server_ms, int):
            raise MalformedAnswer("server time is not an integer")
    except Exception as exc:  # as in ask_key: reported, never raised
        return _classify(spec.exchange, spec, exc, session, {})
    finally:
        session.forget()
    # The exchange read its clock somewhere during the request, somewhere in the unit it
    # names: the skew is known to within half of each. Only the part that is certain is
    # returned, so that a slow answer never reads as a clock off.
    middle = round((started + finished) / 2 * 1000)
    skew = server_ms + spec.time_resolution_ms // 2 - middle
    doubt = round((finished - started) * 1000 / 2) + spec.time_resolution_ms // 2
    return int(math.copysign(max(0, abs(skew) - doubt), skew))


class KeyClient:
    """A ccxt client of one exchange at one endpoint, holding one credential's key, for
    the sub-account key calls of automated rotation (the master key's listing, create
    and delete).

    Each :meth:`request` is one call of ccxt's implicit API; its failure is classified
    as the probe's are (from the status, the exchange's code and ccxt's class, never
    ccxt's text) and raised as an :class:`~vault.errors.ExchangeError` (the exchange
    refused: nothing happened) or an :class:`~vault.errors.ExchangeUnreachable` (the
    call may or may not have acted).
    """

    __slots__ = ("_client", "_fields", "_spec", "exchange")

    def __init__(
        self,
        exchange: str,
        fields: Mapping[str, Secret],
        endpoint: str | None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """:raises InvalidInput: ccxt has no such exchange, or ``endpoint`` is unusable."""
        self.exchange = exchange
        self._fields = dict(fields)  # Secrets: an answer's code repeating one is withheld
        self._spec = introspection_for(exchange)
        try:
            # A client of its own (not the probe threads' shared one): it holds the
            # key for as long as the caller keeps it.
            self._client = _new_client(exchange, endpoint)
        except _Unusable as unusable:
            raise InvalidInput(unusable.error.message) from None
        self._client.timeout = max(1, round(timeout * 1000))
        for ours, theirs in CCXT_CREDENTIAL_NAMES.items():
            setattr(self._client, theirs, fields[ours].reveal() if ours in fields else "")

    def request(
        self, what: str, method: str, params: Mapping[str, object], *, unknown: bool = False
    ) -> Any:
        """The decoded answer of ccxt's implicit method ``method`` called with
        ``params``; ``what`` names the call in errors (``the key creation``).

        :raises ExchangeError: the exchange refused (an error code, a 4xx), or, unless
            ``unknown``, answered in a shape exvault cannot read.
        :raises ExchangeUnreachable: no answer, a 5xx, a 429, a timeout; with
            ``unknown`` (a call that creates or deletes) an unreadable answer too.
        """
        session = self._client.session
        session.forget()
        try:
            answer = getattr(self._client, method)(dict(params))
            if self._spec is not None:
                _raise_if_error(self._spec, answer)
            return answer
        except Exception as exc:  # every failure is classified, none escapes with its text
            error = _classify(self.exchange, self._spec, exc, session, self._fields)
        # Raised outside the except block: no __context__ holding ccxt's text.
        raise call_failure(what, error, unknown=unknown)

    def __repr__(self) -> str:
        return f"KeyClient({self.exchange!r})"

    def __reduce__(self) -> Any:
        raise TypeError("a KeyClient cannot be pickled")


def call_failure(what: str, error: ProbeError, *, unknown: bool) -> VaultError:
    """The error of a key-management call ``what`` that failed with ``error``: an
    exchange's error code is a refusal (nothing happened); no answer, or with
    ``unknown`` an unreadable one, leaves the outcome unknown."""
    if error.kind == "unreachable" or (unknown and error.kind == "malformed" and not error.code):
        outcome = "; whether it acted is unknown" if unknown else ""
        return ExchangeUnreachable(f"{what}: {error.message}{outcome}")
    return ExchangeError(f"{what}: {error.message}")
