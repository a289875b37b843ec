"""``exvault check``, ``rotate``, ``policy`` and ``schedule`` through the CLI.

``check`` reads its clock from ``vault.format.model.utc_now`` when it runs, so the tests
move that clock (the ``check_at`` fixture). The test vaults use a weak KDF on purpose,
which ``check`` reports as critical (``kdf-weak``); tests about the other findings
accept that KDF with the ``fine_kdf`` fixture.

binance-main and kucoin-sub1 (``stocked_cli``) were issued 2025-09-01 with IP
whitelists; binance-main is read,trade, kucoin-sub1 read.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

import vault.format.model
import vault.owner.rotation
from tests.conftest import BINANCE_API_KEY, BINANCE_SECRET, PASSPHRASE, TEST_KDF
from vault.db.inventory import Inventory
from vault.exchanges.key_report import KeyReport, ProbeError, ProbeOutcome
from vault.format import kdf_params
from vault.format.model import utc_now
from vault.format.policy import ACCEPTABLE_FINDINGS
from vault.ops import observations
from vault.owner.admin import AdminVault

UTC = timezone.utc
ISSUED = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)
CLEAN = ISSUED + timedelta(days=9)  # nothing to report
WARN = ISSUED + timedelta(days=80)  # age-due-soon (warn)
CRITICAL = ISSUED + timedelta(days=95)  # age-overdue (critical)

NEW_API_KEY = "Zr8kQ2wX7nB4vL1pT6yH3mJ9cF5dS0aGeRuIoKxNqWzEbVtYhCsMlPjDfAgUiOn2"
NEW_SECRET = "p4Lk9Qw2Er7Ty1Ui6Op3As8Df5Gh0Jk4Zx9Cv2Bn7Mq1Wz6Xe3Rc8Vt5By0Nu4Im"
NEW_JSON = json.dumps({"api_key": NEW_API_KEY, "secret": NEW_SECRET})
SECRETS = (BINANCE_API_KEY, BINANCE_SECRET, NEW_API_KEY, NEW_SECRET)

WITHDRAW_WARNING = (
    'warning: "binance-main" can withdraw and has no IP whitelist: check reports it as '
    "critical (withdraw-without-ip), which no reason can accept; bind the key to IPs "
    "(exvault edit binance-main --ip ...) or remove withdraw at the exchange\n"
)

# A webhook URL that carries its secret in the path and the query, as Slack's do.
HOOK_PATH = "/services/T0PSECRETPATH/hook"
HOOK_QUERY = "?token=QUERYSECRET123"


@pytest.fixture
def check_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the clock ``exvault check`` runs at."""

    def set_clock(when: datetime) -> None:
        monkeypatch.setattr(vault.format.model, "utc_now", lambda: when)

    return set_clock


