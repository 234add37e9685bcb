"""``dataex simulate`` and ``dataex sweep``: agent-based runs of the exchange.

    dataex simulate SCENARIO.toml --seed N [--days D] [--ticks T] [--database URL] [--report DIR]
    dataex sweep SCENARIO.toml --seeds 1-32 [--workers N | --dask-local N | --scheduler URL]
        [--set KEY=V1,V2 ...] [--days D] [--out sweep.csv] [--facts FACTS.csv]
        [--dir DIR | --database URL] [--report DIR]

Both show a progress bar (ticks, or runs) on standard error when it is a terminal, never in
what they print on standard output; ``--no-progress`` turns it off.

The imperative shell around ``exchange.simulation``: a run goes through the in-process
exchange (validation, compliance gate, risk, journal, ledger) on a virtual clock; its
summary ends with the journal hash, which the same scenario and seed reproduce. A scenario
that cannot be simulated stops with one ``error:`` line naming the file and the field, and
exit status 2 (docs/simulation.md).
"""

from __future__ import annotations

import csv
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from exchange.cli.files import EXIT_BAD_INPUT
from exchange.cli.replay import progress_bar
from exchange.simulation.facts import fact_columns, facts_table
from exchange.simulation.grid import Setting, grid_points, parse_setting
from exchange.simulation.runner import SimulationError, run_simulation
from exchange.simulation.scenario_catalogue import load_scenario
from exchange.simulation.scenario_reader import ScenarioError
from exchange.simulation.sweep import (
    Executor,
    ProcessExecutor,
    SerialExecutor,
    SweepError,
    parse_seeds,
    run_sweep,
    sweep_columns,
)

# The printed table's columns (the CSV has every column of SWEEP_COLUMNS).
_PRINTED = (
    ("seed", 6),
    ("orders", 9),
    ("trades", 8),
    ("refused_share", 8),
    ("mean_spread_bp", 9),
    ("median_price_to_true", 9),
    ("mdape_market_holdout_pct", 9),
    ("mdape_cost_pct", 9),
    ("mdape_naive_pct", 9),
    ("acf1_returns", 8),
    ("excess_kurtosis", 9),
    ("acf1_abs_returns", 8),
    ("wall_s", 7),
    ("journal_hash", 16),
)
_HEADINGS = {
    "refused_share": "refused",
    "mean_spread_bp": "spread",
    "median_price_to_true": "px/true",
    "mdape_market_holdout_pct": "mkt_ho%",
    "mdape_cost_pct": "cost%",
    "mdape_naive_pct": "naive%",
    "acf1_returns": "acf1",
    "excess_kurtosis": "kurt",
    "acf1_abs_returns": "acf1|r|",
    "journal_hash": "hash",
}
# The printed facts table's columns (after the grid's keys), each with its width.
_PRINTED_FACTS = (
    ("fact", 17),
    ("runs", 5),
    ("mean", 10),
    ("sd", 10),
    ("ci95_low", 10),
    ("ci95_high", 10),
)

ScenarioArgument = Annotated[
    Path, typer.Argument(metavar="SCENARIO.toml", help="The scenario (docs/simulation.md).")
]
DaysOption = Annotated[
    int | None, typer.Option("--days", min=1, help="Days to run (default: the scenario's).")
]
TicksOption = Annotated[
    int | None,
    typer.Option("--ticks", min=1, help="Stop after this many ticks: a short run for checks."),
]
ProgressOption = Annotated[
    bool,
    typer.Option(
        "--progress/--no-progress", help="Show a progress bar (on stderr, when a terminal)."
    ),
]


def simulate_command(
    scenario: ScenarioArgument,
    seed: Annotated[int, typer.Option("--seed", min=0, help="The run's seed.")],
    days: DaysOption = None,
    ticks: TicksOption = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            metavar="URL",
            help="An empty database (default: a new SQLite file in a temp dir).",
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", metavar="DIR", help="Write summary.json and index.html here."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify", help="Verify the ledger and check conservation after the run."
        ),
    ] = True,
    show_progress: ProgressOption = True,
) -> None:
    """Run SCENARIO.toml through the exchange and print its summary and journal hash."""
    from exchange.simulation.metrics import summarise
    from exchange.simulation.report import summary_lines, write_report

    loaded = _load(scenario, seed)
    ticks_total = (days or loaded.days) * loaded.ticks_per_day
    if ticks is not None:
        ticks_total = min(ticks_total, ticks)
    try:
        with progress_bar("simulating", ticks_total, "ticks", show_progress) as on_tick:
            result = run_simulation(
                loaded,
                seed,
                days=days,
                stop_after_ticks=ticks,
                database_url=database,
                check=check,
                on_tick=on_tick,
            )
    except SimulationError as error:
        _fail(str(error))
    summary = summarise(result)
    if report is not None:
        try:
            json_path, html_path = write_report(summary, report)
        except OSError as error:
            _fail(f"{error.filename or report}: {error.strerror or error}")
        typer.echo(f"report: {html_path} and {json_path}")
    for line in summary_lines(summary):
        typer.echo(line)
    if result.verify_ok is False or result.conservation:
        raise typer.Exit(1)


