"""Sweeps: independent runs fanned out over an executor, gathered into one table."""

from __future__ import annotations

import csv
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli import app
from exchange.cli.files import EXIT_BAD_INPUT
from exchange.simulation import parse_scenario, run_simulation
from exchange.simulation.grid import parse_setting
from exchange.simulation.sweep import (
    SWEEP_COLUMNS,
    ProcessExecutor,
    SerialExecutor,
    parse_seeds,
    run_sweep,
    sweep_columns,
)
from ledger.database import create_engine, dispose_engines
from ledger.store import Ledger
from tests.conftest import POSTGRES_URL_ENV
from tests.exchange.simulation.tiny import tiny

SHORT = {"days = 2": "days = 1"}


def test_seeds_parse_as_lists_and_ranges() -> None:
    assert parse_seeds("1-3,7") == [1, 2, 3, 7]
    assert parse_seeds("5") == [5]
    for bad in ("", "3-1", "a", "1,1", "1-"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_two_seeds_on_two_workers_match_runs_in_process(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny(SHORT))
    rows = run_sweep(scenario, [3, 4], executor=ProcessExecutor(2), directory=tmp_path / "runs")
    assert [row["seed"] for row in rows] == [3, 4]
    assert set(rows[0]) == set(SWEEP_COLUMNS)
    assert all(row["ledger_verified"] and row["conserved"] for row in rows)
    assert rows[0]["journal_hash"] != rows[1]["journal_hash"]
    # The worker's run is the same run as in this process.
    here = run_simulation(
        parse_scenario(tiny(SHORT), seed=4),
        4,
        database_url=f"sqlite:///{tmp_path / 'here.db'}",
        check=False,
    )
    assert rows[1]["journal_hash"] == here.journal_hash
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == [
        "seed-3.db",
        "seed-4.db",
    ]


def test_a_sweep_refuses_to_reuse_a_database(tmp_path: Path) -> None:
    from exchange.simulation import SimulationError

    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny(SHORT))
    run_sweep(scenario, [1], executor=SerialExecutor(), directory=tmp_path, stop_after_ticks=5)
    with pytest.raises(SimulationError, match=r"seed-1\.db exists"):
        run_sweep(scenario, [1], executor=SerialExecutor(), directory=tmp_path)


