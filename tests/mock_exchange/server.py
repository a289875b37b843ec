"""The HTTP side of the mock: one ``ThreadingHTTPServer`` per exchange on 127.0.0.1
(a free port each, in a daemon thread), answering with that exchange's dialect.

Each request goes through, in order: the rate limit, the injected faults, the route
(public, or private after authentication), and is logged.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.mock_exchange import subaccount_keys  # noqa: F401  (installs its routes)
from tests.mock_exchange.exchanges import DIALECTS, Dialect, Refused, Reply, Request
from tests.mock_exchange.registry import Account, ApiKey, ExchangeState, Fault, RequestRecord

#: The largest request body the mock reads (a client sending more is refused).
MAX_REQUEST_BODY = 1024 * 1024


class MockExchange:
    """One exchange served on 127.0.0.1: its state (keys, faults, log) and server."""

    def __init__(self, exchange: str) -> None:
        self.dialect: Dialect = DIALECTS[exchange]()
        self.state = ExchangeState(exchange)
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"mock-{exchange}",
            daemon=True,
        )
        self._thread.start()
        self._stopped = False

    @property
    def name(self) -> str:
        return self.state.exchange

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (still the same after :meth:`stop`)."""
        return f"http://127.0.0.1:{self.port}"

    # Shortcuts to the state, for tests.
    def add_key(self, key: ApiKey) -> ApiKey:
        return self.state.add_key(key)

    def add_account(self, account: Account) -> Account:
        return self.state.add_account(account)

    def inject(self, fault: Fault) -> None:
        self.state.inject(fault)

    def requests(self) -> list[RequestRecord]:
        return self.state.requests()

    def stop(self) -> None:
        """Close the port: later connections are refused. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ answering
    def answer(self, request: Request) -> tuple[Reply, str | None, str]:
        """The reply to ``request``, the verified key (if any) and the outcome."""
        state, dialect = self.state, self.dialect
        if state.over_rate_limit():
            return dialect.canned("rate_limited", state), None, "rate_limited"
        fault = state.take_fault(request.path, request.method)
        if fault is not None:
            if fault.kind == "delay":
                # Wait, but let stop() end the wait (so teardown never hangs).
                self.stopping.wait(fault.seconds)
            else:
                return self._fault_reply(fault), None, fault.kind
        route = (request.method, request.path)
        if route in dialect.public:
            data = dialect.public[route](state, request)
            return Reply.json(200, dialect.success(data, state)), None, "ok"
        if route in dialect.private:
            try:
                key = dialect.authenticate(state, request)
                # A route may refuse too (a key without the right, a bad parameter).
                data = dialect.private[route](state, request, key)
            except Refused as refused:
                return dialect.refusal(refused, state), None, refused.reason
            return Reply.json(200, dialect.success(data, state)), key.api_key, "ok"
        return (
            Reply(404, b"<html><body>404 Not Found</body></html>", (), "text/html"),
            None,
            "unknown_path",
        )

    def _fault_reply(self, fault: Fault) -> Reply:
        state = self.state
        if fault.kind == "server_error":
            page = f"<html><body><h1>{fault.status} Bad Gateway</h1></body></html>"
            return Reply(fault.status, page.encode(), (), "text/html")
        if fault.kind == "maintenance":
            return self.dialect.canned("maintenance", state)
        if fault.kind == "too_many_requests":
            return self.dialect.canned("rate_limited", state, retry_after=fault.seconds)
        if fault.kind == "malformed":
            return Reply(200, b'{"code":"0","data":[{"truncated": tru')
        if fault.kind == "oversized":
            head, tail = b'{"padding":"', b'"}'
            padding = b"x" * max(0, fault.size - len(head) - len(tail))
            return Reply(200, head + padding + tail)
        raise ValueError(f"unknown fault {fault.kind!r}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _handler_for(exchange: MockExchange) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"mock-{exchange.name}"

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BODY:
                self.send_error(413)
                return
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = Request(
                method=self.command,
                path=split.path,
                raw_query=split.query,
                headers=headers,
                body=body,
                client_ip=self._client_ip(headers),
            )
            reply, api_key, outcome = exchange.answer(request)
            exchange.state.record(
                RequestRecord(
                    exchange=exchange.name,
                    method=self.command,
                    path=split.path,
                    at=time.time(),
                    api_key=api_key,
                    status=reply.status,
                    outcome=outcome,
                )
            )
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nothing to answer to

        def _client_ip(self, headers: dict[str, str]) -> str:
            state = exchange.state
            if state.client_ip is not None:
                return state.client_ip
            forwarded = headers.get("x-forwarded-for")
            if state.trust_forwarded_for and forwarded:
                return forwarded.split(",")[0].strip()
            return str(self.client_address[0])

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass  # the request log replaces stderr noise

    return Handler


class MockExchanges:
    """The set of mock exchanges of one test, started on first use."""

    def __init__(self) -> None:
        self._started: dict[str, MockExchange] = {}

    def __getitem__(self, exchange: str) -> MockExchange:
        if exchange not in self._started:
            self._started[exchange] = MockExchange(exchange)
        return self._started[exchange]

    def close(self) -> None:
        for mock in self._started.values():
            mock.stop()
