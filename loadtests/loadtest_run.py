"""The load generator of ``python -m loadtests``: setup, then five measured phases, locust run
programmatically in this process.

    DATAEX_ADMIN_KEY=<key> python -m loadtests.loadtest_run --host http://127.0.0.1:8000 \\
        --users 50 --spawn-rate 25 --duration 60 --steps 5 --out loadtest-results

1. ``bare``: ``--users`` :class:`BareUser` hit ``GET /v1/loadtest/bare`` (served by
   ``loadtests/server.py``) without pausing: what the HTTP stack alone can serve.
2. ``edge``: ``--users`` :class:`EdgeUser` post traders' limit orders to
   ``POST /v1/loadtest/order-edge`` without pausing: the order endpoint's key check, body,
   price conversion and response, without the exchange behind them.
3. ``orders``: ``--users`` traders (``locustfile.Trader``) without pausing: the order
   endpoint under participants' order flow.
4. ``mixed``: the plan's mix of traders, market makers, viewers and valuers, stepped up in
   ``--steps`` equal steps to ``--users``; each step is measured on its own.
5. ``ws-orders``: ``--users`` traders on the order-entry session
   (``session_user.SessionTrader``), each keeping a few requests in flight: the session's
   acknowledged orders per second and ack latency, to compare with ``orders``'.

``--duration`` is split 12% / 12% / 26% / 26% / 24% between them (``--phases`` runs some of
them only, in the order given).
Each measurement window opens once every user of its phase or step has started, with locust's
statistics reset, so the spawning is never measured; throughput is requests completed in the
window over its wall time. With ``--server-pid``, each window also records the server's CPU
time split by thread (event loop, sequencer, thread pool: the names come from the load-test
server's ``GET /v1/loadtest/internals``), this process's CPU time, and the sequencer's
commits (commands per commit).

Written to ``--out``: locust's CSV statistics per phase (``bare_stats.csv``,
``bare_stats_history.csv``, ... ``mixed_failures.csv``), ``summary.json`` (every window,
every endpoint's throughput and latency percentiles, every status counted),
``acked_orders.jsonl`` (every acknowledged order) and ``market.json`` (what setup made).
The target must be on the loopback interface; users and time are bounded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gevent
import httpx
import psutil
from locust import FastHttpUser, constant, task
from locust.env import Environment
from locust.event import Events
from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter, StatsEntry

from loadtests.load_plan import (
    MAX_DURATION_S,
    MAX_SPAWN_RATE,
    MAX_STEPS,
    MAX_USERS,
    PHASES,
    LoadPlan,
    check_loopback,
)
from loadtests.locustfile import STATE, Participant, Trader, configure
from loadtests.market_setup import bootstrap
from loadtests.server import BARE_PATH, EDGE_PATH, INTERNALS_PATH
from loadtests.session_user import SessionTrader

__all__ = ["BareUser", "EdgeUser", "EndpointStats", "Window", "main", "run"]

PHASE_SHARES = {"bare": 0.12, "edge": 0.12, "orders": 0.26, "mixed": 0.26, "ws-orders": 0.24}
MIN_WINDOW_S = 0.5
SPAWN_SLACK_S = 30.0
CSV_SETTLE_S = 1.2  # locust's CSV writer rewrites its files once a second


class BareUser(FastHttpUser):
    """The baseline: a constant JSON body from the exchange's server, as fast as it comes."""

    wait_time = constant(0)

    @task
    def bare(self) -> None:
        self.client.get(BARE_PATH)


class EdgeUser(Participant):
    """A trader's limit orders, as :class:`~loadtests.locustfile.Trader` places them, to the
    order endpoint's edge: answered as if resting, never journalled."""

    role = "trader"

    @task
    def submit(self) -> None:
        client_order_id = f"edge-{self.number}-{self.rng.getrandbits(48)}"
        body = self.order_body(client_order_id, *self.random_limit())
        self.call("POST", EDGE_PATH, EDGE_PATH, body)