@pytest.fixture
def fine_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the test KDF meet the floor and the default, so kdf-weak does not fire."""
    monkeypatch.setattr(kdf_params, "KDF_FLOOR", TEST_KDF)
    monkeypatch.setattr(kdf_params, "KDF_DEFAULT_MEMORY_KIB", TEST_KDF.memory_kib)


def admin_of(cli) -> AdminVault:  # type: ignore[no-untyped-def]
    return AdminVault.unlock(cli.vault_path, PASSPHRASE)


def info_of(cli, name: str = "binance-main"):  # type: ignore[no-untyped-def]
    with Inventory.open(cli.vault_path) as inv:
        return inv.describe(name)


def no_secret(text: str) -> None:
    for value in SECRETS:
        assert value not in text


def table_codes(stdout: str) -> list[tuple[str, str, str]]:
    """(SEVERITY, CREDENTIAL, CODE) of each row of the findings table."""
    lines = stdout.splitlines()
    assert lines[0].split() == ["SEVERITY", "CREDENTIAL", "CODE", "MESSAGE"]
    return [tuple(line.split()[:3]) for line in lines[1:]]  # type: ignore[misc]


# ------------------------------------------------------------------------------ check


def _probe(cli, outcome: ProbeOutcome) -> None:  # type: ignore[no-untyped-def]
    with admin_of(cli) as admin:
        observations.record(admin, "binance-main", 1, outcome)


# The probe entries are dated by the real clock (a later one would not count), so these
# checks run at the real time too; the vault's keys are old by then (age-overdue).
GOOD = KeyReport(("read", "trade"), True, ("203.0.113.7",), None, None)


def test_check_reports_the_latest_probe(stocked_cli, fine_kdf) -> None:
    wide = GOOD._replace(permissions=("read", "trade", "withdraw"))
    _probe(stocked_cli, ProbeOutcome(utc_now(), wide, None, 2500, 5000))
    r = stocked_cli.v("check")
    assert r.exit_code == 2, r.output
    rows = table_codes(r.stdout)
    assert ("CRITICAL", "binance-main", "exchange-permission-wider") in rows
    assert ("WARN", "binance-main", "clock-skew") in rows
    as_json = stocked_cli.v("check", "--json").stdout
    found = json.loads(as_json)["findings"]
    assert {"exchange-permission-wider", "clock-skew"} <= {f["code"] for f in found}
    for secret in (BINANCE_API_KEY, BINANCE_SECRET):
        assert secret not in r.output + as_json


def test_check_lists_probe_stale_with_all_only(stocked_cli, fine_kdf) -> None:
    _probe(stocked_cli, ProbeOutcome(utc_now() - timedelta(days=8), GOOD, None, 0, 5000))
    assert "probe-stale" not in stocked_cli.v("check").stdout
    assert ("OK", "binance-main", "probe-stale") in table_codes(
        stocked_cli.v("check", "--all").stdout
    )


def test_check_reports_a_deleted_observation(stocked_cli, fine_kdf) -> None:
    _probe(stocked_cli, ProbeOutcome(utc_now(), GOOD, None, 0, 5000))
    assert "probe-evidence-missing" not in stocked_cli.v("check").stdout
    db = sqlite3.connect(stocked_cli.vault_path)
    with db:
        db.execute("DELETE FROM probe_observations")
    db.close()
    r = stocked_cli.v("check")
    assert r.exit_code == 2
    assert ("CRITICAL", "binance-main", "probe-evidence-missing") in table_codes(r.stdout)


def _last_probe_series(text: str) -> list[tuple[dict[str, str], float]]:
    return _families(text)["exvault_credential_last_probe_timestamp_seconds"]


def test_check_exports_the_last_successful_probe(stocked_cli, fine_kdf, tmp_path) -> None:
    # Never probed: no series (kucoin-sub1 keeps none throughout).
    assert _last_probe_series(stocked_cli.v("check", "--prometheus").stdout) == []
    answered = (utc_now() - timedelta(hours=2)).replace(microsecond=0)
    _probe(stocked_cli, ProbeOutcome(answered, GOOD, None, 0, 5000))
    # A later rejected key is a verdict, not a successful probe: the time stays.
    rejected = ProbeError("rejected-key", "invalid-key", "-2015", "invalid API key")
    _probe(stocked_cli, ProbeOutcome(utc_now(), None, rejected, 0, 5000))
    expected = [({"credential": "binance-main"}, answered.timestamp())]
    assert _last_probe_series(stocked_cli.v("check", "--prometheus").stdout) == expected
    target = tmp_path / "exvault.prom"
    stocked_cli.v("check", "--quiet", "--textfile", str(target))
    assert _last_probe_series(target.read_text()) == expected
    # Only an authenticated observation counts: deleted, it is no longer exported.
    db = sqlite3.connect(stocked_cli.vault_path)
    with db:
        db.execute("DELETE FROM probe_observations")
    db.close()
    assert _last_probe_series(stocked_cli.v("check", "--prometheus").stdout) == []


def test_check_all_ok(stocked_cli, check_at, fine_kdf) -> None:
    check_at(CLEAN)
    r = stocked_cli.v("check")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "All 2 credentials ok.\n", "")
    for args in (("--quiet",), ("--quiet", "--fail-on", "warn"), ("--fail-on", "warn")):
        r = stocked_cli.v("check", *args)
        assert r.exit_code == 0, args
        assert r.stdout == ("" if "--quiet" in args else "All 2 credentials ok.\n"), args


def test_check_warnings(stocked_cli, check_at, fine_kdf) -> None:
    check_at(WARN)
    r = stocked_cli.v("check")
    assert r.exit_code == 0  # --fail-on critical by default
    rows = table_codes(r.stdout)
    assert rows == [
        ("WARN", "binance-main", "age-due-soon"),
        ("WARN", "kucoin-sub1", "age-due-soon"),
    ]
    assert "exvault rotate start binance-main" in r.stdout

    quiet = stocked_cli.v("check", "--quiet")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")

    loud = stocked_cli.v("check", "--quiet", "--fail-on", "warn")
    assert loud.exit_code == 1
    assert loud.stdout == r.stdout  # the same findings, printed for cron to mail
    assert stocked_cli.v("check", "--fail-on", "warn").exit_code == 1


def test_check_critical(stocked_cli, check_at, fine_kdf) -> None:
    check_at(CRITICAL)
    for args in ((), ("--quiet",), ("--fail-on", "warn"), ("--quiet", "--fail-on", "warn")):
        r = stocked_cli.v("check", *args)
        assert r.exit_code == 2, args
        rows = table_codes(r.stdout)
        assert rows[0] == ("CRITICAL", "binance-main", "age-overdue"), args
        assert rows == [
            ("CRITICAL", "binance-main", "age-overdue"),
            ("CRITICAL", "kucoin-sub1", "age-overdue"),
        ], args


def test_check_reports_the_weak_test_kdf(stocked_cli, check_at) -> None:
    check_at(CLEAN)
    r = stocked_cli.v("check")
    assert r.exit_code == 2
    assert table_codes(r.stdout) == [("CRITICAL", "(vault)", "kdf-weak")]


def test_check_all_lists_accepted_risks(stocked_cli, check_at, fine_kdf) -> None:
    r = stocked_cli.unlocked(
        "policy", "accept-risk", "kucoin-sub1", "stale", "--reason", "kept for audits"
    )
    assert r.exit_code == 0, r.output
    check_at(utc_now() + timedelta(days=31))  # a month after the keys were added
    r = stocked_cli.v("check")
    assert r.exit_code == 2  # age-overdue: the keys were issued long ago
    assert ("WARN", "binance-main", "stale") in table_codes(r.stdout)
    assert ("OK", "kucoin-sub1", "stale") not in table_codes(r.stdout)
    r = stocked_cli.v("check", "--all")
    assert ("OK", "kucoin-sub1", "stale") in table_codes(r.stdout)
    assert ("WARN", "binance-main", "stale") in table_codes(r.stdout)


def test_check_json(stocked_cli, check_at, fine_kdf) -> None:
    check_at(WARN)
    for args in (("--json",), ("--format", "json")):
        r = stocked_cli.v("check", *args)
        assert r.exit_code == 0
        doc = json.loads(r.stdout)
        assert doc["generated_at"] == WARN.isoformat()
        assert doc["credentials"] == 2
        assert doc["worst"] == "warn"
        assert doc["counts"] == {"ok": 0, "warn": 2, "critical": 0}
        assert [(f["credential"], f["code"]) for f in doc["findings"]] == [
            ("binance-main", "age-due-soon"),
            ("kucoin-sub1", "age-due-soon"),
        ]
        assert all(set(f) == {"severity", "code", "credential", "message"} for f in doc["findings"])
    quiet = stocked_cli.v("check", "--json", "--quiet", "--fail-on", "warn")
    assert quiet.exit_code == 1 and json.loads(quiet.stdout)["worst"] == "warn"
    assert stocked_cli.v("check", "--json", "--quiet").stdout == ""


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge"
        out[family.name] = [(dict(s.labels), s.value) for s in family.samples]
    return out


def test_check_prometheus(stocked_cli, check_at) -> None:
    check_at(WARN)  # kdf-weak (critical, vault-wide) and two warnings
    r = stocked_cli.v("check", "--format", "prometheus")
    assert r.exit_code == 2
    families = _families(r.stdout)
    assert families["exvault_credentials"] == [({}, 2.0)]
    assert sorted(families["exvault_findings"], key=lambda s: s[0]["severity"]) == [
        ({"severity": "critical"}, 1.0),
        ({"severity": "ok"}, 0.0),
        ({"severity": "warn"}, 2.0),
    ]
    findings = {
        (labels["credential"], labels["code"], labels["severity"]): value
        for labels, value in families["exvault_finding"]
    }
    assert findings == {
        ("", "kdf-weak", "critical"): 2.0,
        ("binance-main", "age-due-soon", "warn"): 1.0,
        ("kucoin-sub1", "age-due-soon", "warn"): 1.0,
    }
    assert families["exvault_check_timestamp_seconds"] == [({}, WARN.timestamp())]
    assert stocked_cli.v("check", "--format", "prometheus", "--quiet").exit_code == 2


def test_check_prometheus_with_nothing_to_report(stocked_cli, check_at, fine_kdf) -> None:
    check_at(CLEAN)
    r = stocked_cli.v("check", "--format", "prometheus")
    assert r.exit_code == 0
    families = _families(r.stdout)
    assert families["exvault_finding"] == []
    assert {s[0]["severity"]: s[1] for s in families["exvault_findings"]} == {
        "ok": 0.0,
        "warn": 0.0,
        "critical": 0.0,
    }
    # --quiet prints nothing, so a textfile collector must not be fed with --quiet.
    assert stocked_cli.v("check", "--format", "prometheus", "--quiet").stdout == ""


def test_check_prometheus_escapes_labels() -> None:
    from vault.cli.checks import render_prometheus
    from vault.ops.checks import Finding, Report

    odd = 'we"ird\\name\nx'
    report = Report(CLEAN, 1, (Finding("warn", "stale", odd, "m"),))
    families = _families(render_prometheus(report))
    assert families["exvault_finding"] == [
        ({"credential": odd, "code": "stale", "severity": "warn"}, 1.0)
    ]


def test_check_prometheus_has_no_duplicate_series(stocked_cli, check_at) -> None:
    with admin_of(stocked_cli) as admin:
        now = utc_now()
        admin.add_client("bot-a", expires_at=now + timedelta(days=3))
        admin.add_client("bot-b", expires_at=now + timedelta(days=4))
    check_at(now)
    r = stocked_cli.v("check", "--format", "prometheus")
    samples = [
        (family.name, tuple(sorted(s.labels.items())))
        for family in text_string_to_metric_families(r.stdout)
        for s in family.samples
    ]
    assert len(samples) == len(set(samples))


def test_check_prometheus_per_credential_gauges(stocked_cli, check_at, fine_kdf) -> None:
    assert stocked_cli.unlocked("edit", "kucoin-sub1", "--expires", "2025-12-01").exit_code == 0
    check_at(WARN)  # 80 days after issue: both age-due-soon; kucoin-sub1 expires in 11 days
    families = _families(stocked_cli.v("check", "--format", "prometheus").stdout)
    assert families["exvault_credential_age_days"] == [
        ({"credential": "binance-main"}, 80.0),
        ({"credential": "kucoin-sub1"}, 80.0),
    ]
    assert families["exvault_credential_days_to_expiry"] == [({"credential": "kucoin-sub1"}, 11.0)]
    assert families["exvault_credential_worst_severity"] == [
        ({"credential": "binance-main"}, 1.0),
        ({"credential": "kucoin-sub1"}, 1.0),
    ]
    check_at(CRITICAL)
    families = _families(stocked_cli.v("check", "--format", "prometheus").stdout)
    assert dict(
        (labels["credential"], v) for labels, v in families["exvault_credential_worst_severity"]
    ) == {
        "binance-main": 2.0,
        "kucoin-sub1": 2.0,
    }


def test_check_textfile_is_written_whatever_is_printed(
    stocked_cli, check_at, fine_kdf, tmp_path
) -> None:
    check_at(CLEAN)
    (tmp_path / "textfiles").mkdir()
    target = tmp_path / "textfiles" / "exvault.prom"
    r = stocked_cli.v("check", "--quiet", "--textfile", str(target))
    assert (r.exit_code, r.stdout) == (0, "")
    families = _families(target.read_text())
    assert families["exvault_credentials"] == [({}, 2.0)]
    assert families["exvault_check_timestamp_seconds"] == [({}, CLEAN.timestamp())]
    # Replaced by the next run, leaving no temporary file beside it.
    check_at(CRITICAL)
    r = stocked_cli.v("check", "--json", "--textfile", str(target))
    assert r.exit_code == 2 and json.loads(r.stdout)["worst"] == "critical"
    families = _families(target.read_text())
    assert families["exvault_check_timestamp_seconds"] == [({}, CRITICAL.timestamp())]
    assert [p.name for p in target.parent.iterdir()] == ["exvault.prom"]


def test_check_textfile_that_cannot_be_written(
    stocked_cli, check_at, fine_kdf, tmp_path, one_error_line
) -> None:
    check_at(CLEAN)
    line = one_error_line(
        stocked_cli.v("check", "--textfile", str(tmp_path / "missing" / "exvault.prom")), 8
    )
    assert "cannot write" in line and "exvault.prom" in line


def test_check_without_a_vault(cli, tmp_path, one_error_line) -> None:
    r = cli("check", "--vault", str(tmp_path / "none" / "vault.db"))
    one_error_line(r, 8)


@pytest.mark.parametrize(
    "args",
    [
        ("--fail-on", "ok"),
        ("--fail-on", "bogus"),
        ("--format", "xml"),
        ("--no-such-option",),
        ("extra-argument",),
    ],
)
def test_check_usage_errors_exit_64(stocked_cli, one_error_line, args) -> None:
    line = one_error_line(stocked_cli.v("check", *args), 64)
    assert "check --help" in line


def test_check_needs_no_passphrase(stocked_cli, check_at, fine_kdf, monkeypatch) -> None:
    import vault.cli.prompts

    def refuse(*_a, **_k):  # type: ignore[no-untyped-def]
        raise AssertionError("check asked for the passphrase")

    monkeypatch.setattr(vault.cli.prompts, "passphrase", refuse)
    check_at(CLEAN)
    assert stocked_cli.v("check").exit_code == 0


# ---------------------------------------------------------------------------- webhook


class Hook:
    """A webhook receiver on 127.0.0.1 (a real HTTP server in a thread)."""

    def __init__(self) -> None:
        self.status = 200
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.received.append((self.path, dict(self.headers), body))
                self.send_response(hook.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{HOOK_PATH}{HOOK_QUERY}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def assert_url_hidden(text: str) -> None:
    assert "T0PSECRETPATH" not in text
    assert "QUERYSECRET123" not in text
    assert HOOK_PATH not in text


def test_webhook_receives_the_report(stocked_cli, check_at, fine_kdf, hook) -> None:
    check_at(WARN)
    r = stocked_cli.v("check", "--json", "--notify-url", hook.url)
    assert r.exit_code == 0 and r.stderr == ""
    assert len(hook.received) == 1
    path, headers, body = hook.received[0]
    assert path == HOOK_PATH + HOOK_QUERY
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == json.loads(r.stdout)
    assert json.loads(body)["worst"] == "warn"


def test_webhook_from_the_environment(stocked_cli, check_at, fine_kdf, hook) -> None:
    check_at(CRITICAL)
    r = stocked_cli(
        "check",
        "--quiet",
        "--vault",
        str(stocked_cli.vault_path),
        env={"EXVAULT_NOTIFY_URL": hook.url},
    )
    assert r.exit_code == 2
    assert [json.loads(b)["worst"] for _, _, b in hook.received] == ["critical"]


def test_webhook_quiet_when_nothing_found(stocked_cli, check_at, fine_kdf, hook) -> None:
    check_at(CLEAN)
    r = stocked_cli.v("check", "--notify-url", hook.url)
    assert r.exit_code == 0
    assert hook.received == []


def test_webhook_sent_for_warnings_below_fail_on(stocked_cli, check_at, fine_kdf, hook) -> None:
    """--quiet and --fail-on decide what is printed and the exit code; the webhook hears
    of every finding at warn or above."""
    check_at(WARN)
    r = stocked_cli.v("check", "--quiet", "--notify-url", hook.url)
    assert (r.exit_code, r.stdout) == (0, "")
    assert len(hook.received) == 1


@pytest.mark.parametrize(
    ("when", "fail_on", "code"), [(WARN, "warn", 1), (CRITICAL, "critical", 2)]
)
def test_webhook_answering_500(stocked_cli, check_at, fine_kdf, hook, when, fail_on, code) -> None:
    check_at(when)
    hook.status = 500
    plain = stocked_cli.v("check", "--fail-on", fail_on)
    r = stocked_cli.v("check", "--fail-on", fail_on, "--notify-url", hook.url)
    assert len(hook.received) == 1
    assert r.exit_code == code == plain.exit_code
    assert r.stdout == plain.stdout  # the findings are all there
    assert r.stderr == (
        "exvault: warning: could not notify: webhook at http://127.0.0.1 answered HTTP 500\n"
    )
    assert_url_hidden(r.output)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


def test_webhook_unreachable(stocked_cli, check_at, fine_kdf) -> None:
    check_at(CRITICAL)
    url = f"http://127.0.0.1:{_closed_port()}{HOOK_PATH}{HOOK_QUERY}"
    plain = stocked_cli.v("check", "--quiet", "--fail-on", "warn")
    r = stocked_cli.v("check", "--quiet", "--fail-on", "warn", "--notify-url", url)
    assert r.exit_code == 2
    assert r.stdout == plain.stdout and "age-overdue" in r.stdout
    assert r.stderr.startswith("exvault: warning: could not notify: webhook at http://127.0.0.1 ")
    assert len(r.stderr.splitlines()) == 1
    assert_url_hidden(r.output)


def assert_url_refused(r) -> None:  # type: ignore[no-untyped-def]
    """Refused before the check ran: exit 7, one line that shows nothing of the URL."""
    assert (r.exit_code, r.stdout) == (7, ""), r.output
    assert r.stderr.startswith("exvault: error: the notify URL must be an http:// or https://")
    assert len(r.stderr.splitlines()) == 1
    assert "Traceback" not in r.output
    assert_url_hidden(r.output)


def test_webhook_bad_scheme_is_refused_up_front(stocked_cli, check_at, fine_kdf) -> None:
    check_at(CRITICAL)
    assert_url_refused(stocked_cli.v("check", "--notify-url", "ftp://example.net" + HOOK_PATH))


# The HTTP library refuses these in a URL with an error that quotes the URL's path.
BAD_URL_CHARACTERS = {
    "space": " ",
    "carriage-return": "\r",
    "line-feed": "\n",
    "tab": "\t",
    "delete": "\x7f",
    "escape": "\x1b",
    "non-ascii": "\u00e9",
}


@pytest.mark.parametrize("char", BAD_URL_CHARACTERS.values(), ids=list(BAD_URL_CHARACTERS))
def test_webhook_url_with_a_bad_character_never_shows_its_path(
    stocked_cli, check_at, fine_kdf, hook, char
) -> None:
    check_at(CRITICAL)
    url = f"http://127.0.0.1:{hook.port}/services/T0PSECRETPATH{char}SECONDHALF{HOOK_QUERY}"
    r = stocked_cli.v("check", "--notify-url", url)
    assert_url_refused(r)
    assert "SECONDHALF" not in r.output
    assert hook.received == []


def test_webhook_url_with_a_carriage_return_from_the_environment(
    stocked_cli, check_at, fine_kdf, hook
) -> None:
    check_at(CRITICAL)
    url = f"http://127.0.0.1:{hook.port}{HOOK_PATH}\r{HOOK_QUERY}"
    r = stocked_cli(
        "check", "--vault", str(stocked_cli.vault_path), env={"EXVAULT_NOTIFY_URL": url}
    )
    assert_url_refused(r)
    assert hook.received == []


def test_webhook_answering_garbage(stocked_cli, check_at, fine_kdf) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        check_at(CRITICAL)
        url = f"http://127.0.0.1:{server.getsockname()[1]}{HOOK_PATH}"
        r = stocked_cli.v("check", "--notify-url", url)
    finally:
        thread.join(10)
        server.close()
    assert "age-overdue" in r.stdout
    assert r.exit_code == 2, r.stderr
    assert "could not notify" in r.stderr


@pytest.mark.parametrize(
    "url",
    ["http://[::1" + HOOK_PATH, "http://127.0.0.1:port" + HOOK_PATH, "http://" + HOOK_PATH],
    ids=["unclosed-bracket", "port-not-a-number", "no-host"],
)
def test_webhook_malformed_url_is_refused_up_front(stocked_cli, check_at, fine_kdf, url) -> None:
    check_at(CRITICAL)
    assert_url_refused(stocked_cli.v("check", "--notify-url", url))


# ---------------------------------------------------------------------------- apprise


def apprise_url(hook: Hook, scheme: str = "json") -> str:
    """An apprise URL for the local receiver: json:// POSTs apprise's JSON payload."""
    return f"{scheme}://127.0.0.1:{hook.port}{HOOK_PATH}"


