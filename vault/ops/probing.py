"""Probing many keys at once: a pool of threads per exchange and endpoint, each pool
paced by one rate limiter shared by all its keys, one server-time request per pool
and run, Retry-After honoured, progress reported, and a clean stop on Ctrl-C that
keeps every result already in.

Why a pool per exchange: a thread waiting for a slow exchange's rate limit or its
timeout must not hold a thread another exchange could use, so each exchange and
endpoint has threads of its own and a slow or failing one never stalls the others.
Why one limiter per exchange and endpoint: ccxt's own limiter lives in one client,
and each key gets its own client, so it cannot pace several keys together.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime
from typing import NamedTuple, TypeVar

from vault.exchanges.endpoints import LIVE
from vault.exchanges.introspection import introspection_for
from vault.exchanges.key_report import KeyReport, ProbeError, ProbeOutcome
from vault.format.model import utc_now
from vault.ops.exchange_api import DEFAULT_TIMEOUT, ask_key, server_skew
from vault.secret import Secret

__all__ = [
    "DEFAULT_RATES",
    "MAX_RETRY_AFTER",
    "ProbeResult",
    "ProbeRun",
    "ProbeTarget",
    "RateLimiter",
    "probe",
]

DEFAULT_RATES: Mapping[str, float] = {
    "binance": 10.0,
    "kucoin": 5.0,
    "okx": 2.5,  # account/config: 5 requests per 2 seconds
    "bybit": 10.0,
    "htx": 10.0,
    "gate": 10.0,
    "bitget": 1.0,  # spot account info: 1 request per second
    "kraken": 0.33,  # the private call counter decays by 0.33 per second
    "coinbase": 10.0,
}
"""Requests per second sent to each exchange and endpoint, below what each documents
for its introspection call; an exchange not listed gets :data:`FALLBACK_RATE`."""

FALLBACK_RATE = 1.0

MAX_RETRY_AFTER = 60.0
"""The longest Retry-After honoured by waiting (seconds); a longer one is reported."""

RETRIES = 2
"""How many times a probe refused by a rate limit is tried again."""

WORKERS_PER_GROUP = 4

T = TypeVar("T")

# The window is counted a little longer than the exchange's: requests reach it with
# some jitter, and one counting over a sliding second must never see one too many.
_MARGIN = 1.06


class ProbeTarget(NamedTuple):
    """One credential to probe: its secret fields (our names) and where to ask."""

    name: str
    exchange: str
    endpoint: str | None
    fields: Mapping[str, Secret]

    def __repr__(self) -> str:
        return f"ProbeTarget(name={self.name!r}, exchange={self.exchange!r})"


class ProbeResult(NamedTuple):
    """The outcome of probing one credential."""

    name: str
    exchange: str
    outcome: ProbeOutcome


class ProbeRun(NamedTuple):
    """Every result in (in the targets' order) and whether the run was interrupted
    (then some targets have no result)."""

    results: list[ProbeResult]
    interrupted: bool


class _Stopped(BaseException):
    """Raised in a worker when the run is cancelled while it waits for a slot; a
    BaseException so that the exchange code, which reports every Exception, lets it
    through."""


class RateLimiter:
    """At most ``per_second`` requests a second, shared by threads, counted as the
    exchanges count them: over any sliding window, by the time each request really
    left (a thread that woke late is not allowed to crowd the next window). A
    Retry-After pauses everyone.
    """

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.burst = max(1, round(per_second))
        self.window = self.burst * self.interval * _MARGIN
        self._sent: deque[float] = deque(maxlen=self.burst)
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self, cancel: threading.Event) -> None:
        """Wait until a request may leave, and count it as leaving now.

        :raises _Stopped: ``cancel`` was set meanwhile.
        """
        while True:
            with self._lock:
                now = time.monotonic()
                earliest = self._next
                if len(self._sent) == self.burst:
                    earliest = max(earliest, self._sent[0] + self.window)
                if earliest <= now:
                    self._sent.append(now)
                    self._next = now + self.interval
                    break
            if cancel.wait(earliest - now):
                raise _Stopped
        if cancel.is_set():
            raise _Stopped

    def pause(self, seconds: float) -> None:
        """Let no request leave for ``seconds`` from now."""
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)


class _Group:
    """The keys of one exchange and endpoint: their limiter, threads and clock skew."""

    def __init__(self, exchange: str, endpoint: str | None, rate: float, workers: int) -> None:
        self.exchange = exchange
        self.endpoint = endpoint
        self.limiter = RateLimiter(rate)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix=f"probe-{exchange}")
        self.skew: Future[int | ProbeError] | None = None


def probe(
    targets: Sequence[ProbeTarget],
    *,
    rates: Mapping[str, float] = DEFAULT_RATES,
    timeout: float = DEFAULT_TIMEOUT,
    workers_per_group: int = WORKERS_PER_GROUP,
    progress: Callable[[int, int], None] | None = None,
    on_result: Callable[[ProbeResult], None] | None = None,
    cancel: threading.Event | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> ProbeRun:
    """Probe every target and return the outcomes.

    :param rates: requests per second per exchange (ccxt id).
    :param timeout: seconds per request.
    :param progress: called as ``progress(done, total)`` after each result (in the
        calling thread).
    :param on_result: called with each result as it comes in (in the calling thread,
        so it may write to the vault).
    :param cancel: set it (or press Ctrl-C) to stop: requests under way finish, no new
        one starts, and the results in so far are returned with ``interrupted``.
    :raises: nothing from the exchanges or the network: each failure is the
        ``error`` of its target's outcome.
    """
    stop = cancel if cancel is not None else threading.Event()
    groups: dict[tuple[str, str | None], _Group] = {}
    futures: dict[Future[ProbeResult | None], int] = {}
    for index, target in enumerate(targets):
        exchange = target.exchange.strip().lower()
        endpoint = None if target.endpoint == LIVE else target.endpoint
        group = groups.get((exchange, endpoint))
        if group is None:
            rate = rates.get(exchange, FALLBACK_RATE)
            group = _Group(exchange, endpoint, rate, workers_per_group)
            group.skew = group.pool.submit(_skew, group, timeout, stop)
            groups[(exchange, endpoint)] = group
        futures[group.pool.submit(_probe_one, group, target, timeout, stop, clock)] = index
    results: dict[int, ProbeResult] = {}
    interrupted = False
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in done:
                result = future.result()
                if result is None:
                    continue
                results[futures[future]] = result
                if on_result is not None:
                    on_result(result)
                if progress is not None:
                    progress(len(results), len(targets))
            if stop.is_set():
                interrupted = True
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
    finally:
        stop_now = stop.is_set()
        for group in groups.values():
            group.pool.shutdown(wait=True, cancel_futures=stop_now)
    if interrupted:
        # Requests under way when the stop came finished: keep their results too.
        for future, index in futures.items():
            if index not in results and future.done() and not future.cancelled():
                late = future.result()
                if late is not None:
                    results[index] = late
                    if on_result is not None:
                        on_result(late)
    return ProbeRun([results[i] for i in sorted(results)], interrupted)


def _skew(group: _Group, timeout: float, stop: threading.Event) -> int | ProbeError:
    try:
        return _with_retries(
            group,
            stop,
            lambda: server_skew(
                group.exchange,
                group.endpoint,
                timeout=timeout,
                pace=lambda: group.limiter.wait(stop),
            ),
        )
    except _Stopped:
        return ProbeError("unreachable", None, None, "stopped before the exchange was asked")


def _probe_one(
    group: _Group,
    target: ProbeTarget,
    timeout: float,
    stop: threading.Event,
    clock: Callable[[], datetime],
) -> ProbeResult | None:
    assert group.skew is not None
    try:
        skew = group.skew.result()
        if stop.is_set():
            return None
        observed_at = clock()
        if isinstance(skew, ProbeError) and skew.kind in ("unreachable", "unsupported"):
            # The exchange did not even tell the time: do not queue every key behind
            # its timeout. Each key is reported as the time request failed.
            answer: KeyReport | ProbeError = skew
        else:
            answer = _with_retries(
                group,
                stop,
                lambda: ask_key(
                    group.exchange,
                    target.fields,
                    group.endpoint,
                    now=observed_at,
                    timeout=timeout,
                    pace=lambda: group.limiter.wait(stop),
                ),
            )
    except _Stopped:
        return None
    spec = introspection_for(group.exchange)
    outcome = ProbeOutcome(
        observed_at=observed_at,
        report=answer if isinstance(answer, KeyReport) else None,
        error=answer if isinstance(answer, ProbeError) else None,
        skew_ms=skew if isinstance(skew, int) else None,
        receive_window_ms=spec.receive_window_ms if spec is not None else None,
    )
    return ProbeResult(target.name, target.exchange, outcome)


def _with_retries(group: _Group, stop: threading.Event, call: Callable[[], T]) -> T:
    """``call()``, again after the wait a rate-limited answer asked for (the whole
    group waits: the limit is the exchange's, not the key's)."""
    for _ in range(RETRIES):
        answer = call()
        if not (
            isinstance(answer, ProbeError)
            and answer.retry_after is not None
            and answer.retry_after <= MAX_RETRY_AFTER
        ):
            return answer
        group.limiter.pause(answer.retry_after)
        if stop.is_set():
            raise _Stopped
    return call()
