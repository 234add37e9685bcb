"""Stylized facts across the seeds of a sweep: means and 95% t intervals per grid point."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from exchange.cli import app
from exchange.cli.files import EXIT_BAD_INPUT
from exchange.simulation.facts import (
    FACTS,
    fact_columns,
    facts_table,
    mean_interval,
    t_quantile_975,
)
from exchange.simulation.grid import parse_setting
from exchange.simulation.sweep import SWEEP_COLUMNS
from tests.exchange.simulation.tiny import tiny

# Bars of one tick, so that two days of 30 ticks give the continuous instrument enough bar
# returns for its stylized facts.
FACTS_SCENARIO = {"bar_ticks = 2": "bar_ticks = 1"}


def _t_probability_to(q: float, df: int) -> float:
    """P(0 < T < q) for Student's t with ``df`` degrees of freedom, by the trapezoid rule."""
    x = np.linspace(0.0, q, 200_001)
    scale = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    return float(np.trapezoid(scale * (1 + x * x / df) ** (-(df + 1) / 2), x))


@pytest.mark.parametrize("df", [*range(1, 31), 31, 45, 80, 500])
def test_the_t_quantile_leaves_two_and_a_half_percent_in_each_tail(df: int) -> None:
    assert _t_probability_to(t_quantile_975(df), df) == pytest.approx(0.475, abs=1e-6)


def test_the_mean_and_interval_of_known_values() -> None:
    summary = mean_interval([1.0, 2.0, 3.0])
    assert (summary.n, summary.mean, summary.sd) == (3, 2.0, 1.0)
    half = 4.302653 / math.sqrt(3)
    assert summary.low == pytest.approx(2.0 - half) and summary.high == pytest.approx(2.0 + half)
    # Five values: mean 0.2, sd sqrt(0.025); t(0.975, 4) = 2.776445.
    values = [0.1, 0.3, 0.2, 0.4, 0.0]
    summary = mean_interval(values)
    sd = math.sqrt(sum((v - 0.2) ** 2 for v in values) / 4)
    assert summary.mean == pytest.approx(0.2)
    assert summary.sd == pytest.approx(sd) == pytest.approx(math.sqrt(0.025))
    assert summary.low == pytest.approx(0.2 - 2.776445 * sd / math.sqrt(5))
    assert summary.high == pytest.approx(0.2 + 2.776445 * sd / math.sqrt(5))


def test_one_value_has_a_mean_and_no_interval_and_none_has_nothing() -> None:
    one = mean_interval([0.5])
    assert (one.n, one.mean, one.sd, one.low, one.high) == (1, 0.5, None, None, None)
    none = mean_interval([])
    assert (none.n, none.mean, none.sd, none.low, none.high) == (0, None, None, None, None)


def test_the_table_summarises_each_grid_point_without_failed_or_unmeasured_runs() -> None:
    settings = [parse_setting("agents.noise.activity=0.1,0.2")]

    def row(
        activity: float, seed: int, kurtosis: float | None, error: str | None = None
    ) -> dict[str, Any]:
        facts = {fact: None if error else 1.0 for fact, _ in FACTS}
        return (
            {"agents.noise.activity": activity, "seed": seed, "error": error}
            | facts
            | {"excess_kurtosis": kurtosis}
        )

    rows = [
        row(0.1, 1, 2.0),
        row(0.1, 2, 4.0),
        row(0.1, 3, None),
        row(0.2, 1, 10.0),
        row(0.2, 2, 99.0, error="no such directory"),
        row(0.2, 3, 12.0),
        row(0.2, 4, 14.0),
    ]
    table = facts_table(rows, settings)
    assert len(table) == 2 * len(FACTS)
    assert all(tuple(line) == fact_columns(settings) for line in table)
    kurtosis = {
        line["agents.noise.activity"]: line for line in table if line["fact"] == "excess_kurtosis"
    }
    low = kurtosis[0.1]
    assert (low["runs"], low["mean"]) == (2, 3.0)
    # sd sqrt(2) over sqrt(2) seeds: the half-width is t(0.975, 1) itself.
    assert low["ci95_high"] - low["mean"] == pytest.approx(12.706205)
    high = kurtosis[0.2]
    assert (high["runs"], high["mean"], high["sd"]) == (3, 12.0, 2.0)
    spread = [line for line in table if line["fact"] == "mean_spread_bp"]
    assert [(line["runs"], line["mean"]) for line in spread] == [(3, 1.0), (3, 1.0)]
    assert spread[0]["ci95_low"] == spread[0]["ci95_high"] == 1.0


def test_every_fact_is_a_column_of_the_sweep() -> None:
    assert {fact for fact, _ in FACTS} <= set(SWEEP_COLUMNS)


Sweep = tuple[str, list[dict[str, str]], list[dict[str, str]]]


def _sweep(tmp_path: Path, name: str) -> Sweep:
    """Two seeds at two grid points of the small scenario through ``dataex sweep``: what it
    printed, its runs' table and its facts table."""
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny(FACTS_SCENARIO))
    out = tmp_path / f"{name}.csv"
    outcome = CliRunner().invoke(
        app,
        [
            "sweep",
            str(scenario),
            "--seeds",
            "1-2",
            "--workers",
            "1",
            "--set",
            "agents.noise.activity=0.3,0.5",
            "--out",
            str(out),
            "--dir",
            str(tmp_path / f"{name}-runs"),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    with out.open() as file:
        runs = list(csv.DictReader(file))
    with (tmp_path / f"{name}-facts.csv").open() as file:
        facts = list(csv.DictReader(file))
    return outcome.output, runs, facts


@pytest.fixture(scope="module")
def first_sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    return _sweep(tmp_path_factory.mktemp("facts"), "first")


def test_a_sweep_writes_and_prints_the_facts_of_each_grid_point(first_sweep: Sweep) -> None:
    output, runs, facts = first_sweep
    assert "stylized facts across seeds" in output
    assert [(line["agents.noise.activity"], line["fact"]) for line in facts] == [
        (activity, fact) for activity in ("0.3", "0.5") for fact, _ in FACTS
    ]
    # Each mean is the mean of the runs' own column, over both seeds.
    for line in facts:
        values = [
            float(run[line["fact"]])
            for run in runs
            if run["agents.noise.activity"] == line["agents.noise.activity"]
        ]
        assert int(line["runs"]) == len(values) == 2
        assert float(line["mean"]) == pytest.approx(sum(values) / 2)
        assert float(line["ci95_low"]) <= float(line["mean"]) <= float(line["ci95_high"])
    kurtosis = [line for line in facts if line["fact"] == "excess_kurtosis"]
    assert all(float(line["mean"]) > 0 for line in kurtosis)


def test_the_same_seeds_give_the_same_facts_table(first_sweep: Sweep, tmp_path: Path) -> None:
    _, _, first = first_sweep
    _, _, second = _sweep(tmp_path, "second")
    assert first == second
    assert len(first) == 2 * len(FACTS)


def test_the_facts_table_may_not_overwrite_the_runs_table(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny(FACTS_SCENARIO))
    out = tmp_path / "sweep.csv"
    arguments = ["sweep", str(scenario), "--seeds", "1", "--out", str(out)]
    outcome = CliRunner().invoke(app, [*arguments, "--facts", str(out)])
    assert outcome.exit_code == EXIT_BAD_INPUT
    assert "error: --facts" in outcome.output and "--out" in outcome.output
    outcome = CliRunner().invoke(app, [*arguments, "--facts", str(tmp_path / "no" / "f.csv")])
    assert outcome.exit_code == EXIT_BAD_INPUT
    assert "does not exist" in outcome.output
    assert not out.exists()