def test_apprise_url_sends_a_summary(stocked_cli, check_at, fine_kdf, hook) -> None:
    check_at(CRITICAL)
    r = stocked_cli.v("check", "--quiet", "--notify-url", apprise_url(hook))
    assert r.exit_code == 2 and r.stderr == "", r.output
    assert len(hook.received) == 1
    path, headers, body = hook.received[0]
    assert path == HOOK_PATH and headers["Content-Type"].startswith("application/json")
    sent = json.loads(body)
    assert sent["title"] == "exvault check: critical (2 critical, 0 warn)"
    assert sent["message"].splitlines() == [
        "CRITICAL binance-main age-overdue: key is 95 days old, over its maximum age of 90: "
        "rotate it: exvault rotate start binance-main",
        "CRITICAL kucoin-sub1 age-overdue: key is 95 days old, over its maximum age of 90: "
        "rotate it: exvault rotate start kucoin-sub1",
    ]
    for secret in SECRETS:
        assert secret not in body.decode()


def test_apprise_url_from_the_environment_quiet_when_all_is_well(
    stocked_cli, check_at, fine_kdf, hook
) -> None:
    check_at(CLEAN)
    env = {"EXVAULT_NOTIFY_URL": apprise_url(hook)}
    r = stocked_cli("check", "--vault", str(stocked_cli.vault_path), env=env)
    assert r.exit_code == 0 and hook.received == []
    check_at(WARN)
    r = stocked_cli("check", "--vault", str(stocked_cli.vault_path), env=env)
    assert r.exit_code == 0 and len(hook.received) == 1
    assert json.loads(hook.received[0][2])["title"].startswith("exvault check: warn")


