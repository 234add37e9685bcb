"""The crash test end to end: a database, the real server, order flow, kills, the checks.

:func:`run_crash_test`:

1. makes a run directory under ``out`` (``crash-seed<S>-<random>``) that keeps the server's
   log, every request of the flow (``requests.jsonl``) and, by default, the SQLite database
   (``crash.db``); every ``dataex`` process runs in it. A PostgreSQL URL gets a new schema
   (``dataex_crash_<hex>``), dropped at the end, as the load test does; another SQLite URL
   is used as it is, and must hold no journal yet;
2. creates an admin with ``dataex participant create``, starts ``dataex serve`` on a free
   port of 127.0.0.1 in a session of its own, and builds a market through the API
   (:func:`loadtests.market_setup.bootstrap`: one trader per client, two instruments);
3. starts the clients (:mod:`loadtests.crash_flow`) and kills the server with SIGKILL
   ``kills`` times, at moments drawn from ``seed``: after 0.3 to 3 s of serving, or, for
   about a quarter of the kills after the first, while it starts (in the last 40% of the
   time its last start took, when it opens the database and rebuilds the exchange; a kill
   that comes after the server has answered ``/v1/health`` is counted as under load).
   After each kill it waits for the process to be gone and starts it again on the same
   database (and port); a start that exits (a lease not yet released) is tried again, and
   named;
4. after the last restart, lets the flow run a moment, stops the clients, reads every
   client's orders from the server, sends a sample of the acknowledged submissions again,
   and stops the server (SIGTERM);
5. checks (:mod:`loadtests.crash_checks`, :func:`loadtests.checks.check_exchange`): every
   acknowledgement kept, retries answered with the original, no 5xx but 503, ``dataex ledger
   verify`` ok, cash and licences conserved, ``dataex replay`` reproducing the settlement
   and the recovered state hash, the journal holding every acknowledged order.

Every wait has a limit; the server's process group is killed on every way out, Ctrl-C
included. :class:`CrashTestError` means the test could not run; :class:`ServerFailed`, that
the server did not survive (it would not start again, or exited by itself): a finding.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from exchange.recovery import recover
from ledger.database import dispose_engines, scratch_schema
from ledger.store import Ledger
from loadtests.checks import Check, check_exchange
from loadtests.crash import MAX_CLIENTS, MAX_KILLS
from loadtests.crash_checks import (
    check_acknowledgements,
    check_conservation,
    check_replay_output,
    check_retries,
)
from loadtests.crash_flow import FlowClient, FlowRecord, RequestRecord, Target
from loadtests.harness import PACKAGE_PARENT, absolute_database
from loadtests.market_setup import ISSUANCE_CAP_UNITS, Market, bootstrap

__all__ = [
    "DURING_START_UP",
    "UNDER_LOAD",
    "CrashOutcome",
    "CrashTestError",
    "Kill",
    "ServerFailed",
    "kill_schedule",
    "run_crash_test",
]

HOST = "127.0.0.1"
RATE_LIMIT_PER_S = 1_000_000  # the crash test measures durability, not the throttle
INSTRUMENTS = 2
MIN_UPTIME_S = 0.3
MAX_UPTIME_S = 3.0
FINAL_UPTIME_S = 1.0  # flow on the last server before the clients stop
START_UP_SHARE = 0.25  # of the kills after the first, drawn to land during start-up
# A start-up kill lands in this part of the last start's time (as fractions of it): most of
# a start is importing, and the kill is meant for the part that opens the database,
# migrates it and rebuilds the exchange from the journal.
START_UP_KILL_FROM, START_UP_KILL_TO = 0.6, 1.0
START_TIMEOUT_S = 60.0
RESTART_PAUSE_S = 0.2  # before starting again after a start that exited
HEALTH_POLL_S = 0.02
PROCESS_TIMEOUT_S = 30.0  # for a killed or stopped process to be gone
CLIENT_STOP_TIMEOUT_S = 120.0  # a client finishes the request in hand, retries included
COMMAND_TIMEOUT_S = 600.0  # dataex ledger verify, dataex replay, participant create
HTTP_TIMEOUT_S = 30.0
MAX_FINAL_RETRIES = 1_000
ORDERS_PAGE = 500
UNDER_LOAD = "under load"
DURING_START_UP = "during start-up"
_PORT_TAKEN = "address already in use"
_API_KEY = re.compile(r"^api key: (\S+)$", re.MULTILINE)


class CrashTestError(Exception):
    """The crash test could not run (as opposed to a check that failed)."""


class ServerFailed(CrashTestError):
    """The server did not survive the kills: it would not start again, or exited by itself."""


@dataclass(frozen=True, slots=True)
class Kill:
    """One SIGKILL: its number, whether it landed under load or during start-up (before the
    server had answered ``/v1/health``), the kind the schedule drew for it (a start that is
    faster than the last one may answer before a start-up kill lands), and how long after
    the process started."""

    number: int
    kind: str
    drawn: str
    after_s: float


@dataclass(slots=True)
class CrashOutcome:
    seed: int
    database: str
    clients: int
    run_dir: Path
    kills: list[Kill] = field(default_factory=list)
    starts: int = 0  # server processes started
    refused_starts: list[str] = field(default_factory=list)  # starts that exited, and why
    flow: FlowRecord = field(default_factory=FlowRecord)
    retried_at_end: int = 0
    checks: list[Check] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)


def kill_schedule(rng: random.Random, kills: int) -> list[str]:
    """The kind of each kill: the first under load (it has a server to kill), each later one
    during start-up with probability :data:`START_UP_SHARE`; with two kills or more, at least
    one of each kind."""
    kinds = [UNDER_LOAD] + [
        DURING_START_UP if rng.random() < START_UP_SHARE else UNDER_LOAD for _ in range(kills - 1)
    ]
    if kills >= 2 and DURING_START_UP not in kinds:
        kinds[rng.randrange(1, kills)] = DURING_START_UP
    return kinds[:kills]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _dataex(*arguments: str) -> list[str]:
    """The ``dataex`` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("dataex")
    if script.exists():
        return [str(script), *arguments]
    return [sys.executable, "-c", "from exchange.cli import main; main()", *arguments]