@dataclass(frozen=True, slots=True)
class EndpointStats:
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    avg_ms: float
    max_ms: float

    @classmethod
    def of(cls, entry: StatsEntry, seconds: float) -> EndpointStats:
        def percentile(p: float) -> float:
            return float(entry.get_response_time_percentile(p) or 0)

        return cls(
            entry.num_requests,
            entry.num_failures,
            entry.num_requests / seconds,
            percentile(0.50),
            percentile(0.95),
            percentile(0.99),
            float(entry.avg_response_time),
            float(entry.max_response_time or 0),
        )


@dataclass(slots=True)
class Window:
    """One measurement: a phase (or a step of one) at a steady number of users.

    CPU shares are of one core (100% = one core busy for the whole window); the server's is
    split by thread: the event loop (every route runs there), the sequencer, the thread pool
    (FastAPI runs plain ``def`` dependencies there) and any other thread."""

    phase: str
    users: int
    seconds: float
    server_cpu_percent: float
    generator_cpu_percent: float
    server_threads_cpu_percent: dict[str, float] = field(default_factory=dict)
    commits: int = 0
    commands_per_commit: float = 0.0
    endpoints: dict[str, EndpointStats] = field(default_factory=dict)
    total: EndpointStats | None = None


THREAD_GROUPS = {"MainThread": "event loop", "sequencer": "sequencer"}
THREAD_POOL_PREFIX = "AnyIO worker thread"


@dataclass(frozen=True, slots=True)
class _Sample:
    generator_s: float
    server_s: float
    threads_s: dict[int, tuple[str, float]]  # native id -> (group, CPU seconds)
    commits: int
    journal_seq: int


class _Probe:
    """CPU seconds (user + system) of the server, by thread, and of this process; the
    sequencer's commits. Without a server pid, only this process is measured."""

    def __init__(self, host: str, server_pid: int | None) -> None:
        self.server = psutil.Process(server_pid) if server_pid else None
        self.me = psutil.Process()
        self.http = httpx.Client(base_url=host, timeout=10.0)

    def sample(self) -> _Sample:
        mine = self.me.cpu_times()
        if self.server is None:
            return _Sample(mine.user + mine.system, 0.0, {}, 0, 0)
        internals = self.http.get(INTERNALS_PATH).json()
        names = internals["threads"]
        threads = {}
        for thread in self.server.threads():
            name = names.get(str(thread.id), "")
            group = THREAD_GROUPS.get(name) or (
                "thread pool" if name.startswith(THREAD_POOL_PREFIX) else "other"
            )
            threads[thread.id] = (group, thread.user_time + thread.system_time)
        total = self.server.cpu_times()
        return _Sample(
            mine.user + mine.system,
            total.user + total.system,
            threads,
            internals["sequencer_batches"],
            internals["journal_seq"],
        )

    @staticmethod
    def fill(window: Window, before: _Sample, after: _Sample) -> None:
        """Window's CPU shares and commits from two samples ``window.seconds`` apart."""
        share = 100 / window.seconds
        window.server_cpu_percent = share * (after.server_s - before.server_s)
        window.generator_cpu_percent = share * (after.generator_s - before.generator_s)
        groups: Counter[str] = Counter()
        for thread_id, (group, seconds) in after.threads_s.items():
            groups[group] += seconds - before.threads_s.get(thread_id, (group, 0.0))[1]
        window.server_threads_cpu_percent = {
            group: share * seconds for group, seconds in sorted(groups.items())
        }
        window.commits = after.commits - before.commits
        if window.commits:
            window.commands_per_commit = (after.journal_seq - before.journal_seq) / window.commits

    def close(self) -> None:
        self.http.close()


def _wait_spawned(env: Environment, users: int, spawn_rate: float) -> None:
    runner = env.runner
    assert runner is not None
    deadline = time.monotonic() + users / spawn_rate + SPAWN_SLACK_S
    while runner.user_count < users or runner.state != "running":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{runner.user_count} of {users} users started in time")
        gevent.sleep(0.05)


