"""Many independent runs of one scenario, one per seed and grid point, gathered into one table.

Runs share nothing (each writes its own database), so they fan out over any executor whose
``run(fn, tasks)`` yields each task's index with its result, or with the exception that
stopped it, as the tasks finish:

- :class:`SerialExecutor`: in this process, one after another;
- :class:`ProcessExecutor`: a local ``concurrent.futures.ProcessPoolExecutor`` (``spawn``
  start method, so workers inherit no threads or open databases);
- :class:`~exchange.simulation.cluster.DaskExecutor`: a Dask distributed cluster.

:func:`run_sweep` puts the rows back in task order, so the table does not depend on which
run finished first, and a failed run is a row that says why (``error``) without stopping the
others. A task is plain data (:class:`SweepTask`: the scenario's text, not a path, and the
grid point's settings), and :func:`run_task` is a top-level function, so both pickle and a
remote worker needs no shared file system: its database and report go where the task says,
which must be a place the worker can write (a database URL, or a directory that is shared or
local to each worker).
"""

from __future__ import annotations

import multiprocessing
import re
import string
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import make_url

from exchange.simulation.grid import Point, Setting, grid_points
from exchange.simulation.runner import SimulationError
from exchange.simulation.scenario_catalogue import load_scenario, parse_scenario
from exchange.simulation.scenario_reader import ScenarioError

__all__ = [
    "MAX_RUNS",
    "MAX_SEEDS",
    "SWEEP_COLUMNS",
    "Executor",
    "ProcessExecutor",
    "SerialExecutor",
    "SweepError",
    "SweepTask",
    "parse_seeds",
    "run_sweep",
    "run_task",
    "sweep_columns",
]

T = TypeVar("T")
R = TypeVar("R")

# Limit: seeds in one sweep.
MAX_SEEDS = 10_000
# Limit: runs in one sweep (seeds times grid points).
MAX_RUNS = 10_000
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
    "acf10_abs_returns",
    "return_sd",
    "two_sided_share",
    "mean_depth_units",
    "collateral_value",
    "true_collateral_value",
    "ledger_verified",
    "conserved",
    "wall_s",
    "database",
    "error",
)
# The placeholders of a database URL template, e.g. sqlite:////shared/sweep/{run}.db.
TEMPLATE_FIELDS = ("run", "seed", "point")


class SweepError(ValueError):
    """A sweep that cannot start: its grid, size or database template is wrong."""


class Executor(Protocol):
    """Anything that runs a picklable function over tasks and yields, as each task finishes,
    its index in ``tasks`` with its result, or with the exception that stopped it."""

    def run(
        self, fn: Callable[[T], R], tasks: Sequence[T]
    ) -> Iterator[tuple[int, R | BaseException]]: ...


class SerialExecutor:
    def run(
        self, fn: Callable[[T], R], tasks: Sequence[T]
    ) -> Iterator[tuple[int, R | BaseException]]:
        for index, task in enumerate(tasks):
            try:
                yield index, fn(task)
            except Exception as error:
                yield index, error


class ProcessExecutor:
    """Runs tasks in ``workers`` local processes."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers

    def run(
        self, fn: Callable[[T], R], tasks: Sequence[T]
    ) -> Iterator[tuple[int, R | BaseException]]:
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        try:
            futures = {pool.submit(fn, task): index for index, task in enumerate(tasks)}
            for future in as_completed(futures):
                error = future.exception()
                yield futures[future], future.result() if error is None else error
        finally:
            # A caller that stops reading (Ctrl-C) leaves no queued run behind.
            pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True, slots=True)
class SweepTask:
    """One run: the scenario's text with a grid point's settings, a seed, and where the
    worker writes. ``database_url`` None: a file in ``<temp>/dataex-sweep-<sweep_id>`` of
    the worker's machine. ``report_directory`` None: no report."""

    scenario_text: str
    source: str
    seed: int
    days: int | None
    stop_after_ticks: int | None
    database_url: str | None
    settings: Point = ()
    run_name: str = ""
    sweep_id: str = ""
    report_directory: str | None = None