def test_apprise_failure_is_a_warning_that_hides_the_url(
    stocked_cli, check_at, fine_kdf, hook
) -> None:
    check_at(CRITICAL)
    hook.status = 500
    plain = stocked_cli.v("check")
    r = stocked_cli.v("check", "--notify-url", apprise_url(hook) + "/T0PSECRETPATH")
    assert len(hook.received) == 1
    assert (r.exit_code, r.stdout) == (plain.exit_code, plain.stdout)
    assert r.stderr == ("exvault: warning: could not notify: notification via json:// failed\n")
    assert_url_hidden(r.output)


def test_apprise_failure_never_shows_the_urls_host(stocked_cli, check_at, fine_kdf) -> None:
    """In apprise's URLs the host position is often the secret (a Telegram bot token):
    a failure names the scheme only."""
    check_at(CRITICAL)
    # A port nobody listens on, so the delivery fails; "127.0.0.1" stands for the token.
    r = stocked_cli.v("check", "--notify-url", "json://127.0.0.1:9/T0PSECRETPATH")
    assert r.stderr.startswith("exvault: warning: could not notify: notification via json:// ")
    assert "127.0.0.1" not in r.stderr
    assert_url_hidden(r.output)


@pytest.mark.parametrize(
    "url",
    ["nosuchservice://host" + HOOK_PATH, "tgram://" + HOOK_PATH, "T0PSECRETPATH"],
    ids=["unknown-scheme", "telegram-without-token", "no-scheme"],
)
def test_apprise_url_it_cannot_parse_is_refused_up_front(
    stocked_cli, check_at, fine_kdf, url
) -> None:
    check_at(CRITICAL)
    assert_url_refused(stocked_cli.v("check", "--notify-url", url))


def test_apprise_missing(
    stocked_cli, check_at, fine_kdf, hook, monkeypatch, one_error_line
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "apprise", None)  # import apprise raises ImportError
    check_at(CRITICAL)
    line = one_error_line(stocked_cli.v("check", "--notify-url", apprise_url(hook)), 8)
    assert "'.[notify]'" in line
    assert hook.received == []
    # A plain webhook needs no apprise.
    assert stocked_cli.v("check", "--notify-url", hook.url).exit_code == 2
    assert len(hook.received) == 1


# ----------------------------------------------------------------------------- rotate


def test_rotate_start_from_json(stocked_cli) -> None:
    r = stocked_cli.unlocked("rotate", "start", "binance-main", "--from-json", "-", input=NEW_JSON)
    assert r.exit_code == 0, r.output
    assert r.stdout == (
        "binance-main: version 2 staged as pending.\n"
        "Next: exvault rotate verify binance-main, then exvault rotate promote binance-main\n"
    )
    no_secret(r.output)
    info = info_of(stocked_cli)
    assert (info.version, info.pending_version) == (1, 2)
    with admin_of(stocked_cli) as admin:
        pending = admin.get("binance-main", stage="pending")
        assert pending.secret.reveal() == NEW_SECRET
        assert pending.permissions == ("read", "trade") and pending.ips == ("203.0.113.7",)

    again = stocked_cli.unlocked(
        "rotate", "start", "binance-main", "--from-json", "-", input=NEW_JSON
    )
    assert again.exit_code == 0
    assert again.stdout == (
        "binance-main: nothing to do (version 2 is already pending with this key).\n"
    )