def _measure(env: Environment, phase: str, users: int, seconds: float, probe: _Probe) -> Window:
    env.stats.reset_all()
    before = probe.sample()
    start = time.perf_counter()
    gevent.sleep(seconds)
    elapsed = time.perf_counter() - start
    after = probe.sample()
    window = Window(phase, users, elapsed, 0.0, 0.0)
    probe.fill(window, before, after)
    for (name, method), entry in sorted(env.stats.entries.items()):
        window.endpoints[f"{method} {name}"] = EndpointStats.of(entry, elapsed)
    window.total = EndpointStats.of(env.stats.total, elapsed)
    return window


def _phase(
    name: str,
    classes: list[type],
    host: str,
    steps: Sequence[int],
    spawn_rate: float,
    window_s: float,
    out: Path,
    probe: _Probe,
) -> dict[str, Any]:
    """Run ``classes`` at each user count of ``steps`` in turn; its windows and statuses."""
    env = Environment(user_classes=classes, host=host, events=Events())
    env.events.request.add_listener(STATE.on_request)
    STATE.statuses.clear()
    STATE.reasons.clear()
    STATE.failures.clear()
    STATE.examples.clear()
    runner = env.create_local_runner()
    writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, str(out / name))
    writing = gevent.spawn(writer.stats_writer)
    windows = []
    try:
        for users in steps:
            runner.start(users, spawn_rate)
            _wait_spawned(env, users, spawn_rate)
            windows.append(_measure(env, name, users, window_s, probe))
            print(_line(windows[-1]), flush=True)
        runner.stop()
        gevent.sleep(CSV_SETTLE_S)  # one more pass of the CSV writer over the final figures
    finally:
        runner.quit()
        writing.kill()
        writer.close_files()
    return {
        "name": name,
        "windows": [asdict(window) for window in windows],
        "statuses": {
            endpoint: {str(status): count for status, count in sorted(counts.items())}
            for endpoint, counts in sorted(STATE.statuses.items())
        },
        "failures": dict(sorted(STATE.failures.items())),
        "refusal_examples": {
            f"{endpoint} {reason}": detail for (endpoint, reason), detail in STATE.examples.items()
        },
        "reasons": {
            endpoint: dict(counts.most_common())
            for endpoint, counts in sorted(STATE.reasons.items())
        },
    }


def _line(window: Window) -> str:
    total = window.total
    assert total is not None
    threads = ", ".join(f"{k} {v:.0f}%" for k, v in window.server_threads_cpu_percent.items())
    return (
        f"{window.phase:>6} {window.users:>4} users: {total.rps:8.0f} req/s, "
        f"p50 {total.p50_ms:.0f} ms, p99 {total.p99_ms:.0f} ms, "
        f"{total.failures} failures; server CPU {window.server_cpu_percent:.0f}% ({threads}), "
        f"load generator CPU {window.generator_cpu_percent:.0f}%"
        + (f", {window.commands_per_commit:.1f} commands per commit" if window.commits else "")
    )


def ramp(users: int, steps: int) -> list[int]:
    """``steps`` user counts rising evenly to ``users`` (each at least 1, no repeats)."""
    counts = sorted({max(1, round(users * (i + 1) / steps)) for i in range(steps)})
    assert counts[-1] == users
    return counts


