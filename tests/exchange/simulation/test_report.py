"""The measures and the report: stylized facts, accuracy, the summary, JSON and HTML."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from exchange.cli import app
from exchange.simulation import parse_scenario, run_simulation
from exchange.simulation.metrics import (
    accuracy,
    autocorrelation,
    bar_returns,
    excess_kurtosis,
    summarise,
)
from exchange.simulation.report import render_html, summary_lines, write_report
from tests.exchange.simulation.tiny import tiny


def test_bar_returns_repeat_the_last_price_in_a_bar_without_trades() -> None:
    returns = bar_returns([(0, 100), (5, 110)], bar_ticks=2, ticks=8)
    assert returns.tolist() == pytest.approx([0.0, math.log(1.1), 0.0])


def test_autocorrelation_and_kurtosis_of_known_series() -> None:
    alternating = np.array([1.0, -1.0] * 50)
    assert autocorrelation(alternating, 1) == pytest.approx(-0.99)
    assert autocorrelation(np.ones(10), 1) is None
    rng = np.random.default_rng(0)
    assert abs(excess_kurtosis(rng.normal(size=20_000))) < 0.15  # type: ignore[arg-type]
    assert excess_kurtosis(rng.standard_t(3, size=20_000)) > 3  # type: ignore[operator]


def test_accuracy_measures_errors_against_truth() -> None:
    rows = [
        {"true_value": 100.0, "m": 90.0, "m_method": "market"},
        {"true_value": 200.0, "m": 260.0, "m_method": "cost_fallback"},
        {"true_value": 50.0, "m": None, "m_method": "market"},
    ]
    stats = accuracy(rows, "m")
    assert stats["n"] == 2
    assert stats["mdape_pct"] == pytest.approx(20.0)
    assert stats["within_20_pct"] == pytest.approx(50.0)
    assert stats["fallbacks"] == 1


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict:
    directory = tmp_path_factory.mktemp("report")
    result = run_simulation(
        parse_scenario(tiny(), seed=2), 2, database_url=f"sqlite:///{directory / 'run.db'}"
    )
    return summarise(result)


def test_the_summary_holds_every_measure(summary: dict) -> None:
    assert summary["journal_hash"] and summary["ledger_verified"] is True
    assert summary["trades"] == sum(row["trades"] for row in summary["instruments"]) > 0
    assert sum(summary["bins"]["trades"]) == summary["trades"]
    assert summary["bins"]["unit"] == "day" and len(summary["bins"]["labels"]) == 2
    valuation = summary["valuation"]
    assert set(valuation["approaches"]) == {"market", "market_holdout", "cost", "naive"}
    assert len(valuation["rows"]) == summary["instruments_listed"]
    (facility,) = summary["facilities"]
    assert facility["facility"]["marks"] and len(facility["path"]) == 2
    assert summary["price_paths"] and summary["book"]["ticks"]
    json.dumps(summary)  # plain JSON values only


def test_the_report_writes_json_and_a_page_of_inline_charts(summary: dict, tmp_path: Path) -> None:
    json_path, html_path = write_report(summary, tmp_path / "out")
    assert json.loads(json_path.read_text())["journal_hash"] == summary["journal_hash"]
    page = html_path.read_text()
    assert page.count("<svg") >= 6
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org", "")
    assert summary["journal_hash"] in page
    assert summary_lines(summary)[-1] == f"journal hash {summary['journal_hash']}"


def test_the_stylized_facts_section_appears_for_a_traded_continuous_market(summary: dict) -> None:
    facts = {
        "bar_seconds": 60.0,
        "burn_in_ticks": 0,
        "acf_abs_returns": [0.2, 0.1],
        "instruments": [
            {
                "symbol": "X",
                "returns": 100,
                "return_sd": 0.01,
                "acf1_returns": -0.05,
                "excess_kurtosis": 4.0,
                "acf1_abs_returns": 0.2,
            }
        ],
        "mean": {
            "acf1_returns": -0.05,
            "excess_kurtosis": 4.0,
            "acf1_abs_returns": 0.2,
            "return_sd": 0.01,
        },
    }
    page = render_html({**summary, "stylized_facts": facts})
    assert "Stylized facts" in page and "acf1(|r|)" in page


def test_the_simulate_command_prints_the_summary_and_writes_the_report(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(tiny())
    outcome = CliRunner().invoke(
        app,
        [
            "simulate",
            str(scenario),
            "--seed",
            "1",
            "--days",
            "1",
            "--database",
            f"sqlite:///{tmp_path / 'run.db'}",
            "--report",
            str(tmp_path / "out"),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    lines = outcome.output.strip().splitlines()
    assert lines[-1].startswith("journal hash ") and len(lines[-1].split()[-1]) == 64
    assert "ledger verified: ok; cash and licences conserved: ok" in outcome.output
    assert (tmp_path / "out" / "index.html").exists()