def test_rotate_start_from_a_file_with_new_scope(stocked_cli, tmp_path) -> None:
    source = tmp_path / "new.json"
    source.write_text(NEW_JSON)
    r = stocked_cli.unlocked(
        "rotate",
        "start",
        "binance-main",
        "--from-json",
        str(source),
        "--permissions",
        "read",
        "--ip",
        "198.51.100.7",
        "--issued",
        "2025-10-01",
        "--expires",
        "2026-10-01",
    )
    assert r.exit_code == 0, r.output
    with admin_of(stocked_cli) as admin:
        pending = admin.get("binance-main", stage="pending")
    assert pending.permissions == ("read",) and pending.ips == ("198.51.100.7",)
    assert str(pending.issued_on) == "2025-10-01" and str(pending.expires_on) == "2026-10-01"


def test_rotate_start_via_prompts(stocked_cli, terminal) -> None:
    r = stocked_cli.unlocked(
        "rotate", "start", "binance-main", input=f"{NEW_API_KEY}\n{NEW_SECRET}\n"
    )
    assert r.exit_code == 0, r.output
    assert "API key" in r.stderr and "API secret" in r.stderr
    no_secret(r.output)  # hidden prompts echo nothing
    with admin_of(stocked_cli) as admin:
        pending = admin.get("binance-main", stage="pending")
    assert pending.api_key.reveal() == NEW_API_KEY
    assert pending.secret.reveal() == NEW_SECRET


def test_rotate_start_while_another_is_pending(stocked_cli, one_error_line) -> None:
    stocked_cli.unlocked("rotate", "start", "binance-main", "--from-json", "-", input=NEW_JSON)
    other = json.dumps({"api_key": "X" * 64, "secret": "Y" * 64})
    r = stocked_cli.unlocked("rotate", "start", "binance-main", "--from-json", "-", input=other)
    line = one_error_line(r, 9)
    assert "already pending (version 2)" in line and "exvault rotate abort binance-main" in line


def test_rotate_start_unknown_credential(stocked_cli, one_error_line) -> None:
    r = stocked_cli.unlocked("rotate", "start", "nope", "--from-json", "-", input=NEW_JSON)
    one_error_line(r, 4)


def test_rotate_verify(stocked_cli) -> None:
    stocked_cli.unlocked("rotate", "start", "binance-main", "--from-json", "-", input=NEW_JSON)
    r = stocked_cli.unlocked("rotate", "verify", "binance-main")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert [line.split(":")[0].split() for line in lines] == [
        ["ok", "decrypts"],
        ["ok", "format"],
        ["ok", "new-key"],
        ["ok", "scope"],
    ]
    r = stocked_cli.unlocked("rotate", "verify", "binance-main", "--json")
    assert r.exit_code == 0
    assert [(c["check"], c["passed"]) for c in json.loads(r.stdout)] == [
        ("decrypts", True),
        ("format", True),
        ("new-key", True),
        ("scope", True),
    ]


def test_rotate_verify_failure_exits_1(stocked_cli) -> None:
    same_secret = json.dumps({"api_key": NEW_API_KEY, "secret": BINANCE_SECRET})
    stocked_cli.unlocked("rotate", "start", "binance-main", "--from-json", "-", input=same_secret)
    r = stocked_cli.unlocked("rotate", "verify", "binance-main")
    assert r.exit_code == 1
    assert (
        "FAIL  new-key: the pending secret is the same as the current one: create a new key "
        "at the exchange" in r.stdout
    )
    no_secret(r.output)
    r = stocked_cli.unlocked("rotate", "verify", "binance-main", "--json")
    assert r.exit_code == 1
    assert {c["check"]: c["passed"] for c in json.loads(r.stdout)}["new-key"] is False


def test_rotate_verify_without_pending(stocked_cli, one_error_line) -> None:
    line = one_error_line(stocked_cli.unlocked("rotate", "verify", "binance-main"), 4)
    assert "no rotation" in line and "exvault rotate start binance-main" in line


def test_rotate_promote_grace_and_finish(stocked_cli) -> None:
    stocked_cli.unlocked("rotate", "start", "binance-main", "--from-json", "-", input=NEW_JSON)
    before = utc_now()
    r = stocked_cli.unlocked("rotate", "promote", "binance-main", "--grace", "2h")
    after = utc_now()
    assert r.exit_code == 0, r.output
    info = info_of(stocked_cli)
    assert (info.version, info.pending_version, info.previous_version) == (2, None, 1)
    assert before + timedelta(hours=2) <= info.previous_until <= after + timedelta(hours=2)
    assert r.stdout == (
        "binance-main: version 2 is current; the previous key stays readable until "
        f"{info.previous_until:%Y-%m-%d %H:%M} UTC.\n"
    )
    again = stocked_cli.unlocked("rotate", "promote", "binance-main")
    assert (again.exit_code, again.stdout) == (
        0,
        "binance-main: nothing to do (already promoted: version 2 is current).\n",
    )

    r = stocked_cli.unlocked("rotate", "finish", "binance-main", "--force")
    assert r.exit_code == 0, r.output
    assert r.stdout == (
        "binance-main: version 1 dropped; delete that key at the exchange now if you have not.\n"
    )
    assert info_of(stocked_cli).previous_version is None
    again = stocked_cli.unlocked("rotate", "finish", "binance-main")
    assert (again.exit_code, again.stdout) == (
        0,
        "binance-main: nothing to do (nothing to finish).\n",
    )


def promoted(cli, grace: str = "2h") -> datetime:  # type: ignore[no-untyped-def]
    """Rotate binance-main to version 2 with ``grace``; when its grace period ends."""
    r = cli.unlocked("rotate", "start", "binance-main", "--from-json", "-", input=NEW_JSON)
    assert r.exit_code == 0, r.output
    r = cli.unlocked("rotate", "promote", "binance-main", "--grace", grace)
    assert r.exit_code == 0, r.output
    until: datetime = info_of(cli).previous_until
    return until


def rotation_clock(monkeypatch: pytest.MonkeyPatch, when: datetime) -> None:
    """Set the clock the rotation steps run at."""
    monkeypatch.setattr(vault.owner.rotation, "utc_now", lambda: when)


def test_rotate_finish_refused_during_grace(stocked_cli, one_error_line, snapshot) -> None:
    until = promoted(stocked_cli)
    before = snapshot()
    line = one_error_line(stocked_cli.unlocked("rotate", "finish", "binance-main"), 9)
    assert f"runs until {until:%Y-%m-%d %H:%M} UTC" in line
    assert "exvault rotate finish binance-main --force" in line
    assert snapshot() == before  # nothing stored changed
    info = info_of(stocked_cli)
    assert (info.version, info.previous_version) == (2, 1)
    # Refused before the passphrase is asked for: none is given here, nor a terminal.
    assert "runs until" in one_error_line(stocked_cli.v("rotate", "finish", "binance-main"), 9)


def test_rotate_finish_after_grace(stocked_cli, monkeypatch) -> None:
    until = promoted(stocked_cli)
    rotation_clock(monkeypatch, until - timedelta(seconds=1))
    assert stocked_cli.unlocked("rotate", "finish", "binance-main").exit_code == 9
    rotation_clock(monkeypatch, until)
    r = stocked_cli.unlocked("rotate", "finish", "binance-main")
    assert r.exit_code == 0, r.output
    assert info_of(stocked_cli).previous_version is None


def test_rotate_finish_force_help(stocked_cli) -> None:
    r = stocked_cli.v("rotate", "finish", "--help")
    assert "--force" in r.stdout and "grace period" in r.stdout