def run_task(task: SweepTask) -> dict[str, Any]:
    """One run, summarised as one row of :data:`SWEEP_COLUMNS`. A run that fails is a row
    whose ``error`` says why and whose measures are None: one seed's failure must not cost
    the others' results, which a raised exception would on most executors."""
    from exchange.simulation.metrics import summarise
    from exchange.simulation.report import write_report
    from exchange.simulation.runner import run_simulation

    database_url = task.database_url or _worker_database(task)
    try:
        scenario = parse_scenario(
            task.scenario_text, source=task.source, seed=task.seed, settings=task.settings
        )
        _make_directory_of(database_url)
        result = run_simulation(
            scenario,
            task.seed,
            days=task.days,
            stop_after_ticks=task.stop_after_ticks,
            database_url=database_url,
        )
        summary = summarise(result)
        if task.report_directory is not None:
            write_report(summary, Path(task.report_directory))
    except (ScenarioError, SimulationError) as error:
        return failed_row(task.seed, database_url, str(error))
    except OSError as error:
        return failed_row(task.seed, database_url, f"{error.filename or ''}: {error.strerror}")
    except Exception as error:
        # Anything else is a bug, named by its type so that it can be found.
        return failed_row(task.seed, database_url, f"{type(error).__name__}: {error}")
    return sweep_row(summary) | {"database": database_url, "error": None}


def failed_row(seed: int, database_url: str | None, error: str) -> dict[str, Any]:
    """The row of a run that did not finish: its seed, database and error, no measures."""
    row: dict[str, Any] = dict.fromkeys(SWEEP_COLUMNS)
    row.update(seed=seed, database=database_url, error=error)
    return row


def _worker_database(task: SweepTask) -> str:
    directory = Path(tempfile.gettempdir()) / f"dataex-sweep-{task.sweep_id}"
    return f"sqlite:///{directory / task.run_name}.db"


