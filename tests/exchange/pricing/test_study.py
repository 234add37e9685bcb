"""``dataex value study`` and the synthetic markets it measures on: seeded, refusing
impossible parameters with one line and exit status 2, and writing its table and chart."""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path
from statistics import median

import pytest
from typer.testing import CliRunner

from exchange.catalogue import Exclusivity, Scope, Territory
from exchange.cli import app
from exchange.pricing.records import TermsRecord, TradeRecord
from exchange.pricing.study import APPROACHES, STUDY_COLUMNS, USES, _aggregate, run_study
from exchange.pricing.synthetic import ConfidentialRecord, generate_market

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


# ------------------------------------------------------------------ confidential trading


def test_confidential_trades_are_the_valuable_products_and_leave_the_rest_unchanged() -> None:
    plain = generate_market(5, 400, 0.3, 40)
    split = generate_market(5, 400, 0.3, 40, confidential_share=0.3)
    secret = [c.trade for c in split.confidential]
    assert sorted(split.trades + tuple(secret), key=lambda t: t.trade_id) == list(plain.trades)
    assert len(secret) >= 0.3 * len(plain.trades)
    assert {t.product_id for t in split.trades}.isdisjoint(split.confidential_products)
    # Chosen by value: their trades are dearer than the public ones (median price).
    assert median(t.price for t in secret) > 2 * median(t.price for t in split.trades)
    for record in split.confidential:
        trade = record.trade
        large = round(trade.price * 100) * trade.quantity >= 50_000_000
        assert (record.band is not None) == large
        if large:
            assert record.band[0] <= trade.price < record.band[1]
        assert (record.published_on - trade.traded_at).days == (28 if large else 2)


def test_the_aggregate_rule_pools_only_ended_months_of_five_trades_from_three_sellers() -> None:
    world = generate_market(6, 50, 0.5, 5)
    product = world.products[0]
    terms = TermsRecord(Exclusivity.NON_EXCLUSIVE, 12, Scope.INTERNAL, Territory.DOMESTIC)
    as_of = dt.date(2026, 12, 31)
    by_id = {p.product_id: p for p in world.products}

    def cell(sellers: str, day: dt.date) -> list[ConfidentialRecord]:
        return [
            ConfidentialRecord(
                TradeRecord(f"X{i}", product.product_id, terms, 100.0 * (i + 1), 1 + i, day),
                seller, day, None,
            )
            for i, seller in enumerate(sellers)
        ]  # fmt: skip

    november = dt.date(2026, 11, 3)
    products, trades, pooled = _aggregate(cell("aabbc", november), by_id, as_of)
    assert pooled == 5 and len(products) == len(trades) == 1
    (aggregate,) = trades
    assert aggregate.quantity == 15 and aggregate.traded_at == dt.date(2026, 11, 1)
    assert math.isclose(aggregate.price, (100 + 400 + 900 + 1600 + 2500) / 15)
    assert products[0].product_id.startswith("confidential-aggregate:")
    assert _aggregate(cell("aabb", november), by_id, as_of)[2] == 0  # four trades
    assert _aggregate(cell("aaabb", november), by_id, as_of)[2] == 0  # two sellers
    assert _aggregate(cell("aabbc", dt.date(2026, 12, 2)), by_id, as_of)[2] == 0  # open month


def test_each_use_of_confidential_trades_is_scored_and_public_use_is_the_plain_study() -> None:
    plain = run_study(4, 300, [0.3], 40)
    rows = run_study(4, 300, [0.3], 40, confidential_share=0.3)
    assert [(r.confidential_use, r.subset, r.approach) for r in rows] == [
        (use, subset, name) for use in USES for subset in ("all", "confidential")
        for name in APPROACHES
    ]  # fmt: skip
    public = [r for r in rows if (r.confidential_use, r.subset) == ("public", "all")]
    figures = ("targets_valued", "median_abs_error_pct", "coverage_80_pct", "median_ratio")
    for mine, theirs in zip(public, plain, strict=True):
        for name in figures:
            a, b = getattr(mine, name), getattr(theirs, name)
            assert a == b or (math.isnan(a) and math.isnan(b)), name
    used = {r.confidential_use: r.confidential_used for r in rows}
    total = rows[0].confidential_trades
    assert used["public"] == total > used["published"] > 0 and used["none"] == 0
    assert used["published_and_aggregates"] >= used["published"]
    secret_targets = {r.targets_valued for r in rows
                      if r.subset == "confidential" and r.approach == "reconciled"}  # fmt: skip
    assert len(secret_targets) == 1 and 0 < secret_targets.pop() < 40


def test_a_confidential_share_outside_zero_to_one_is_one_error_line() -> None:
    result = runner.invoke(app, ["value", "study", "--confidential", "1"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: confidential share 1.0 is not in [0, 1)"


def test_the_confidential_study_writes_its_chart(tmp_path: Path) -> None:
    out, chart = tmp_path / "study.csv", tmp_path / "study.png"
    result = runner.invoke(
        app,
        ["value", "study", "--products", "300", "--targets", "40", "--shares", "0.3",
         "--confidential", "0.3", "--out", str(out), "--chart", str(chart)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with out.open() as file:
        rows = list(csv.DictReader(file))
    assert {row["confidential_use"] for row in rows} == set(USES)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