def test_rotate_rollback(stocked_cli) -> None:
    promoted(stocked_cli)
    r = stocked_cli.unlocked("rotate", "rollback", "binance-main")
    assert r.exit_code == 0, r.output
    assert r.stdout == (
        "binance-main: version 1 is current again; version 2 is pending: exvault rotate "
        "promote binance-main once it works, or exvault rotate abort binance-main.\n"
    )
    info = info_of(stocked_cli)
    assert (info.version, info.pending_version, info.previous_version) == (1, 2, None)
    assert info.previous_until is None
    with admin_of(stocked_cli) as admin:
        assert admin.get("binance-main").secret.reveal() == BINANCE_SECRET
        assert admin.get("binance-main", stage="pending").secret.reveal() == NEW_SECRET
        actions = [
            (e.action, e.version) for e in admin.audit_entries() if e.action.startswith("rot")
        ]
    assert actions[-1] == ("rotate-rollback", 1)
    # Idempotent: nothing left to roll back.
    again = stocked_cli.unlocked("rotate", "rollback", "binance-main")
    assert (again.exit_code, again.stdout) == (
        0,
        "binance-main: nothing to do (no previous version to roll back to).\n",
    )
    # The rolled-back key can be promoted again.
    assert stocked_cli.unlocked("rotate", "promote", "binance-main").exit_code == 0
    info = info_of(stocked_cli)
    assert (info.version, info.pending_version, info.previous_version) == (2, None, 1)


def test_rotate_rollback_after_grace(stocked_cli, monkeypatch, one_error_line, snapshot) -> None:
    until = promoted(stocked_cli)
    rotation_clock(monkeypatch, until)
    before = snapshot()
    line = one_error_line(stocked_cli.unlocked("rotate", "rollback", "binance-main"), 9)
    assert "grace period" in line and "ended" in line
    assert "exvault rotate start binance-main" in line
    assert snapshot() == before
    # Refused before the passphrase is asked for: none is given here, nor a terminal.
    assert "ended" in one_error_line(stocked_cli.v("rotate", "rollback", "binance-main"), 9)


def test_rotate_rollback_while_pending(stocked_cli, one_error_line) -> None:
    promoted(stocked_cli)
    third = json.dumps({"api_key": "X" * 64, "secret": "Y" * 64})
    stocked_cli.unlocked("rotate", "start", "binance-main", "--from-json", "-", input=third)
    line = one_error_line(stocked_cli.unlocked("rotate", "rollback", "binance-main"), 9)
    assert "pending (version 3)" in line and "exvault rotate abort binance-main" in line
    assert "pending" in one_error_line(stocked_cli.v("rotate", "rollback", "binance-main"), 9)
    info = info_of(stocked_cli)
    assert (info.version, info.pending_version, info.previous_version) == (2, 3, 1)


def test_rotate_rollback_unknown(stocked_cli, one_error_line) -> None:
    one_error_line(stocked_cli.unlocked("rotate", "rollback", "nope"), 4)


def test_rotate_start_keeps_expiry_and_policy(stocked_cli) -> None:
    stocked_cli.unlocked("edit", "binance-main", "--expires", "2025-12-01")  # a 91-day key
    stocked_cli.unlocked("policy", "set", "binance-main", "--max-age", "60d", "--grace", "6h")
    stocked_cli.unlocked("policy", "accept-risk", "binance-main", "stale", "--reason", "spare key")
    policy_before = stocked_cli.v("policy", "show", "binance-main", "--json").stdout
    r = stocked_cli.unlocked(
        "rotate",
        "start",
        "binance-main",
        "--from-json",
        "-",
        "--issued",
        "2025-10-01",
        input=NEW_JSON,
    )
    assert r.exit_code == 0, r.output
    assert "expiring on 2025-12-31" in r.stdout
    with admin_of(stocked_cli) as admin:
        pending = admin.get("binance-main", stage="pending")
    assert str(pending.issued_on) == "2025-10-01" and str(pending.expires_on) == "2025-12-31"
    assert pending.permissions == ("read", "trade") and pending.ips == ("203.0.113.7",)
    stocked_cli.unlocked("rotate", "promote", "binance-main")
    assert stocked_cli.v("policy", "show", "binance-main", "--json").stdout == policy_before
    assert info_of(stocked_cli).previous_until is not None
    until, promoted_at = info_of(stocked_cli).previous_until, utc_now()
    assert timedelta(hours=6) - timedelta(minutes=1) <= until - promoted_at <= timedelta(hours=6)


@pytest.mark.parametrize(
    ("args", "expires"), [(("--no-expires",), "None"), (("--expires", "2027-06-01"), "2027-06-01")]
)
def test_rotate_start_changes_expiry(stocked_cli, args, expires) -> None:
    stocked_cli.unlocked("edit", "binance-main", "--expires", "2025-12-01")
    r = stocked_cli.unlocked(
        "rotate", "start", "binance-main", "--from-json", "-", *args, input=NEW_JSON
    )
    assert r.exit_code == 0, r.output
    with admin_of(stocked_cli) as admin:
        assert str(admin.get("binance-main", stage="pending").expires_on) == expires


def test_rotate_start_expiry_flags_exclude(stocked_cli, one_error_line) -> None:
    r = stocked_cli.unlocked(
        "rotate",
        "start",
        "binance-main",
        "--from-json",
        "-",
        "--expires",
        "2026-01-15",
        "--no-expires",
        input=NEW_JSON,
    )
    one_error_line(r, 2)
    assert info_of(stocked_cli).pending_version is None


def test_rotate_promote_default_grace(stocked_cli) -> None:
    stocked_cli.unlocked("rotate", "start", "binance-main", "--from-json", "-", input=NEW_JSON)
    before = utc_now()
    assert stocked_cli.unlocked("rotate", "promote", "binance-main").exit_code == 0
    until = info_of(stocked_cli).previous_until
    assert timedelta(hours=24) <= until - before <= timedelta(hours=24, minutes=1)


@pytest.mark.parametrize(("grace", "code"), [("bogus", 7), ("0h", 7)])
def test_rotate_promote_bad_grace(stocked_cli, one_error_line, grace, code) -> None:
    stocked_cli.unlocked("rotate", "start", "binance-main", "--from-json", "-", input=NEW_JSON)
    one_error_line(
        stocked_cli.unlocked("rotate", "promote", "binance-main", "--grace", grace), code
    )
    assert info_of(stocked_cli).pending_version == 2


def test_rotate_promote_nothing_pending(stocked_cli, one_error_line) -> None:
    line = one_error_line(stocked_cli.unlocked("rotate", "promote", "binance-main"), 9)
    assert "nothing to promote" in line


def test_rotate_abort(stocked_cli) -> None:
    stocked_cli.unlocked("rotate", "start", "binance-main", "--from-json", "-", input=NEW_JSON)
    r = stocked_cli.unlocked("rotate", "abort", "binance-main")
    assert (r.exit_code, r.stdout) == (0, "binance-main: pending version 2 dropped.\n")
    assert info_of(stocked_cli).pending_version is None
    r = stocked_cli.unlocked("rotate", "abort", "binance-main")
    assert (r.exit_code, r.stdout) == (0, "binance-main: nothing to do (no rotation is pending).\n")


def test_rotation_shows_in_check(stocked_cli, check_at, fine_kdf) -> None:
    stocked_cli.unlocked("rotate", "start", "binance-main", "--from-json", "-", input=NEW_JSON)
    check_at(utc_now() + timedelta(hours=25))
    r = stocked_cli.v("check", "--json")
    assert r.exit_code == 2  # the keys were issued in 2025: age-overdue
    found = {(f["credential"], f["code"]): f["severity"] for f in json.loads(r.stdout)["findings"]}
    assert found[("binance-main", "rotation-pending")] == "warn"
    check_at(utc_now() + timedelta(hours=23))
    r = stocked_cli.v("check", "--json")
    assert "rotation-pending" not in {f["code"] for f in json.loads(r.stdout)["findings"]}


