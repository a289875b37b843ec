"""vault.ops.probing: many keys across exchanges, paced per exchange, one time
request per exchange, Retry-After honoured, a slow or dead exchange never holding up
the others, and a stop that keeps what was done."""

from __future__ import annotations

import threading
import time

import pytest

from tests.mock_exchange.registry import ApiKey, Fault
from tests.mock_exchange.server import MockExchange, MockExchanges
from tests.mock_exchange.test_ccxt_against_mock import register
from vault.ops.probing import ProbeResult, ProbeTarget, RateLimiter, probe
from vault.secret import Secret

TIME_PATHS = {"okx": "/api/v5/public/time", "binance": "/api/v3/time", "bybit": "/v5/market/time"}
CONFIG = "/api/v5/account/config"


def targets(mock: MockExchange, count: int) -> list[ProbeTarget]:
    """``count`` targets of one registered key of ``mock`` (the mock cares only that
    each request is signed right)."""
    key = register(mock)
    return [target(mock, key, f"{mock.name}-{i}") for i in range(count)]


def target(mock: MockExchange, key: ApiKey, name: str) -> ProbeTarget:
    fields = {"api_key": key.api_key, "secret": key.secret}
    if key.passphrase is not None:
        fields["passphrase"] = key.passphrase
    return ProbeTarget(name, mock.name, mock.url, {k: Secret(v) for k, v in fields.items()})


FAST = dict.fromkeys(("okx", "binance", "bybit", "htx", "kucoin"), 200.0)


def test_every_key_is_probed_in_order_with_one_time_request_per_exchange(
    mock_exchanges: MockExchanges,
) -> None:
    everything = []
    for name in ("okx", "binance", "bybit"):
        everything += targets(mock_exchanges[name], 4)
    seen: list[tuple[int, int]] = []
    run = probe(everything, rates=FAST, progress=lambda done, total: seen.append((done, total)))
    assert not run.interrupted
    assert [r.name for r in run.results] == [t.name for t in everything]
    assert all(r.outcome.ok and r.outcome.skew_ms is not None for r in run.results)
    assert seen[-1] == (12, 12) and len(seen) == 12
    for name, path in TIME_PATHS.items():
        assert [r.path for r in mock_exchanges[name].requests()].count(path) == 1
    okx = next(r for r in run.results if r.exchange == "okx").outcome
    assert okx.receive_window_ms == 30_000


def test_the_rate_limit_is_kept(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["okx"]
    mock.state.rate_limit_per_second = 10
    started = time.monotonic()
    run = probe(targets(mock, 12), rates={"okx": 10.0})
    elapsed = time.monotonic() - started
    assert all(r.outcome.ok for r in run.results)
    assert "rate_limited" not in {r.outcome for r in mock.requests()}
    assert elapsed >= 1.0  # 13 requests at 10 a second: the second window starts at 1 s


def test_rate_limiter_spaces_and_pauses() -> None:
    limiter = RateLimiter(20.0)
    never = threading.Event()
    started = time.monotonic()
    for _ in range(3):
        limiter.wait(never)
    assert time.monotonic() - started >= 2 * limiter.interval * 0.9
    limiter.pause(0.3)
    before = time.monotonic()
    limiter.wait(never)
    assert time.monotonic() - before >= 0.25


def test_retry_after_is_honoured(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["okx"]
    mock.inject(Fault.too_many_requests(retry_after=0.4, path=CONFIG, times=1))
    started = time.monotonic()
    run = probe(targets(mock, 1), rates=FAST)
    assert run.results[0].outcome.ok
    assert time.monotonic() - started >= 0.4
    assert [r.outcome for r in mock.requests()][-2:] == ["too_many_requests", "ok"]


def test_a_slow_exchange_never_stalls_the_others(mock_exchanges: MockExchanges) -> None:
    slow, fast = mock_exchanges["okx"], mock_exchanges["binance"]
    slow_targets = targets(slow, 4)  # one round of its 4 threads
    slow.inject(Fault.delay(5.0, path=CONFIG))
    started = time.monotonic()
    arrived: dict[str, float] = {}

    def note(result: ProbeResult) -> None:
        arrived[result.name] = time.monotonic() - started

    run = probe(slow_targets + targets(fast, 6), rates=FAST, timeout=0.8, on_result=note)
    fast_done = max(t for name, t in arrived.items() if name.startswith("binance"))
    slow_done = max(t for name, t in arrived.items() if name.startswith("okx"))
    assert fast_done < 0.8 < slow_done
    by_exchange = {r.exchange: r.outcome for r in run.results}
    assert by_exchange["binance"].ok
    error = by_exchange["okx"].error
    assert error is not None and error.kind == "unreachable"


def test_a_dead_exchange_fails_its_keys_at_once(mock_exchanges: MockExchanges) -> None:
    dead, alive = mock_exchanges["okx"], mock_exchanges["bybit"]
    dead_targets = targets(dead, 20)
    dead.stop()
    started = time.monotonic()
    run = probe(dead_targets + targets(alive, 2), rates=FAST, timeout=2.0)
    assert time.monotonic() - started < 2.0
    errors = [r.outcome.error for r in run.results if r.exchange == "okx"]
    assert len(errors) == 20 and all(e is not None and e.kind == "unreachable" for e in errors)
    assert all(r.outcome.ok for r in run.results if r.exchange == "bybit")


def test_cancel_keeps_the_results_done(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["okx"]
    cancel = threading.Event()
    run = probe(
        targets(mock, 30), rates={"okx": 20.0}, cancel=cancel, on_result=lambda _r: cancel.set()
    )
    assert run.interrupted
    assert 1 <= len(run.results) < 30
    assert all(r.outcome.ok for r in run.results)


def test_ctrl_c_stops_cleanly(mock_exchanges: MockExchanges) -> None:
    mock = mock_exchanges["okx"]
    calls = []

    def interrupt(done: int, total: int) -> None:
        calls.append(done)
        if done == 2:
            raise KeyboardInterrupt

    started = time.monotonic()
    run = probe(targets(mock, 40), rates={"okx": 20.0}, progress=interrupt)
    assert run.interrupted and 2 <= len(run.results) < 40
    assert time.monotonic() - started < 2.0
    assert not [t for t in threading.enumerate() if t.name.startswith("probe-okx")]


def test_an_unsupported_exchange_is_reported_without_a_request() -> None:
    fields = {"api_key": Secret("k"), "secret": Secret("s")}
    run = probe([ProbeTarget("old", "ascendex", None, fields)])
    (result,) = run.results
    assert result.outcome.error is not None and result.outcome.error.kind == "unsupported"
    assert "ProbeTarget(name='old'" in repr(ProbeTarget("old", "ascendex", None, fields))
    assert "'s'" not in repr(ProbeTarget("old", "ascendex", None, fields))


@pytest.mark.parametrize("rate", [0.33, 1.0, 20.0])
def test_the_limiter_burst_and_window_follow_the_rate(rate: float) -> None:
    limiter = RateLimiter(rate)
    assert limiter.burst >= 1
    assert limiter.window >= limiter.burst / rate
