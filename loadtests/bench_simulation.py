"""One day of the liquid scenario through the exchange: wall time and orders per second.

    python -m loadtests.bench_simulation                    # seed 1, 3 runs
    python -m loadtests.bench_simulation --runs 1 --default-gc
    python -m loadtests.bench_simulation --compare-ticks 300  # batched vs one at a time

Each run is ``exchange.simulation.run_simulation(scenarios/liquid.toml, seed)`` for one day
on a fresh SQLite file (WAL, ``synchronous=FULL``, as the exchange configures it): every
command through ``Sequencer.submit`` (validation, compliance gate, risk, the journal, matching,
settlement entries, a durable group commit before any answer), the agents' decisions of one
tick submitted together and all answered before the virtual clock moves. The figure is wall
time from the first setup command to the last answer, and orders (``submit_order`` commands
journalled) per second of it; the summary, the report and ``ledger.verify`` run after it and
are not timed (verification is done once, after the last run, and must pass).

Every run of one seed must give the same journal hash: the determinism check under batching.
``--compare-ticks N`` also runs the first N ticks with each command sent only after the last
one's answer (one commit per command), shows both rates, and checks that both journals have
the same hash. ``--default-gc`` keeps the interpreter's garbage-collector thresholds (the
runner otherwise raises them for the run; docs/benchmarks.md says why and what it changes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from exchange.simulation import load_scenario, run_simulation
from ledger.store import Ledger
from ledger.verify import verify

SCENARIO = Path(__file__).parents[1] / "scenarios" / "liquid.toml"
MIN_ORDERS = 100_000
TARGET_WALL_S = 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=SCENARIO)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--default-gc", action="store_true")
    parser.add_argument("--compare-ticks", type=int, default=0, metavar="N")
    args = parser.parse_args(argv)
    scenario = load_scenario(args.scenario, seed=args.seed)
    directory = Path(tempfile.mkdtemp(prefix="bench-simulation-"))
    print(
        f"{scenario.source}, seed {args.seed}, {args.days} day(s) of "
        f"{scenario.ticks_per_day} ticks, databases in {directory}"
    )
    walls, hashes, last_url = [], set(), ""
    for run in range(1, args.runs + 1):
        last_url = f"sqlite:///{directory / f'run-{run}.db'}"
        result = run_simulation(
            scenario,
            args.seed,
            days=args.days,
            database_url=last_url,
            check=False,
            tune_collector=not args.default_gc,
        )
        walls.append(result.wall_s)
        hashes.add(result.journal_hash)
        refused = sum(result.refused.values())
        print(
            f"run {run}: {result.wall_s:.2f} s, {result.orders:,} orders "
            f"({result.orders / result.wall_s:,.0f}/s), {result.journal_commands:,} commands "
            f"({result.journal_commands / result.wall_s:,.0f}/s), "
            f"{result.exchange.market_data.trade_count:,} trades, {result.commits:,} commits "
            f"({result.journal_commands / result.commits:.1f} commands each), "
            f"{refused:,} refused, hash {result.journal_hash[:16]}"
        )
        if result.orders < MIN_ORDERS:
            print(f"FAIL: {result.orders:,} orders, fewer than {MIN_ORDERS:,}")
            return 1
    median = statistics.median(walls)
    print(
        f"median wall {median:.2f} s over {len(walls)} runs "
        f"(target < {TARGET_WALL_S:.0f} s: {'met' if median < TARGET_WALL_S else 'NOT met'})"
    )
    if len(hashes) != 1:
        print(f"FAIL: {len(hashes)} different journal hashes for one seed")
        return 1
    ledger = Ledger.open(last_url)
    report = verify(ledger)
    ledger.engine.dispose()
    print(f"ledger.verify of the last run: {'ok' if report.ok else report.first_problem}")
    if not report.ok:
        return 1
    if args.compare_ticks:
        compared = {}
        for mode in ("batched", "one at a time"):
            name = "compare-" + mode.replace(" ", "-")
            url = f"sqlite:///{directory / name}.db"
            result = run_simulation(
                scenario,
                args.seed,
                stop_after_ticks=args.compare_ticks,
                database_url=url,
                check=False,
                one_at_a_time=mode != "batched",
            )
            compared[mode] = result.journal_hash
            print(
                f"first {args.compare_ticks} ticks, {mode}: {result.wall_s:.2f} s, "
                f"{result.journal_commands:,} commands "
                f"({result.journal_commands / result.wall_s:,.0f}/s), "
                f"{result.commits:,} commits, hash {result.journal_hash[:16]}"
            )
        if len(set(compared.values())) != 1:
            print("FAIL: batching changed the journal")
            return 1
        print("batched and one-at-a-time journals are identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