# ----------------------------------------------------------------------------- policy


def test_policy_set_and_show(stocked_cli) -> None:
    r = stocked_cli.unlocked(
        "policy", "set", "binance-main", "--max-age", "60d", "--warn-before", "10d"
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "Maximum age:       60d",
        "Warn before:       10d",
        "Stale after:       30d",
        "Grace period:      24h",
        "Probe stale after: 7d",
    ]
    r = stocked_cli.unlocked(
        "policy", "set", "binance-main", "--stale-after", "45", "--grace", "2h", "--json"
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {
        "max_age_days": 60,
        "warn_before_days": 10,
        "stale_days": 45,
        "grace_hours": 2,
        "probe_stale_days": 7,
        "accepted": {},
        "rotate_via": None,
        "sub_account": None,
        "auto": False,
        "on_promote": None,
    }
    shown = stocked_cli.v("policy", "show", "binance-main", "--json")  # no passphrase
    assert shown.exit_code == 0 and json.loads(shown.stdout)["max_age_days"] == 60
    default = stocked_cli.v("policy", "show", "kucoin-sub1")
    assert default.stdout.splitlines()[0] == "Maximum age:       90d"


def test_policy_set_probe_stale(stocked_cli) -> None:
    r = stocked_cli.unlocked("policy", "set", "binance-main", "--probe-stale", "30d", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["probe_stale_days"] == 30
    shown = json.loads(stocked_cli.v("policy", "show", "binance-main", "--json").stdout)
    assert shown["probe_stale_days"] == 30


@pytest.mark.parametrize("period", ["0d", "36h", "3651d", "never"])
def test_policy_set_probe_stale_refuses(stocked_cli, one_error_line, period) -> None:
    r = stocked_cli.unlocked("policy", "set", "binance-main", "--probe-stale", period)
    one_error_line(r, 7)
    shown = json.loads(stocked_cli.v("policy", "show", "binance-main", "--json").stdout)
    assert shown["probe_stale_days"] == 7


def test_policy_drives_check(stocked_cli, check_at, fine_kdf) -> None:
    stocked_cli.unlocked("policy", "set", "binance-main", "--max-age", "60d")
    check_at(ISSUED + timedelta(days=60))
    rows = table_codes(stocked_cli.v("check").stdout)
    assert ("CRITICAL", "binance-main", "age-overdue") in rows
    assert ("WARN", "kucoin-sub1", "age-due-soon") not in rows  # 60 days: not yet


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ((), 2),  # nothing to change
        (("--max-age", "36h"), 7),  # not whole days
        (("--grace", "90m"), 7),  # not whole hours
        (("--max-age", "10d", "--warn-before", "10d"), 7),
        (("--max-age", "soon"), 7),
    ],
)
def test_policy_set_refuses(stocked_cli, one_error_line, args, code) -> None:
    one_error_line(stocked_cli.unlocked("policy", "set", "binance-main", *args), code)
    shown = json.loads(stocked_cli.v("policy", "show", "binance-main", "--json").stdout)
    assert (shown["max_age_days"], shown["warn_before_days"], shown["grace_hours"]) == (90, 14, 24)


def test_policy_accept_and_clear_risk(stocked_cli) -> None:
    r = stocked_cli.unlocked(
        "policy", "accept-risk", "binance-main", "withdraw-enabled", "--reason", "treasury sweeper"
    )
    assert (r.exit_code, r.stdout) == (0, 'Accepted "withdraw-enabled" for binance-main.\n')
    assert r.stderr == ""  # bound to an IP: nothing to warn about
    shown = json.loads(stocked_cli.v("policy", "show", "binance-main", "--json").stdout)
    accepted = shown["accepted"]["withdraw-enabled"]
    assert accepted["reason"] == "treasury sweeper"
    assert accepted["accepted_at"].startswith(f"{utc_now():%Y-%m-%d}")
    text = stocked_cli.v("policy", "show", "binance-main").stdout
    assert f"Accepted withdraw-enabled: {utc_now():%Y-%m-%d}: treasury sweeper" in text

    r = stocked_cli.unlocked("policy", "clear-risk", "binance-main", "withdraw-enabled")
    assert (r.exit_code, r.stdout) == (
        0,
        'No longer accepting "withdraw-enabled" for binance-main.\n',
    )
    shown = json.loads(stocked_cli.v("policy", "show", "binance-main", "--json").stdout)
    assert shown["accepted"] == {}


@pytest.mark.parametrize(
    "args",
    [
        ("binance-main", "withdraw-enabled"),  # no --reason
        ("binance-main", "exposed", "--reason", "x"),  # not acceptable
        ("binance-main", "withdraw-without-ip", "--reason", "x"),
        ("binance-main", "withdraw", "--reason", "x"),  # not a code check prints
    ],
)
def test_policy_accept_risk_usage(stocked_cli, one_error_line, args) -> None:
    # Without the passphrase: refused while parsing, before any prompt.
    one_error_line(stocked_cli.v("policy", "accept-risk", *args), 2)


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("withdraw-without-ip", "withdraw from any address is never safe"),
        ("ip-unrestricted", "wildcard whitelist"),
        ("exposed", "rotate it"),
        ("expired", "rotate it"),
        ("age-overdue", "exvault policy set NAME --max-age"),
        ("kdf-weak", "not a credential"),
        ("okx-unbound-inactive", "the exchange disables or deletes the key"),
        ("binance-unbound-trading", "the exchange disables or deletes the key"),
    ],
)
def test_policy_accept_risk_refuses_with_the_reason(
    stocked_cli, one_error_line, snapshot, code, why
) -> None:
    before = snapshot()
    for command in ("accept-risk", "clear-risk"):
        extra = ("--reason", "x") if command == "accept-risk" else ()
        line = one_error_line(
            stocked_cli.unlocked("policy", command, "binance-main", code, *extra), 2
        )
        assert f'cannot accept "{code}": ' in line and why in line
    assert snapshot() == before


def test_policy_accept_risk_unknown_code(stocked_cli, one_error_line) -> None:
    r = stocked_cli.unlocked("policy", "accept-risk", "binance-main", "withdraw", "--reason", "x")
    line = one_error_line(r, 2)
    assert '"withdraw" is not a finding code of exvault check' in line
    assert "did you mean withdraw-enabled?" in line
    assert f"acceptable: {', '.join(ACCEPTABLE_FINDINGS)}" in line


def test_policy_accept_risk_takes_every_acceptable_code(stocked_cli) -> None:
    for code in ACCEPTABLE_FINDINGS:
        r = stocked_cli.unlocked("policy", "accept-risk", "binance-main", code, "--reason", "ok")
        assert (r.exit_code, r.stdout) == (0, f'Accepted "{code}" for binance-main.\n'), r.output
    shown = json.loads(stocked_cli.v("policy", "show", "binance-main", "--json").stdout)
    assert set(shown["accepted"]) == set(ACCEPTABLE_FINDINGS)


def test_policy_accept_risk_help_lists_the_codes(stocked_cli) -> None:
    # Words joined again where the help's wrapping broke a code at a hyphen.
    text = re.sub(
        r"(\w)- (\w)",
        r"\1-\2",
        " ".join(stocked_cli.v("policy", "accept-risk", "--help").stdout.split()),
    )
    assert f"Acceptable: {', '.join(ACCEPTABLE_FINDINGS)};" in text