def _make_directory_of(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


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
    acf_abs = summary["stylized_facts"]["acf_abs_returns"]
    # The facilities' haircut collateral and the true value of their pledges, at the end.
    last = [entry["path"][-1] for entry in summary["facilities"] if entry["path"]]
    collateral = sum(point["collateral_minor"] for point in last) / 100 if last else None
    true_collateral = sum(point["true_collateral_minor"] for point in last) / 100 if last else None
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
        "mean_spread_bp": _mean(spreads),
        "median_price_to_true": ratios[len(ratios) // 2] if ratios else None,
        "mdape_market_pct": mdape("market"),
        "mdape_market_holdout_pct": mdape("market_holdout"),
        "mdape_cost_pct": mdape("cost"),
        "mdape_naive_pct": mdape("naive"),
        "market_fallbacks": (approaches.get("market") or {}).get("fallbacks"),
        "acf1_returns": facts.get("acf1_returns"),
        "excess_kurtosis": facts.get("excess_kurtosis"),
        "acf1_abs_returns": facts.get("acf1_abs_returns"),
        "acf10_abs_returns": acf_abs[9] if len(acf_abs) >= 10 else None,
        "return_sd": facts.get("return_sd"),
        "two_sided_share": _mean([row["two_sided_share"] for row in instruments]),
        "mean_depth_units": _mean([row["mean_depth_units"] for row in instruments]),
        "collateral_value": collateral,
        "true_collateral_value": true_collateral,
        "ledger_verified": summary["ledger_verified"],
        "conserved": not summary["conservation_problems"],
        "wall_s": summary["wall_s"],
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


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


def sweep_columns(settings: Sequence[Setting]) -> tuple[str, ...]:
    """The table's columns: the grid's keys, then :data:`SWEEP_COLUMNS`."""
    return tuple(setting.key for setting in settings) + SWEEP_COLUMNS


def run_name(seed: int, point: int | None) -> str:
    """A run's name in file names: ``seed-<N>``, or ``point-<K>-seed-<N>`` in a grid."""
    return f"seed-{seed}" if point is None else f"point-{point}-seed-{seed}"


def run_sweep(
    path: str | Path,
    seeds: Sequence[int],
    *,
    executor: Executor,
    days: int | None = None,
    stop_after_ticks: int | None = None,
    directory: Path | None = None,
    database_template: str | None = None,
    report_directory: Path | None = None,
    settings: Sequence[Setting] = (),
    on_run: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``path`` once per grid point of ``settings`` and seed on ``executor``; one row per
    run, grid points in order and seeds in order within each (:func:`sweep_columns`).

    Each run's database is ``<directory>/<run>.db``, or ``database_template`` with ``{run}``,
    ``{seed}`` and ``{point}`` filled in, or (neither given) ``<run>.db`` in a new directory
    ``dataex-sweep-<id>`` under the worker's temporary directory; ``<run>`` is
    :func:`run_name`. ``report_directory``: each run writes ``<report_directory>/<run>/``.
    Directories are made by the worker, so they must be paths the workers can write.
    The scenario and every grid point are validated here first, so a bad file or setting
    fails before any worker starts; a run that fails later is a row with an ``error``.
    ``on_run(runs_done)`` is called as each run finishes, for a progress bar.
    """
    if directory is not None and database_template is not None:
        raise SweepError("give a directory or a database URL template, not both")
    try:
        points = grid_points(settings)
    except ValueError as error:
        raise SweepError(str(error)) from None
    if len(points) * len(seeds) > MAX_RUNS:
        raise SweepError(f"{len(points) * len(seeds):,} runs, at most {MAX_RUNS:,} in one sweep")
    grid = bool(settings)
    if database_template is not None:
        _check_template(database_template, grid)
    sources = [load_scenario(path, seed=seeds[0] if seeds else 0, settings=p) for p in points]
    sweep_id = uuid.uuid4().hex[:12]
    tasks: list[SweepTask] = []
    for number, (point, scenario) in enumerate(zip(points, sources, strict=True), start=1):
        for seed in seeds:
            name = run_name(seed, number if grid else None)
            url = None
            if database_template is not None:
                url = database_template.format(run=name, seed=seed, point=number)
            elif directory is not None:
                database = directory / f"{name}.db"
                if database.exists():
                    raise SimulationError(f"{database} exists: a sweep writes fresh databases")
                url = f"sqlite:///{database}"
            report = None if report_directory is None else str(report_directory / name)
            tasks.append(
                SweepTask(
                    scenario.text,
                    scenario.source,
                    seed,
                    days,
                    stop_after_ticks,
                    url,
                    settings=point,
                    run_name=name,
                    sweep_id=sweep_id,
                    report_directory=report,
                )
            )
    urls = [task.database_url for task in tasks if task.database_url is not None]
    if len(set(urls)) != len(urls):
        raise SweepError(f"the database URL template {database_template!r} names a URL twice")
    rows: list[dict[str, Any] | None] = [None] * len(tasks)
    for done, (index, outcome) in enumerate(executor.run(run_task, tasks), start=1):
        task = tasks[index]
        if isinstance(outcome, BaseException):
            # The executor lost the run (a worker died, a task would not pickle).
            message = f"{type(outcome).__name__}: {outcome}"
            outcome = failed_row(task.seed, task.database_url, message)
        rows[index] = dict(task.settings) | outcome
        if on_run is not None:
            on_run(done)
    assert all(row is not None for row in rows), "an executor left a task without an outcome"
    return rows  # type: ignore[return-value]


def _check_template(template: str, grid: bool) -> None:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:
        raise SweepError(f"database URL template {template!r}: {error}") from None
    unknown = fields - set(TEMPLATE_FIELDS)
    if unknown:
        raise SweepError(
            f"database URL template {template!r}: unknown placeholder {{{sorted(unknown)[0]}}}"
            f" (use {{run}}, {{seed}}, {{point}})"
        )
    distinct = "run" in fields or ("seed" in fields and ("point" in fields or not grid))
    if not distinct:
        needed = "{run}, or {seed} and {point}" if grid else "{run} or {seed}"
        raise SweepError(f"database URL template {template!r}: it needs {needed}")
