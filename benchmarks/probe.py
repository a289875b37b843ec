"""``python -m benchmarks.probe``: probing many keys across five exchanges against the
mock exchanges, each allowing 20 requests a second.

The floor is what the rate limit sets: N keys over 5 exchanges at R requests a second
each cannot take less than N / 5 / R seconds (1,000 keys at 20/s: 10 s). The target is
a wall time of at most 1.25 times that floor, with no request refused by the limit.
The probes go through ``vault.ops.probing.probe`` with real ccxt clients signing every
request, and the mock, in a process of its own, verifying every signature (the vault's
decryption, done before, is not part of this figure).

Options: ``--keys N`` (default 1,000), ``--rate R`` (default 20), ``--workers W``
(threads per exchange, default 4).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python benchmarks/probe.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.mock_exchange.registry import Account, ApiKey
from tests.mock_exchange.server import MockExchanges
from vault.ops.probing import ProbeTarget, probe
from vault.secret import Secret

REPO = Path(__file__).resolve().parent.parent
EXCHANGES = ("binance", "kucoin", "okx", "bybit", "htx")
TARGET_RATIO = 1.25
ACCOUNT = Account("1001", "main")
PERMISSIONS = {
    "binance": ("enableReading",),
    "kucoin": ("General",),
    "okx": ("read_only",),
    "bybit": (),
    "htx": ("readOnly",),
}


def _key(exchange: str, index: int) -> ApiKey:
    """The ``index``-th key of ``exchange``, in the exchange's own key format (the same
    in the server process and in the probing one)."""
    digest = hashlib.sha256(f"{exchange}-{index}".encode()).hexdigest()
    api_key = (digest * 2)[:64] if exchange == "binance" else f"{exchange}-{digest[:24]}"
    passphrase = f"Pass#{index:04d}word" if exchange in ("kucoin", "okx") else None
    return ApiKey(
        api_key=api_key,
        secret=digest[24:56],
        account=ACCOUNT,
        passphrase=passphrase,
        permissions=PERMISSIONS[exchange],
    )


def _target(exchange: str, url: str, key: ApiKey, index: int) -> ProbeTarget:
    fields = {"api_key": key.api_key, "secret": key.secret}
    if key.passphrase is not None:
        fields["passphrase"] = key.passphrase
    if exchange == "htx":
        fields["uid"] = ACCOUNT.uid  # one request per key, as for the others
    return ProbeTarget(
        name=f"{exchange}-{index}",
        exchange=exchange,
        endpoint=url,
        fields={name: Secret(value) for name, value in fields.items()},
    )


def serve(per_exchange: int, rate: float) -> None:
    """The mock exchanges, in a process of their own (a real exchange does not share
    the prober's interpreter lock): print their URLs as one JSON line, serve until
    standard input closes, then print how many requests the rate limit refused."""
    mocks = MockExchanges()
    try:
        urls = {}
        for name in EXCHANGES:
            mock = mocks[name]
            mock.state.rate_limit_per_second = int(rate)
            for index in range(per_exchange):
                mock.add_key(_key(name, index))
            urls[name] = mock.url
        print(json.dumps(urls), flush=True)
        sys.stdin.read()
        refused = sum(
            1 for name in EXCHANGES for r in mocks[name].requests() if r.outcome == "rate_limited"
        )
        print(json.dumps({"refused": refused}), flush=True)
    finally:
        mocks.close()


def run(keys: int, rate: float, workers: int) -> dict[str, float]:
    """Probe ``keys`` keys spread over :data:`EXCHANGES`; the figures of the run."""
    per_exchange = keys // len(EXCHANGES)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.probe",
            "--serve",
            str(per_exchange),
            "--rate",
            str(rate),
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdin is not None and server.stdout is not None
        urls = json.loads(server.stdout.readline())
        targets = [
            _target(name, urls[name], _key(name, index), index)
            for name in EXCHANGES
            for index in range(per_exchange)
        ]
        started = time.perf_counter()
        done = probe(
            targets,
            rates=dict.fromkeys(EXCHANGES, rate),
            workers_per_group=workers,
            timeout=10.0,
        )
        wall = time.perf_counter() - started
        server.stdin.close()
        refused = json.loads(server.stdout.readline())["refused"]
    finally:
        server.wait(timeout=30)
    floor = per_exchange / rate
    return {
        "keys": len(targets),
        "ok": sum(1 for result in done.results if result.outcome.ok),
        "refused_by_rate_limit": refused,
        "wall_s": wall,
        "floor_s": floor,
        "ratio": wall / floor,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.probe")
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.rate)
        return 0
    figures = run(args.keys, args.rate, args.workers)
    met = figures["ratio"] <= TARGET_RATIO and figures["ok"] == figures["keys"]
    print(
        f"probe: {figures['keys']:.0f} keys over {len(EXCHANGES)} exchanges at "
        f"{args.rate:g} requests/s each: {figures['wall_s']:.2f} s "
        f"(floor {figures['floor_s']:.2f} s, ratio {figures['ratio']:.2f}, target <= "
        f"{TARGET_RATIO}); {figures['ok']:.0f} ok, "
        f"{figures['refused_by_rate_limit']:.0f} refused by the rate limit; "
        f"{'met' if met else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