def test_policy_accept_withdraw_on_an_unbound_key_warns(stocked_cli) -> None:
    stocked_cli.unlocked("edit", "binance-main", "--clear-ips", "--permissions", "read,withdraw")
    r = stocked_cli.unlocked(
        "policy", "accept-risk", "binance-main", "withdraw-enabled", "--reason", "sweeper"
    )
    assert r.exit_code == 0, r.output
    assert r.stderr == WITHDRAW_WARNING


def test_accepted_unread_in_check(stocked_cli, check_at, fine_kdf) -> None:
    assert stocked_cli.unlocked("client", "add", "bot").exit_code == 0
    assert stocked_cli.unlocked("grant", "bot", "binance-main").exit_code == 0
    check_at(utc_now() + timedelta(days=40))  # idle counts from the day it was added
    r = stocked_cli.v("check", "--all")
    assert ("WARN", "binance-main", "unread") in table_codes(r.stdout)
    stocked_cli.unlocked(
        "policy", "accept-risk", "binance-main", "unread", "--reason", "the bot runs monthly"
    )
    r = stocked_cli.v("check", "--all")
    assert ("OK", "binance-main", "unread") in table_codes(r.stdout)


def test_policy_accept_risk_empty_reason(stocked_cli, one_error_line) -> None:
    r = stocked_cli.unlocked("policy", "accept-risk", "binance-main", "stale", "--reason", " ")
    one_error_line(r, 7)


def test_accepted_risk_in_check(stocked_cli, check_at, fine_kdf) -> None:
    stocked_cli.unlocked("edit", "binance-main", "--clear-ips")
    check_at(CLEAN)
    r = stocked_cli.v("check", "--fail-on", "warn")
    assert r.exit_code == 1
    assert ("WARN", "binance-main", "trade-without-ip") in table_codes(r.stdout)
    stocked_cli.unlocked(
        "policy", "accept-risk", "binance-main", "trade-without-ip", "--reason", "dynamic IP"
    )
    r = stocked_cli.v("check", "--fail-on", "warn", "--all")
    assert ("OK", "binance-main", "trade-without-ip") in table_codes(r.stdout)


# --------------------------------------------------------------------------- schedule


def test_schedule_cron(stocked_cli) -> None:
    r = stocked_cli.v("schedule", "--cron", "0 8 * * *")
    assert r.exit_code == 0, r.output
    comment, line = r.stdout.splitlines()
    assert comment.startswith("# exvault rotation check")
    words = shlex.split(line)
    assert words[:5] == ["0", "8", "*", "*", "*"]
    assert words[-6:] == [
        "check",
        "--quiet",
        "--fail-on",
        "warn",
        "--vault",
        str(stocked_cli.vault_path),
    ]
    critical = stocked_cli.v("schedule", "--cron", "*/15 6-22 * * MON-FRI", "--fail-on", "critical")
    assert critical.exit_code == 0
    assert "*/15 6-22 * * MON-FRI " in critical.stdout and "--fail-on critical" in critical.stdout


def test_schedule_cron_command_runs(stocked_cli) -> None:
    """The printed crontab command is runnable as printed (here: kdf-weak -> exit 2)."""
    line = stocked_cli.v("schedule", "--cron", "0 8 * * *").stdout.splitlines()[1]
    command = line.split(" ", 5)[5]
    done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "kdf-weak" in done.stdout


@pytest.mark.parametrize(
    "spec",
    [
        "0 8 * *",
        "0 8 * * * *",
        "0 8 * * ;rm",
        "61 8 * * *",
        "0 24 * * *",
        "0 8 32 * *",
        "@reboot",
        "@fortnightly",
        "0 8 * * $(id)",
        "",
    ],
)
def test_schedule_bad_cron(stocked_cli, one_error_line, spec) -> None:
    line = one_error_line(stocked_cli.v("schedule", "--cron", spec), 2)
    assert "five fields or a nickname" in line


@pytest.mark.parametrize("spec", ["@daily", "@hourly", "0 8 * * 1-5", "  0  8 * * *  "])
def test_schedule_accepts_what_cron_accepts(stocked_cli, spec) -> None:
    r = stocked_cli.v("schedule", "--cron", spec)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1].startswith(" ".join(spec.split()) + " ")


def test_schedule_needs_one_kind(stocked_cli, one_error_line) -> None:
    one_error_line(stocked_cli.v("schedule"), 2)
    one_error_line(stocked_cli.v("schedule", "--cron", "0 8 * * *", "--systemd"), 2)


def test_schedule_systemd(stocked_cli) -> None:
    r = stocked_cli.v("schedule", "--systemd")
    assert r.exit_code == 0, r.output
    text = r.stdout
    exec_start = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    assert len(exec_start) == 1
    assert exec_start[0].endswith(
        f"check --quiet --fail-on warn --vault {shlex.quote(str(stocked_cli.vault_path))}"
    )
    for expected in (
        "[Service]",
        "Type=oneshot",
        "[Timer]",
        "OnCalendar=*-*-* 08:00:00",
        "Persistent=true",
        "WantedBy=timers.target",
        "# EnvironmentFile=/etc/exvault/notify.env",
        "systemctl enable --now exvault-check.timer",
    ):
        assert expected in text
    other = stocked_cli.v("schedule", "--systemd", "--on-calendar", "Mon *-*-* 07:30:00")
    assert "OnCalendar=Mon *-*-* 07:30:00" in other.stdout


def test_schedule_never_prints_a_database_password(cli) -> None:
    """For a database URL the job takes EXVAULT_URL from its environment."""
    url = "postgresql+psycopg://exvault:s3cretpw@db.example.net/exvault"
    cron = cli("schedule", "--cron", "0 8 * * *", "--vault", url)
    assert cron.exit_code == 0, cron.output
    assert "EXVAULT_URL" in cron.stdout
    command = cron.stdout.splitlines()[-1]
    assert command.startswith("0 8 * * * ") and "--vault" not in command
    unit = cli("schedule", "--systemd", "--vault", url)
    assert unit.exit_code == 0, unit.output
    for r in (cron, unit):
        assert "s3cretpw" not in r.output and "***" not in r.output


def test_schedule_escapes_percent(cli, tmp_path) -> None:
    path = tmp_path / "100%" / "vault.db"
    r = cli("schedule", "--cron", "0 8 * * *", "--vault", str(path))
    assert r.exit_code == 0
    line = r.stdout.splitlines()[1]
    assert "%" not in line.replace("\\%", "")


def test_rotate_start_names_the_clients_it_wrapped_for(stocked_cli) -> None:
    assert stocked_cli.unlocked("client", "add", "bot").exit_code == 0
    assert stocked_cli.unlocked("grant", "bot", "binance-main").exit_code == 0
    r = stocked_cli.unlocked("rotate", "start", "binance-main", "--from-json", "-", input=NEW_JSON)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == (
        "binance-main: version 2 staged as pending; wrapped for clients: bot."
    )


def test_apprise_plugin_error_is_a_warning_without_the_url(
    stocked_cli, check_at, fine_kdf, hook, monkeypatch
) -> None:
    import apprise

    def broken(self, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("cannot reach json://127.0.0.1" + HOOK_PATH)

    monkeypatch.setattr(apprise.Apprise, "notify", broken)
    check_at(CRITICAL)
    r = stocked_cli.v("check", "--notify-url", apprise_url(hook))
    assert r.exit_code == 2 and "age-overdue" in r.stdout
    assert r.stderr == (
        "exvault: warning: could not notify: notification via json:// failed: RuntimeError\n"
    )
    assert_url_hidden(r.output)