def run(
    host: str,
    admin_key: str,
    *,
    users: int,
    spawn_rate: float,
    duration_s: float,
    steps: int,
    plan: LoadPlan,
    out: Path,
    server_pid: int | None = None,
    phases: Sequence[str] = PHASES,
) -> dict[str, Any]:
    """Set up the market, run the phases, write the results; the summary."""
    check_loopback(host)
    if not 1 <= users <= MAX_USERS:
        raise ValueError(f"users must be in 1..{MAX_USERS}")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise ValueError(f"the duration must be in (0, {MAX_DURATION_S:g}] seconds")
    if not 0 < spawn_rate <= MAX_SPAWN_RATE:
        raise ValueError(f"the spawn rate must be in (0, {MAX_SPAWN_RATE:g}] users/s")
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be in 1..{MAX_STEPS}")
    if not phases or not set(phases) <= set(PHASES):
        raise ValueError(f"phases must be some of {PHASES}, not {phases}")
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    # A participant for each user that needs a key, at the most users a phase runs: all of
    # them traders in the orders phase, each role's share (rounded up) in the mixed phase.
    mixed_classes = configure(plan)
    weight = sum(plan.mix.values())
    share = {role: math.ceil(users * plan.mix[role] / weight) for role in plan.mix}
    STATE.market = bootstrap(
        host,
        admin_key,
        traders=max(users, share["trader"]),
        market_makers=share["market_maker"],
        valuers=share["valuer"],
        instruments=plan.instruments,
    )
    STATE.market.save(out / "market.json")
    made = ", ".join(f"{len(accounts)} {role}s" for role, accounts in STATE.market.accounts.items())
    print(f"setup: {len(STATE.market.symbols)} instruments, {made}", flush=True)
    probe = _Probe(host, server_pid)
    stack = probe.http.get(INTERNALS_PATH).json()["stack"] if server_pid else {}
    counts = ramp(users, steps)
    plans = {
        "bare": ([BareUser], [users]),
        "edge": ([EdgeUser], [users]),
        "orders": ([Trader], [users]),
        "mixed": (mixed_classes, counts),
        "ws-orders": ([SessionTrader], [users]),
    }
    shares = sum(PHASE_SHARES[name] for name in phases)
    results = []
    try:
        for name in phases:
            classes, steps_users = plans[name]
            window_s = max(
                MIN_WINDOW_S, duration_s * PHASE_SHARES[name] / shares / len(steps_users)
            )
            results.append(
                _phase(name, classes, host, steps_users, spawn_rate, window_s, out, probe)
            )
    finally:
        probe.close()
    STATE.write_acks(out / "acked_orders.jsonl")
    summary = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "host": host,
        "users": users,
        "spawn_rate": spawn_rate,
        "duration_s": duration_s,
        "steps": counts,
        "mix": plan.mix,
        "rates": plan.rates,
        "symbols": STATE.market.symbols,
        "server_stack": stack,
        "acked_orders": len(STATE.acks),
        "phases": results,
        "wall_s": time.time() - started,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", required=True, help="the server, on 127.0.0.1")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--spawn-rate", type=float, default=25.0)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--steps", type=int, default=5, help="steps of the mixed phase")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--mix", default=os.environ.get("DATAEX_LOAD_MIX", ""))
    parser.add_argument("--rates", default=os.environ.get("DATAEX_LOAD_RATES", ""))
    parser.add_argument("--instruments", type=int, default=2)
    parser.add_argument("--phases", default=",".join(PHASES), help="which phases, in order")
    args = parser.parse_args(argv)
    admin_key = os.environ.get("DATAEX_ADMIN_KEY", "")
    if not admin_key:
        print("error: set DATAEX_ADMIN_KEY to a bootstrap admin's API key", file=sys.stderr)
        return 2
    plan = _plan(args)
    run(
        args.host,
        admin_key,
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration_s=args.duration,
        steps=args.steps,
        plan=plan,
        out=args.out,
        server_pid=args.server_pid,
        phases=args.phases.split(","),
    )
    return 0


def _plan(args: argparse.Namespace) -> LoadPlan:
    kwargs: dict[str, Any] = {"instruments": args.instruments}
    if args.mix:
        kwargs["mix"] = args.mix
    if args.rates:
        kwargs["rates"] = args.rates
    return LoadPlan.parse(**kwargs)


if __name__ == "__main__":
    sys.exit(main())
