"""Sweeps: independent runs fanned out over an executor, gathered into one table."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli import app
from exchange.simulation import parse_scenario, run_simulation
from exchange.simulation.sweep import (
    SWEEP_COLUMNS,
    ProcessExecutor,
    SerialExecutor,
    parse_seeds,
    run_sweep,
)
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