def sweep_command(
    scenario: ScenarioArgument,
    seeds: Annotated[
        str, typer.Option("--seeds", metavar="N-M", help='Seeds, e.g. "1-32" or "1,4,9-12".')
    ],
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, help="Local worker processes (1: in-process; default: CPUs)."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="tcp://HOST:8786",
            help="Run on the Dask cluster of this scheduler (pip install 'dataex[cluster]').",
        ),
    ] = None,
    dask_local: Annotated[
        int | None,
        typer.Option(
            "--dask-local", metavar="N", min=1, help="Run on a local Dask cluster of N workers."
        ),
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=V1,V2",
            help="A scenario field's values, e.g. participants.noise.count=10,20,40 "
            "(repeat for a grid; each point runs once per seed).",
        ),
    ] = None,
    days: DaysOption = None,
    ticks: TicksOption = None,
    out: Annotated[
        Path, typer.Option("--out", metavar="FILE.csv", help="Where to write the table.")
    ] = Path("sweep.csv"),
    facts: Annotated[
        Path | None,
        typer.Option(
            "--facts",
            metavar="FACTS.csv",
            help="Where to write the stylized facts across seeds (default: beside --out, "
            "<name>-facts.csv).",
        ),
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            metavar="DIR",
            help="Where each run's SQLite file goes, as the workers see it "
            "(default: a new directory in each worker's temp dir).",
        ),
    ] = None,
    database_template: Annotated[
        str | None,
        typer.Option(
            "--database",
            metavar="URL",
            help="Each run's database: a URL template with {run}, {seed}, {point}.",
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", metavar="DIR", help="Each run writes its report in DIR/<run>/."),
    ] = None,
    show_progress: ProgressOption = True,
) -> None:
    """Run SCENARIO.toml once per seed (and grid point), in parallel; one table (CSV + printed)."""
    try:
        seed_list = parse_seeds(seeds)
    except ValueError as error:
        _fail(f"--seeds: {error}")
    try:
        grid = [parse_setting(text) for text in settings or []]
    except ValueError as error:
        _fail(f"--set {error}")
    if not out.parent.is_dir():
        _fail(f"{out}: directory {out.parent} does not exist")
    facts = facts or out.with_name(f"{out.stem}-facts.csv")
    if not facts.parent.is_dir():
        _fail(f"{facts}: directory {facts.parent} does not exist")
    if facts.resolve() == out.resolve():
        _fail(f"--facts {facts}: the runs' table is written there (--out)")
    ways = (("--workers", workers), ("--scheduler", scheduler), ("--dask-local", dask_local))
    chosen = [name for name, value in ways if value is not None]
    if len(chosen) > 1:
        _fail(f"{' and '.join(chosen)}: choose one way to run")
    if directory is not None and database_template is not None:
        _fail("--dir and --database: choose one place for the databases")
    with ExitStack() as stack:
        if scheduler is not None or dask_local is not None:
            from exchange.simulation.cluster import ClusterError, DaskExecutor, dask_client

            try:
                client = stack.enter_context(
                    dask_client(scheduler=scheduler, local_workers=dask_local)
                )
            except ClusterError as error:
                _fail(f"{'--scheduler' if scheduler else '--dask-local'}: {error}")
            executor: Executor = DaskExecutor(client)
        else:
            count = workers or os.cpu_count() or 1
            executor = SerialExecutor() if count == 1 else ProcessExecutor(count)
        try:
            runs = len(seed_list) * len(grid_points(grid))
        except ValueError as error:
            _fail(f"--set: {error}")
        try:
            with progress_bar("sweeping", runs, "runs", show_progress) as on_run:
                rows = run_sweep(
                    scenario,
                    seed_list,
                    executor=executor,
                    days=days,
                    stop_after_ticks=ticks,
                    directory=directory,
                    database_template=database_template,
                    report_directory=report,
                    settings=grid,
                    on_run=on_run,
                )
        except (ScenarioError, SimulationError, SweepError) as error:
            _fail(str(error))
    columns = sweep_columns(grid)
    with out.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    printed = [(setting.key, max(8, min(16, len(setting.key)))) for setting in grid]
    printed += list(_PRINTED)
    typer.echo(" ".join(f"{_heading(name, width):>{width}}" for name, width in printed))
    for row in rows:
        typer.echo(" ".join(_cell(row[name], width) for name, width in printed))
    failed = [row for row in rows if row["error"] is not None]
    for row in failed:
        where = ", ".join(f"{setting.key}={row[setting.key]}" for setting in grid)
        typer.echo(f"seed {row['seed']}{f' ({where})' if where else ''} failed: {row['error']}")
    _write_facts(facts_table(rows, grid), grid, facts)
    hashes = len({row["journal_hash"] for row in rows if row["error"] is None})
    failures = f", {len(failed)} failed" if failed else ""
    typer.echo(
        f"{len(rows)} runs, {hashes} distinct journal hashes{failures}; wrote {out} and {facts}"
    )
    if not all(row["ledger_verified"] and row["conserved"] for row in rows):
        raise typer.Exit(1)


def _write_facts(table: list[dict[str, Any]], grid: list[Setting], path: Path) -> None:
    """The stylized facts across seeds, as CSV at ``path`` and as a printed table."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=fact_columns(grid), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
    printed = [(setting.key, max(8, min(16, len(setting.key)))) for setting in grid]
    printed += list(_PRINTED_FACTS)
    typer.echo("stylized facts across seeds (mean, sd, 95% t interval of the mean):")
    typer.echo(" ".join(f"{_heading(name, width):>{width}}" for name, width in printed))
    for row in table:
        typer.echo(" ".join(_cell(row[name], width) for name, width in printed))


def _heading(name: str, width: int) -> str:
    heading = _HEADINGS.get(name, name)
    # A grid's key is shown by its last part (the field), which fits the column.
    return heading if len(heading) <= width else heading.rsplit(".", 1)[-1][:width]


def _cell(value: Any, width: int) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        text = f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}"
    else:
        text = str(value)[:width]
    return f"{text:>{width}}"


def _load(path: Path, seed: int) -> Any:
    try:
        return load_scenario(path, seed=seed)
    except ScenarioError as error:
        _fail(str(error))


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)
