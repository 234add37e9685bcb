"""Many independent runs of one scenario, one per seed, gathered into one table.

Runs share nothing (each writes its own SQLite file), so they fan out over any executor
with a ``map(fn, tasks)`` that returns results in task order:

- :class:`SerialExecutor`: in this process, one after another;
- :class:`ProcessExecutor`: a local ``concurrent.futures.ProcessPoolExecutor`` (``spawn``
  start method, so workers inherit no threads or open databases);
- a cluster engine plugs in the same way, e.g. for Dask (not a dependency)::

      class DaskExecutor:
          def __init__(self, client): self.client = client
          def map(self, fn, tasks): return iter(self.client.gather(self.client.map(fn, tasks)))

A task is plain data (:class:`SweepTask`: the scenario's text, not a path, so a remote worker
needs no shared file system except for the databases, which may as well be local to it), and
:func:`run_task` is a top-level function, so both pickle.
"""

from __future__ import annotations

import multiprocessing
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from exchange.simulation.runner import SimulationError
from exchange.simulation.scenario_catalogue import load_scenario, parse_scenario

__all__ = [
    "MAX_SEEDS",
    "SWEEP_COLUMNS",
    "Executor",
    "ProcessExecutor",
    "SerialExecutor",
    "SweepTask",
    "parse_seeds",
    "run_sweep",
    "run_task",
]

T = TypeVar("T")
R = TypeVar("R")

# Limit: seeds in one sweep.
MAX_SEEDS = 10_000
SWEEP_COLUMNS = (
    "seed",
    "journal_hash",
    "journal_commands",
    "orders",
    "refused",
    "refused_share",
    "trades",
    "volume_units",
    "notional",
    "instruments_traded",
    "mean_spread_bp",
    "median_price_to_true",
    "mdape_market_pct",
    "mdape_market_holdout_pct",
    "mdape_cost_pct",
    "mdape_naive_pct",
    "market_fallbacks",
    "acf1_returns",
    "excess_kurtosis",
    "acf1_abs_returns",
    "collateral_value",
    "true_collateral_value",
    "ledger_verified",
    "conserved",
    "wall_s",
)


class Executor(Protocol):
    """Anything that maps a picklable function over tasks, yielding results in task order."""

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]: ...


class SerialExecutor:
    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]:
        return map(fn, tasks)


class ProcessExecutor:
    """Runs tasks in ``workers`` local processes."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=context) as pool:
            # Yielded one by one, in task order, while the pool lasts: the caller can count
            # runs as they finish; a worker's exception is raised at its result; the pool
            # closes when the caller has read them all (or drops the iterator).
            yield from pool.map(fn, tasks)


@dataclass(frozen=True, slots=True)
class SweepTask:
    scenario_text: str
    source: str
    seed: int
    days: int | None
    stop_after_ticks: int | None
    database_url: str


def run_task(task: SweepTask) -> dict[str, Any]:
    """One run, summarised as one row of :data:`SWEEP_COLUMNS`."""
    from exchange.simulation.metrics import summarise
    from exchange.simulation.runner import run_simulation

    scenario = parse_scenario(task.scenario_text, source=task.source, seed=task.seed)
    result = run_simulation(
        scenario,
        task.seed,
        days=task.days,
        stop_after_ticks=task.stop_after_ticks,
        database_url=task.database_url,
    )
    return sweep_row(summarise(result))


def sweep_row(summary: dict[str, Any]) -> dict[str, Any]:
    """The sweep's row of one run's summary."""
    instruments = summary["instruments"]
    spreads = [row["mean_spread_bp"] for row in instruments if row["mean_spread_bp"] is not None]
    ratios = sorted(row["price_to_true"] for row in instruments if row["price_to_true"])
    valuation = summary["valuation"] or {"approaches": {}}
    approaches = valuation["approaches"]

    def mdape(name: str) -> float | None:
        stats = approaches.get(name)
        return None if not stats else stats["mdape_pct"]

    facts = summary["stylized_facts"]["mean"] or {}
    lender = summary["lender"][-1] if summary["lender"] else {}
    refused = sum(summary["refused"].values())
    return {
        "seed": summary["seed"],
        "journal_hash": summary["journal_hash"],
        "journal_commands": summary["journal_commands"],
        "orders": summary["orders"],
        "refused": refused,
        "refused_share": summary["refused_share"],
        "trades": summary["trades"],
        "volume_units": summary["volume_units"],
        "notional": summary["notional"],
        "instruments_traded": sum(1 for row in instruments if row["trades"]),
        "mean_spread_bp": sum(spreads) / len(spreads) if spreads else None,
        "median_price_to_true": ratios[len(ratios) // 2] if ratios else None,
        "mdape_market_pct": mdape("market"),
        "mdape_market_holdout_pct": mdape("market_holdout"),
        "mdape_cost_pct": mdape("cost"),
        "mdape_naive_pct": mdape("naive"),
        "market_fallbacks": (approaches.get("market") or {}).get("fallbacks"),
        "acf1_returns": facts.get("acf1_returns"),
        "excess_kurtosis": facts.get("excess_kurtosis"),
        "acf1_abs_returns": facts.get("acf1_abs_returns"),
        "collateral_value": lender.get("collateral_value"),
        "true_collateral_value": lender.get("true_collateral_value"),
        "ledger_verified": summary["ledger_verified"],
        "conserved": not summary["conservation_problems"],
        "wall_s": summary["wall_s"],
    }


def parse_seeds(text: str) -> list[int]:
    """``"1-4,7"`` -> ``[1, 2, 3, 4, 7]``; ValueError on anything else.

    >>> parse_seeds("1-3,7")
    [1, 2, 3, 7]
    """
    seeds: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if match is None:
            raise ValueError(f"seeds {text!r}: {part!r} is not N or N-M")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if high < low:
            raise ValueError(f"seeds {text!r}: {part!r} runs backwards")
        if len(seeds) + high - low + 1 > MAX_SEEDS:
            raise ValueError(f"seeds {text!r}: at most {MAX_SEEDS} seeds")
        seeds.extend(range(low, high + 1))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds {text!r}: a seed is given twice")
    return seeds


def run_sweep(
    path: str | Path,
    seeds: Sequence[int],
    *,
    executor: Executor,
    days: int | None = None,
    stop_after_ticks: int | None = None,
    directory: Path | None = None,
    on_run: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``path`` once per seed on ``executor``; one row per seed, in seed order.

    Each run writes ``seed-<N>.db`` in ``directory`` (default: a new temporary directory).
    The scenario is validated here first, so a bad file fails before any worker starts.
    ``on_run(runs_done)`` is called as each row arrives (in seed order), for a progress bar.
    """
    scenario = load_scenario(path, seed=seeds[0] if seeds else 0)
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="dataex-sweep-"))
    directory.mkdir(parents=True, exist_ok=True)
    tasks = []
    for seed in seeds:
        database = directory / f"seed-{seed}.db"
        if database.exists():
            raise SimulationError(f"{database} exists: a sweep writes fresh databases")
        tasks.append(
            SweepTask(
                scenario.text,
                scenario.source,
                seed,
                days,
                stop_after_ticks,
                f"sqlite:///{database}",
            )
        )
    rows = []
    for row in executor.map(run_task, tasks):
        rows.append(row)
        if on_run is not None:
            on_run(len(rows))
    return rows
