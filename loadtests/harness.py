"""``python -m loadtests`` end to end: a database, an admin, the server, locust, the checks, a
report.

:func:`run_loadtest`:

1. takes a database: by default a new SQLite file in a temporary directory; with a
   PostgreSQL URL, a new schema on that server (``dataex_loadtest_<hex>``), dropped at the
   end, as the test suite does; any other URL is used as it is;
2. bootstraps an admin as ``dataex participant create`` does (a ``CreateParticipant``
   journalled by a short-lived sequencer) and keeps its key in memory;
3. starts the server, ``python -m loadtests.server`` (``dataex serve``'s stack plus the bare
   endpoint), on a free port of 127.0.0.1 with ``DATAEX_RATE_LIMIT`` high enough never to
   throttle, and waits for ``/v1/health``;
4. runs the load generator, ``python -m loadtests.loadtest_run`` (locust, in a process of
   its own), with the admin key in its environment and a time limit;
5. stops the server (SIGTERM), then checks the exchange's database and the responses
   (:mod:`loadtests.checks`), and writes ``report.md`` and ``chart.png`` (:mod:`loadtests.report`)
   next to locust's CSV files.

Every wait has a limit and every process started here is stopped here, also on failure.
The server, the load generator and this process each run on their own interpreter: on a
two-core machine the server and locust get a core each.

Paths are the caller's: ``out`` and a SQLite file named relatively are taken from the working
directory of this process, and made absolute before any child sees them; the children run in
``out`` and import this package from the directory that holds it (:data:`PACKAGE_PARENT`), so
a run from anywhere writes nowhere but ``out`` and its temporary directory.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from exchange.commands import CreateParticipant
from exchange.participants import new_api_key, secret_digest
from exchange.sequencer import Sequencer
from exchange.service import OPERATOR
from ledger.database import dispose_engines, get_engine, scratch_schema
from ledger.store import Ledger
from loadtests.checks import Check, check_exchange, check_responses, read_acks
from loadtests.load_plan import DEFAULT_MIX, PHASES, LoadPlan
from loadtests.report import Headline, headline, write_chart, write_report

__all__ = ["PACKAGE_PARENT", "LoadTestError", "Outcome", "absolute_database", "run_loadtest"]

# The directory that holds this package: the children's import path, wherever the caller is.
PACKAGE_PARENT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
RATE_LIMIT_PER_S = 1_000_000  # the load test measures the exchange, not its throttle
START_TIMEOUT_S = 60.0
START_ATTEMPTS = 3
STOP_TIMEOUT_S = 30.0
HEALTH_POLL_S = 0.1
GENERATOR_SLACK_S = 120.0  # setup, spawning and writing, beyond the load itself
_PORT_TAKEN = "address already in use"


class LoadTestError(Exception):
    """The load test could not run (as opposed to a check that failed)."""


@dataclass(slots=True)
class Outcome:
    out: Path
    checks: list[Check] = field(default_factory=list)
    headline: Headline | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)


def _python_path() -> str:
    """This package's directory first, then whatever the caller's ``PYTHONPATH`` adds."""
    return os.pathsep.join(filter(None, [str(PACKAGE_PARENT), os.environ.get("PYTHONPATH")]))


def absolute_database(url: str) -> str:
    """``url`` with a relative SQLite file made absolute against the working directory, so
    that the server, which runs elsewhere, opens the caller's file; other URLs unchanged."""
    parsed = make_url(url)
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return url
    if path.startswith("file:") or Path(path).is_absolute():
        return url
    return parsed.set(database=str(Path(path).resolve())).render_as_string(hide_password=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextmanager
def _database(url: str | None, scratch: Path) -> Iterator[str]:
    """The database to load: see step 1 of the module docstring."""
    if url is None or make_url(url).get_backend_name() != "postgresql":
        try:
            yield url or f"sqlite:///{scratch / 'loadtest.db'}"
        finally:
            dispose_engines()
        return
    with scratch_schema(url, "dataex_loadtest") as schema_url:
        yield schema_url


def _bootstrap_admin(url: str) -> str:
    """A new admin, journalled as ``dataex participant create`` does; its API key."""
    key = new_api_key()
    participant_id = f"loadtest-admin-{secrets.token_hex(3)}"
    sequencer = Sequencer(Ledger.open(url), housekeeping=False).start()
    try:
        sequencer.execute(
            CreateParticipant(
                OPERATOR,
                participant_id,
                "Load-test admin",
                ["admin"],
                key.key_id,
                secret_digest(key.secret),
            )
        )
    finally:
        sequencer.stop()
    return str(key)


class _Server:
    """``python -m loadtests.server`` on a free port of 127.0.0.1."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log
        self.base_url = f"http://{HOST}:{port}"

    @classmethod
    def start(cls, url: str, log: Path, profile: Path | None) -> _Server:
        for attempt in range(1, START_ATTEMPTS + 1):
            port = _free_port()
            command = [
                sys.executable,
                "-m",
                "loadtests.server",
                "--host",
                HOST,
                "--port",
                str(port),
                "--database",
                url,
            ]
            if profile is not None:
                command += ["--profile", str(profile)]
            env = {
                **os.environ,
                "PYTHONPATH": _python_path(),
                "DATAEX_RATE_LIMIT": str(RATE_LIMIT_PER_S),
            }
            env.pop("DATAEX_DATABASE_URL", None)
            with log.open("ab") as output:
                process = subprocess.Popen(
                    command,
                    cwd=log.parent,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            server = cls(process, port, log)
            try:
                server.wait_healthy()
                return server
            except LoadTestError:
                server.kill()
                text = log.read_text(encoding="utf-8", errors="replace")
                if attempt == START_ATTEMPTS or _PORT_TAKEN not in text:
                    raise
            except BaseException:
                server.kill()
                raise
        raise AssertionError("unreachable")

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise LoadTestError(f"the server exited on start; see {self.log}")
                try:
                    if client.get("/v1/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                time.sleep(HEALTH_POLL_S)
        raise LoadTestError(f"the server did not answer /v1/health within {START_TIMEOUT_S:g} s")

    def stop(self) -> Check:
        """Shut down as an operator would (SIGTERM); whether it was still running and
        stopped cleanly."""
        running = self.process.poll() is None
        if running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                return Check(
                    "the server ran to the end and stopped",
                    False,
                    f"it did not stop within {STOP_TIMEOUT_S:g} s of SIGTERM",
                )
        code = self.process.returncode
        # uvicorn ends by raising the SIGTERM it caught again; the profiling launcher exits.
        clean = running and code in (0, -signal.SIGTERM, 128 + signal.SIGTERM)
        return Check(
            "the server ran to the end and stopped",
            clean,
            f"exit status {code}" + ("" if running else ", before the load ended"),
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT_S)


def _generate(
    server: _Server,
    admin_key: str,
    out: Path,
    arguments: list[str],
    time_limit_s: float,
    echo: Callable[[str], None],
) -> None:
    """Run the load generator; its own lines go to ``echo`` and, with locust's log, to
    ``locust.log``."""
    command = [
        sys.executable,
        "-m",
        "loadtests.loadtest_run",
        "--host",
        server.base_url,
        "--out",
        str(out),
        "--server-pid",
        str(server.process.pid),
        *arguments,
    ]
    env = {**os.environ, "PYTHONPATH": _python_path(), "DATAEX_ADMIN_KEY": admin_key}
    with (out / "locust.log").open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command,
            cwd=out,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        timer = threading.Timer(time_limit_s, process.kill)
        timer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                log.write(line)
                log.flush()
                echo(line.rstrip("\n"))
            code = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
    if code != 0:
        why = "was stopped at its time limit" if code == -signal.SIGKILL else f"exited {code}"
        raise LoadTestError(f"the load generator {why}; see {out / 'locust.log'}")


def run_loadtest(
    *,
    users: int,
    spawn_rate: float,
    duration_s: float,
    steps: int,
    out: Path,
    database: str | None = None,
    mix: str | None = None,
    rates: str | None = None,
    profile_server: bool = False,
    phases: str | None = None,
    echo: Callable[[str], None] = print,
) -> Outcome:
    """The whole load test of the module docstring; the checks and the headline figures.
    A relative ``out`` or SQLite file is the working directory's.

    Raises :class:`LoadTestError` if it could not run (the server did not start, the load
    generator failed); a run whose checks fail returns normally with ``ok`` False.
    """
    LoadPlan.parse(mix or DEFAULT_MIX, rates or "")  # a mistake stops here, before any work
    unknown = set((phases or ",".join(PHASES)).split(",")) - set(PHASES)
    if unknown:
        raise ValueError(f"phases are some of {', '.join(PHASES)}, not {', '.join(unknown)}")
    out = out.resolve()
    database = None if database is None else absolute_database(database)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("summary.json", "acked_orders.jsonl", "report.md", "chart.png", "server.log"):
        (out / stale).unlink(missing_ok=True)
    options = {
        "--users": users,
        "--spawn-rate": f"{spawn_rate:g}",
        "--duration": f"{duration_s:g}",
        "--steps": steps,
        "--mix": mix,
        "--rates": rates,
        "--phases": phases,
    }
    arguments = [str(part) for item in options.items() if item[1] for part in item]
    time_limit_s = duration_s + 3 * users / spawn_rate + GENERATOR_SLACK_S
    outcome = Outcome(out)
    # On a shared machine the neighbours' load explains much of a run's figures.
    load_before = ", ".join(f"{load:.2f}" for load in os.getloadavg())
    with (
        tempfile.TemporaryDirectory(prefix="dataex-loadtest-") as scratch,
        _database(database, Path(scratch)) as url,
    ):
        echo(f"database: {_shown(url)}")
        admin_key = _bootstrap_admin(url)
        server = _Server.start(url, out / "server.log", out if profile_server else None)
        echo(f"server: {server.base_url} (pid {server.process.pid})")
        try:
            _generate(server, admin_key, out, arguments, time_limit_s, echo)
        finally:
            stopped = server.stop()
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        echo("checking the exchange ...")
        outcome.checks = [stopped, *check_responses(summary)]
        outcome.checks += check_exchange(
            Ledger.open(url, run_migrations=False), read_acks(out / "acked_orders.jsonl")
        )
        outcome.headline = headline(summary)
        write_chart(out / "chart.png", summary)
        write_report(
            out / "report.md",
            summary,
            outcome.checks,
            {
                "database": _kind(url),
                "server": "`python -m loadtests.server` (the `dataex serve` stack with "
                "`GET /v1/loadtest/bare` and `POST /v1/loadtest/order-edge`), uvicorn, one process"
                + (", under cProfile" if profile_server else ""),
                "load generator": "locust `FastHttpUser`s in one process "
                "(`python -m loadtests.loadtest_run`)",
                "machine load average before the run (1, 5, 15 min)": load_before,
            },
        )
    return outcome


def _kind(url: str) -> str:
    """The database's kind and version, for the report."""
    if make_url(url).get_backend_name() == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with get_engine(url).connect() as connection:
        return f"PostgreSQL {connection.exec_driver_sql('SHOW server_version').scalar()}"


def _shown(url: str) -> str:
    """The URL without a password."""
    return make_url(url).render_as_string(hide_password=True)