def test_the_sweep_command_writes_and_prints_one_table(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny(SHORT))
    out = tmp_path / "table.csv"
    outcome = CliRunner().invoke(
        app,
        [
            "sweep",
            str(scenario),
            "--seeds",
            "1-2",
            "--workers",
            "1",
            "--ticks",
            "10",
            "--out",
            str(out),
            "--dir",
            str(tmp_path / "runs"),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    with out.open() as file:
        rows = list(csv.DictReader(file))
    assert [row["seed"] for row in rows] == ["1", "2"]
    assert "2 runs, 2 distinct journal hashes" in outcome.output


def test_a_run_that_fails_is_a_row_and_the_others_finish(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny(SHORT))
    (tmp_path / "2").write_text("a file where seed 2's directory would go")
    rows = run_sweep(
        scenario,
        [1, 2, 3],
        executor=ProcessExecutor(2),
        stop_after_ticks=5,
        database_template=f"sqlite:///{tmp_path}/{{seed}}/run.db",
    )
    assert [row["seed"] for row in rows] == [1, 2, 3]
    assert [row["error"] is None for row in rows] == [True, False, True]
    assert str(tmp_path / "2") in rows[1]["error"]
    assert rows[1]["journal_hash"] is None and rows[1]["ledger_verified"] is None
    assert rows[0]["ledger_verified"] and rows[2]["ledger_verified"]
    assert rows[2]["database"] == f"sqlite:///{tmp_path}/3/run.db"


def test_a_grid_runs_each_point_once_per_seed(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny(SHORT))
    settings = [parse_setting("participants.noise.count=2,4")]
    rows = run_sweep(
        scenario,
        [1, 2],
        executor=SerialExecutor(),
        stop_after_ticks=4,
        directory=tmp_path / "runs",
        report_directory=tmp_path / "reports",
        settings=settings,
    )
    assert [(row["participants.noise.count"], row["seed"]) for row in rows] == [
        (2, 1),
        (2, 2),
        (4, 1),
        (4, 2),
    ]
    assert tuple(rows[0]) == sweep_columns(settings)
    assert len({row["journal_hash"] for row in rows}) == 4
    names = ["point-1-seed-1", "point-1-seed-2", "point-2-seed-1", "point-2-seed-2"]
    assert [row["database"] for row in rows] == [
        f"sqlite:///{tmp_path / 'runs' / name}.db" for name in names
    ]
    for name in names:
        assert (tmp_path / "reports" / name / "index.html").is_file()


@pytest.mark.parametrize(
    ("template", "grid", "problem"),
    [
        ("sqlite:///x/{host}.db", False, r"unknown placeholder \{host\}"),
        ("sqlite:///x/sweep.db", False, r"needs \{run\} or \{seed\}"),
        ("sqlite:///x/{seed}.db", True, r"needs \{run\}, or \{seed\} and \{point\}"),
        ("sqlite:///x/{seed.db", False, "database URL template"),
    ],
)
def test_a_database_template_must_name_each_run_apart(
    tmp_path: Path, template: str, grid: bool, problem: str
) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny(SHORT))
    settings = [parse_setting("scenario.days=1,2")] if grid else []
    with pytest.raises(ValueError, match=problem):
        run_sweep(
            scenario,
            [1, 2],
            executor=SerialExecutor(),
            database_template=template,
            settings=settings,
        )


def test_a_sweep_on_a_local_dask_cluster_gives_the_local_table(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny(SHORT))
    common = ["sweep", str(scenario), "--seeds", "1-3", "--ticks", "6"]
    common += ["--set", "agents.noise.activity=0.2,0.4"]
    tables = {}
    for name, how in [("local", ["--workers", "1"]), ("dask", ["--dask-local", "2"])]:
        out = tmp_path / f"{name}.csv"
        outcome = CliRunner().invoke(
            app, [*common, *how, "--out", str(out), "--dir", str(tmp_path / name)]
        )
        assert outcome.exit_code == 0, outcome.output
        assert "6 runs, 6 distinct journal hashes" in outcome.output
        with out.open() as file:
            tables[name] = [
                {key: value for key, value in row.items() if key not in ("wall_s", "database")}
                for row in csv.DictReader(file)
            ]
    assert [row["seed"] for row in tables["dask"]] == ["1", "2", "3"] * 2
    assert tables["dask"] == tables["local"]


def test_an_unreachable_scheduler_is_one_error_line(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny(SHORT))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for address, problem in [
        (f"tcp://127.0.0.1:{port}", f"cannot reach the scheduler at tcp://127.0.0.1:{port}"),
        ("tcp://nohost", "is not a scheduler address like tcp://HOST:8786"),
    ]:
        outcome = CliRunner().invoke(
            app, ["sweep", str(scenario), "--seeds", "1", "--scheduler", address]
        )
        assert outcome.exit_code == EXIT_BAD_INPUT
        assert outcome.output.startswith("error: --scheduler: ")
        assert problem in outcome.output
        assert len(outcome.output.splitlines()) == 1


def test_the_sweep_command_takes_one_way_to_run(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny(SHORT))
    for extra, problem in [
        (["--workers", "2", "--dask-local", "2"], "--workers and --dask-local: choose one"),
        (["--set", "scenario.days"], "--set 'scenario.days' is not KEY=VALUE"),
        (["--dir", "x", "--database", "sqlite:///{run}.db"], "--dir and --database"),
    ]:
        outcome = CliRunner().invoke(app, ["sweep", str(scenario), "--seeds", "1", *extra])
        assert outcome.exit_code == EXIT_BAD_INPUT
        assert outcome.output.startswith(f"error: {problem}")
        assert len(outcome.output.splitlines()) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_each_run_writes_the_database_the_template_names(tmp_path: Path, backend: str) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny(SHORT))
    with ExitStack() as stack:
        if backend == "sqlite":
            template = f"sqlite:///{tmp_path}/{{run}}.db"
        else:
            server_url = os.environ.get(POSTGRES_URL_ENV)
            if not server_url:
                pytest.skip(f"{POSTGRES_URL_ENV} is not set")
            prefix = f"sweep_test_{uuid.uuid4().hex[:8]}"
            stack.enter_context(_schemas(server_url, [f"{prefix}_1", f"{prefix}_2"]))
            template = f"{server_url}?options=-csearch_path%3D{prefix}_{{seed}}"
        rows = run_sweep(
            scenario,
            [1, 2],
            executor=SerialExecutor(),
            stop_after_ticks=4,
            database_template=template,
        )
        assert [row["error"] for row in rows] == [None, None]
        for row in rows:
            assert row["database"] == template.format(run=f"seed-{row['seed']}", seed=row["seed"])
            head = Ledger.open(create_engine(row["database"])).journal_head_seq()
            assert head == row["journal_commands"]


@contextmanager
def _schemas(server_url: str, names: list[str]) -> Iterator[None]:
    admin = create_engine(server_url)
    try:
        with admin.begin() as connection:
            for name in names:
                connection.exec_driver_sql(f"CREATE SCHEMA {name}")
        yield
    finally:
        dispose_engines()
        with admin.begin() as connection:
            for name in names:
                connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        admin.dispose()
