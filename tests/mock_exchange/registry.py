"""What a mock exchange knows: its accounts and API keys (filled by the tests), the
faults a test switched on, its rate limit, and the log of every request it answered.

Permissions are kept in each exchange's own vocabulary (``enableReading`` for Binance,
``General`` for KuCoin, ``read_only`` for OKX, ``Spot:SpotTrade`` for Bybit...): the
mock reports them as the exchange would, and translating them is the client's job.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


def now_ms() -> int:
    """The wall clock in milliseconds (the mock's clock adds its own offset to it)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Account:
    """An exchange account; ``parent`` is the master account's uid for a sub-account."""

    uid: str
    name: str = ""
    parent: str | None = None

    @property
    def is_sub(self) -> bool:
        return self.parent is not None


@dataclass
class ApiKey:
    """One API key as the exchange stores it.

    ``permissions`` use the exchange's own names; ``ip_whitelist`` empty means any IP;
    ``expires_at`` None means no expiry; ``fields`` overrides or adds fields of the
    introspection answer (for the exchange-specific details a test wants to set).
    ``highest_nonce`` is Kraken's last accepted nonce (the mock updates it).
    """

    api_key: str
    secret: str
    account: Account
    passphrase: str | None = None
    permissions: tuple[str, ...] = ()
    ip_whitelist: tuple[str, ...] = ()
    label: str = "mock key"
    created_at: datetime = field(
        default_factory=lambda: datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)
    )
    expires_at: datetime | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    highest_nonce: int = 0

    def __repr__(self) -> str:
        # Never show the secret or the passphrase, even in a failing test's output.
        return f"ApiKey(api_key={self.api_key!r}, account={self.account.uid!r})"

    def expired(self, at_ms: int) -> bool:
        return self.expires_at is not None and self.expires_at.timestamp() * 1000 <= at_ms

    def created_ms(self) -> int:
        return int(self.created_at.timestamp() * 1000)


@dataclass
class Fault:
    """A fault a test switches on for one exchange (see the constructors).

    ``path`` limits it to one request path, ``method`` to one HTTP method (a listing
    and a create share a path on OKX, KuCoin and Gate); ``times`` to that many
    requests (None: until :meth:`ExchangeState.clear_faults`).
    """

    kind: str
    status: int = 0
    seconds: float = 0.0
    size: int = 0
    path: str | None = None
    times: int | None = None
    method: str | None = None

    @classmethod
    def server_error(cls, status: int = 502, **where: Any) -> Fault:
        """A gateway's 5xx answer with an HTML body."""
        return cls("server_error", status=status, **where)

    @classmethod
    def maintenance(cls, **where: Any) -> Fault:
        """The exchange's own "under maintenance" answer."""
        return cls("maintenance", **where)

    @classmethod
    def too_many_requests(cls, retry_after: float = 1.0, **where: Any) -> Fault:
        """A 429 with ``Retry-After`` and the exchange's rate-limit code."""
        return cls("too_many_requests", status=429, seconds=retry_after, **where)

    @classmethod
    def delay(cls, seconds: float, **where: Any) -> Fault:
        """Answer normally, but only after ``seconds`` (longer than a client's timeout)."""
        return cls("delay", seconds=seconds, **where)

    @classmethod
    def malformed(cls, **where: Any) -> Fault:
        """A 200 whose body is not JSON."""
        return cls("malformed", **where)

    @classmethod
    def oversized(cls, size: int = 8 * 1024 * 1024, **where: Any) -> Fault:
        """A 200 whose JSON body is ``size`` bytes long."""
        return cls("oversized", size=size, **where)


@dataclass(frozen=True)
class RequestRecord:
    """One request the mock answered: ``api_key`` is set only once its signature was
    verified; ``outcome`` is ``ok``, the refusal (``bad_signature``...) or the fault."""

    exchange: str
    method: str
    path: str
    at: float
    api_key: str | None
    status: int
    outcome: str


class ExchangeState:
    """The mutable state of one mock exchange, shared with its server's threads."""

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.lock = threading.Lock()
        self.keys: dict[str, ApiKey] = {}
        self.accounts: dict[str, Account] = {}
        self.faults: list[Fault] = []
        self.log: list[RequestRecord] = []
        #: Added to the wall clock to give the exchange's clock (a skewed server).
        self.clock_offset_ms = 0
        #: The client IP the mock sees; None: the connection's peer address (or the
        #: first X-Forwarded-For address when ``trust_forwarded_for`` is set).
        self.client_ip: str | None = None
        self.trust_forwarded_for = False
        self.rate_limit_per_second: int | None = None
        self._recent: deque[float] = deque()

    # ------------------------------------------------------------------ registry
    def add_account(self, account: Account) -> Account:
        with self.lock:
            self.accounts[account.uid] = account
        return account

    def add_key(self, key: ApiKey) -> ApiKey:
        """Register a key (and its account)."""
        with self.lock:
            self.accounts.setdefault(key.account.uid, key.account)
            self.keys[key.api_key] = key
        return key

    def key(self, api_key: str) -> ApiKey | None:
        with self.lock:
            return self.keys.get(api_key)

    def keys_of(self, uid: str) -> list[ApiKey]:
        with self.lock:
            return [key for key in self.keys.values() if key.account.uid == uid]

    def sub_accounts_of(self, uid: str) -> set[str]:
        """The uids of the sub-accounts whose master is ``uid``."""
        with self.lock:
            return {account.uid for account in self.accounts.values() if account.parent == uid}

    def clock_ms(self) -> int:
        return now_ms() + self.clock_offset_ms

    # ------------------------------------------------------------------ faults
    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take_fault(self, path: str, method: str = "GET") -> Fault | None:
        """The first active fault for ``method`` ``path``, counting one use of it."""
        with self.lock:
            for fault in self.faults:
                if fault.path is not None and fault.path != path:
                    continue
                if fault.method is not None and fault.method != method:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    def over_rate_limit(self) -> bool:
        """Count a request; True when it is beyond ``rate_limit_per_second`` over the
        last second (a refused request counts too, as on the exchanges)."""
        with self.lock:
            now = time.monotonic()
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            self._recent.append(now)
            limit = self.rate_limit_per_second
            return limit is not None and len(self._recent) > limit

    # ------------------------------------------------------------------ log
    def record(self, record: RequestRecord) -> None:
        with self.lock:
            self.log.append(record)

    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self.lock:
            return list(self.log)