def _environment() -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_PARENT),
                                                    os.environ.get("PYTHONPATH")])),
        "DATAEX_RATE_LIMIT": str(RATE_LIMIT_PER_S),
    }  # fmt: skip
    env.pop("DATAEX_DATABASE_URL", None)  # every command is given its database
    return env


def _run_dataex(run_dir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            _dataex(*arguments),
            cwd=run_dir,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CrashTestError(
            f"dataex {arguments[0]} did not finish within {COMMAND_TIMEOUT_S:g} s"
        ) from None


class _Server:
    """``dataex serve`` on the run's database, started again and again: one process at a
    time, in a process group of its own, its output appended to one log."""

    def __init__(self, url: str, run_dir: Path) -> None:
        self.url, self.run_dir = url, run_dir
        self.log = run_dir / "server.log"
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.starts = 0
        self.refused: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def launch(self) -> None:
        """Start a server process (the previous one must be gone)."""
        assert self.process is None or self.process.poll() is not None
        self.starts += 1
        with self.log.open("ab") as output:
            output.write(f"--- start {self.starts} on port {self.port}\n".encode())
            output.flush()
            self.process = subprocess.Popen(
                _dataex("serve", "--host", HOST, "--port", str(self.port), "--database", self.url),
                cwd=self.run_dir,
                env=_environment(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C is ours to handle; the group is ours to kill
            )
        self.started_at = time.monotonic()

    def answers(self, http: httpx.Client) -> bool:
        try:
            return http.get(self.base_url + "/v1/health").status_code == 200
        except httpx.TransportError:
            return False

    def wait_healthy(self, after: str) -> float:
        """Wait until the server answers ``/v1/health``, starting it again when it exits
        before (each such start is named in :attr:`refused`); how long the last start took.
        Raises :class:`ServerFailed` if it does not answer within :data:`START_TIMEOUT_S`."""
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(timeout=1.0) as http:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.answers(http):
                    return time.monotonic() - self.started_at
                if self.process.poll() is not None:
                    why = self._last_line()
                    self.refused.append(f"after {after}: exit {self.process.returncode}: {why}")
                    if _PORT_TAKEN in why:
                        self.port = _free_port()
                    time.sleep(RESTART_PAUSE_S)
                    self.launch()
                    continue
                time.sleep(HEALTH_POLL_S)
        raise ServerFailed(
            f"the server did not answer /v1/health within {START_TIMEOUT_S:g} s {after}; "
            f"its last line: {self._last_line()} (log: {self.log})"
        )

    def serve_for(self, seconds: float, after: str) -> None:
        """Let the server serve ``seconds``; :class:`ServerFailed` if it exits meanwhile."""
        assert self.process is not None
        try:
            code = self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return
        raise ServerFailed(
            f"the server exited by itself ({code}) {after}; its last line: {self._last_line()}"
        )

    def kill(self) -> None:
        """SIGKILL the server's process group and wait until the server process is gone."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):  # it ended since the poll
            os.killpg(process.pid, signal.SIGKILL)
        try:
            process.wait(timeout=PROCESS_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise CrashTestError(
                f"the server (pid {process.pid}) outlived SIGKILL by {PROCESS_TIMEOUT_S:g} s"
            ) from None

    def stop(self) -> Check:
        """Stop as an operator would (SIGTERM); whether it stopped cleanly."""
        process = self.process
        assert process is not None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=PROCESS_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                return Check(
                    "the last server stopped on SIGTERM",
                    False,
                    f"still running {PROCESS_TIMEOUT_S:g} s after it",
                )
        code = process.returncode
        return Check(
            "the last server stopped on SIGTERM",
            code in (0, -signal.SIGTERM, 128 + signal.SIGTERM),
            f"exit status {code}",
        )

    def _last_line(self) -> str:
        lines = self.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"


@contextmanager
def _database(url: str | None, run_dir: Path) -> Iterator[str]:
    """See step 1 of the module docstring."""
    if url is None or make_url(url).get_backend_name() != "postgresql":
        try:
            yield absolute_database(url) if url else f"sqlite:///{run_dir / 'crash.db'}"
        finally:
            dispose_engines()
        return
    with scratch_schema(url, "dataex_crash") as schema_url:
        yield schema_url


def _admin_key(url: str, run_dir: Path) -> str:
    """A new admin, made by ``dataex participant create`` on the fresh database."""
    ledger = Ledger.open(url)
    if ledger.journal_head_seq():
        raise CrashTestError("the database already holds a journal: give a fresh one")
    dispose_engines()  # the server opens it next; hold no connection to it
    done = _run_dataex(run_dir, "participant", "create", "Crash-test admin", "--role", "admin",
                       "--id", "crash-admin", "--database", url)  # fmt: skip
    found = _API_KEY.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise CrashTestError(f"dataex participant create failed: {done.stderr or done.stdout}")
    return found.group(1)


def _final_orders(base_url: str, market: Market) -> dict[tuple[str, int], dict[str, Any]]:
    """Every order of every client, as the server lists them."""
    orders: dict[tuple[str, int], dict[str, Any]] = {}
    with httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S) as http:
        for account in market.accounts["trader"]:
            after = 0
            while True:
                response = http.get(
                    "/v1/orders",
                    params={"status": "all", "after": after, "limit": ORDERS_PAGE},
                    headers={"X-API-Key": account.api_key},
                )
                if response.status_code != 200:
                    raise CrashTestError(
                        f"GET /v1/orders answered {response.status_code}: {response.text[:300]}"
                    )
                page = response.json()
                for order in page:
                    orders[(account.participant_id, order["order_id"])] = order
                if len(page) < ORDERS_PAGE:
                    break
                after = page[-1]["order_id"]
    return orders


def _retry_at_end(
    base_url: str, market: Market, submissions: list[RequestRecord]
) -> list[tuple[RequestRecord, int | None, dict[str, Any] | None]]:
    """Each of ``submissions`` sent again, unchanged, to the last server."""
    keys = {account.participant_id: account.api_key for account in market.accounts["trader"]}
    retried = []
    with httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S) as http:
        for original in submissions:
            response = http.post(
                "/v1/orders",
                json=original.body,
                headers={"X-API-Key": keys[original.participant_id]},
            )
            retried.append((original, response.status_code, response.json()))
    return retried


def run_crash_test(
    *,
    kills: int,
    seed: int,
    clients: int,
    out: Path,
    database: str | None = None,
    echo: Callable[[str], None] = print,
) -> CrashOutcome:
    """The whole crash test of the module docstring. Raises :class:`CrashTestError` if it
    could not run, :class:`ServerFailed` if the server did not survive; a run whose checks
    fail returns normally with ``ok`` False."""
    if not 1 <= kills <= MAX_KILLS:
        raise CrashTestError(f"--kills must be in 1..{MAX_KILLS}, not {kills}")
    if not 1 <= clients <= MAX_CLIENTS:
        raise CrashTestError(f"--clients must be in 1..{MAX_CLIENTS}, not {clients}")
    started = time.monotonic()
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix=f"crash-seed{seed}-", dir=out))
    with _database(database, run_dir) as url:
        shown = make_url(url).render_as_string(hide_password=True)
        outcome = CrashOutcome(seed, shown, clients, run_dir)
        echo(f"run: {run_dir}")
        echo(f"database: {shown}")
        admin_key = _admin_key(url, run_dir)
        server = _Server(url, run_dir)
        try:
            market, final, retried = _drive(server, admin_key, kills, seed, clients, outcome, echo)
            stopped = server.stop()
        finally:
            server.kill()
            outcome.starts, outcome.refused_starts = server.starts, server.refused
        _write_requests(run_dir / "requests.jsonl", outcome.flow.requests)
        echo("checking ...")
        outcome.checks = [stopped, *_check(url, run_dir, market, final, retried, outcome.flow)]
        outcome.retried_at_end = len(retried)
    outcome.duration_s = time.monotonic() - started
    return outcome


def _drive(
    server: _Server,
    admin_key: str,
    kills: int,
    seed: int,
    clients: int,
    outcome: CrashOutcome,
    echo: Callable[[str], None],
) -> tuple[Market, dict[tuple[str, int], dict[str, Any]], list[Any]]:
    """Steps 2-4 of the module docstring: the market, the flow under kills, the final state
    and the retries at the end."""
    rng = random.Random(seed)
    kinds = kill_schedule(rng, kills)
    server.launch()
    start_up_s = server.wait_healthy("on the first start")
    echo(f"server: {server.base_url} (started in {start_up_s:.2f} s)")
    market = bootstrap(server.base_url, admin_key, traders=clients, market_makers=0,
                       instruments=INSTRUMENTS)  # fmt: skip
    target = Target(server.base_url)
    stop, abort = threading.Event(), threading.Event()
    flow = [
        FlowClient(number, account, market, target, outcome.flow, seed=seed, stop=stop,
                   abort=abort)
        for number, account in enumerate(market.accounts["trader"], start=1)
    ]  # fmt: skip
    for client in flow:
        client.start()
    try:
        done = 0
        with httpx.Client(timeout=HEALTH_POLL_S * 10) as http:
            while done < kills:
                uptime_s = rng.uniform(MIN_UPTIME_S, MAX_UPTIME_S)
                server.serve_for(uptime_s, f"before kill {done + 1}")
                done = _kill(server, done, UNDER_LOAD, UNDER_LOAD, outcome, echo)
                server.launch()
                while done < kills and kinds[done] == DURING_START_UP:
                    moment_s = start_up_s * rng.uniform(START_UP_KILL_FROM, START_UP_KILL_TO)
                    answered = False
                    while (elapsed := time.monotonic() - server.started_at) < moment_s:
                        if server.answers(http):
                            answered = True  # too late: it started faster than last time
                            break
                        time.sleep(min(HEALTH_POLL_S, max(0.0, moment_s - elapsed)))
                    kind = UNDER_LOAD if answered else DURING_START_UP
                    done = _kill(server, done, kind, DURING_START_UP, outcome, echo)
                    server.launch()
                start_up_s = server.wait_healthy(f"after kill {done}")
                target.base_url = server.base_url
        server.serve_for(FINAL_UPTIME_S, "after the last kill")
        stop.set()
        for client in flow:
            client.join(timeout=CLIENT_STOP_TIMEOUT_S)
        failed = [client for client in flow if client.is_alive() or client.error is not None]
        if failed:
            raise CrashTestError(
                f"client {failed[0].number} did not end cleanly: "
                + (repr(failed[0].error) if failed[0].error else "still running")
            )
        final = _final_orders(server.base_url, market)
        acknowledged = [r for r in outcome.flow.requests if r.kind == "submit" and r.acknowledged]
        sample = random.Random(f"{seed}/retries").sample(
            acknowledged, min(len(acknowledged), MAX_FINAL_RETRIES)
        )
        retried = _retry_at_end(server.base_url, market, sample)
    finally:
        abort.set()
        stop.set()
        for client in flow:
            client.join(timeout=CLIENT_STOP_TIMEOUT_S)
    return market, final, retried


def _kill(
    server: _Server,
    done: int,
    kind: str,
    drawn: str,
    outcome: CrashOutcome,
    echo: Callable[[str], None],
) -> int:
    after_s = time.monotonic() - server.started_at
    server.kill()
    outcome.kills.append(Kill(done + 1, kind, drawn, after_s))
    late = "" if kind == drawn else f" (drawn {drawn}: the server had answered first)"
    echo(f"kill {done + 1}: {kind}, {after_s:.2f} s after the start{late}")
    return done + 1


def _write_requests(path: Path, requests: list[RequestRecord]) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.writelines(request.to_json() + "\n" for request in requests)


def _check(
    url: str,
    run_dir: Path,
    market: Market,
    final: dict[tuple[str, int], dict[str, Any]],
    retried: list[Any],
    flow: FlowRecord,
) -> list[Check]:
    """Step 5 of the module docstring, once the last server has stopped."""
    checks = check_acknowledgements(flow.requests, final)
    checks.append(check_retries(flow.retries, "at once"))
    checks.append(check_retries(retried, "after the kills"))
    errors = {status: n for status, n in flow.statuses.items() if status >= 500 and status != 503}
    checks.append(
        Check(
            "no answer was a 5xx (503, retry later, aside)",
            not errors,
            f"{sum(flow.statuses.values()):,} answers"
            + (f"; {', '.join(f'{n:,} x {s}' for s, n in sorted(errors.items()))}" if errors
               else ""),
        )
    )  # fmt: skip
    verified = _run_dataex(run_dir, "ledger", "verify", "--database", url)
    lines = (verified.stdout + verified.stderr).strip().splitlines()
    checks.append(
        Check(
            "dataex ledger verify is ok",
            verified.returncode == 0 and bool(lines) and lines[-1] == "ok",
            f"exit {verified.returncode}: {lines[-1] if lines else 'no output'}",
        )
    )
    replayed = _run_dataex(run_dir, "replay", "--database", url, "--no-progress")
    ledger = Ledger.open(url, run_migrations=False)
    try:
        recovered_hash = recover(ledger).engine.state_hash()
    except Exception as error:  # a recovery that fails is the finding
        recovered_hash = f"none: recovery failed: {error!r}"
    checks.append(
        check_replay_output(replayed.returncode, replayed.stdout + replayed.stderr, recovered_hash)
    )
    checks += check_conservation(
        ledger.balances_from_postings(),
        deposits_minor=market.deposits_minor,
        withdrawals_minor=0,
        issuance_units=dict.fromkeys(market.symbols, ISSUANCE_CAP_UNITS),
    )
    acks = [
        (r.participant_id, r.answer["client_order_id"], r.answer["order_id"])
        for r in flow.requests
        if r.kind == "submit" and r.answer is not None
    ]
    checks += check_exchange(ledger, acks)
    return checks
