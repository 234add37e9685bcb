"""``dataex value study`` and the synthetic markets it measures on: seeded, refusing
impossible parameters with one line and exit status 2, and writing its table and chart."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli import app
from exchange.pricing.study import APPROACHES, STUDY_COLUMNS, run_study
from exchange.pricing.synthetic import generate_market

runner = CliRunner()


def test_same_seed_gives_the_same_market_and_the_same_products_at_every_share() -> None:
    first = generate_market(3, 200, 0.2, 20)
    again = generate_market(3, 200, 0.2, 20)
    thinner = generate_market(3, 200, 0.05, 20)
    assert first == again
    assert first.products == thinner.products
    assert len(thinner.traded) == 10 and len(first.traded) == 40


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--shares", "0"], "traded share 0.0 is not in (0, 1]"),
        (["--shares", "0.1,1.5"], "traded share 1.5 is not in (0, 1]"),
        (["--shares", "-0.2"], "traded share -0.2 is not in (0, 1]"),
        (["--shares", "nan"], "traded share nan is not in (0, 1]"),
        (["--shares", "0.1,x"], "--shares: 'x' is not a number"),
        (["--products", "0"], "products must be in 1..200000, not 0"),
        (["--targets", "0"], "targets must be in 1..100000, not 0"),
        (
            ["--out", "/nonexistent-dir/s.csv"],
            "/nonexistent-dir/s.csv: directory /nonexistent-dir does not exist",
        ),
    ],
)
def test_impossible_study_is_one_error_line_and_exit_2(arguments, message) -> None:
    result = runner.invoke(app, ["value", "study", *arguments])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"error: {message}"


def test_study_writes_every_approach_at_every_share(tmp_path: Path) -> None:
    out, chart = tmp_path / "study.csv", tmp_path / "study.png"
    result = runner.invoke(
        app,
        ["value", "study", "--products", "300", "--targets", "40", "--shares", "0.1,0.5",
         "--out", str(out), "--chart", str(chart)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with out.open() as file:
        rows = list(csv.DictReader(file))
    assert tuple(rows[0]) == STUDY_COLUMNS
    assert [(r["traded_share"], r["approach"]) for r in rows] == [
        (share, name) for share in ("0.1", "0.5") for name in APPROACHES
    ]
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_target_is_valued_by_the_reconciled_and_the_naive_approach() -> None:
    rows = run_study(4, 300, [0.2], 50)
    by_name = {row.approach: row for row in rows}
    assert by_name["reconciled"].targets_valued == 50 == by_name["naive"].targets_valued
    assert not math.isnan(by_name["reconciled"].coverage_80_pct)
    assert math.isnan(by_name["naive"].coverage_80_pct)
