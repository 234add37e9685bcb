"""Valuing a target: comparables, the market approach's table and range, the cost fallback,
the income approach and reconciliation, and the JSON and HTML reports."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.catalogue import Scope, UpdateFrequency
from exchange.pricing import (
    FACTOR_NAMES,
    BookSnapshot,
    IncomeInputs,
    TargetSpec,
    TradeRecord,
    find_comparables,
    prepare_market,
    render_report,
    value,
    value_once,
)
from tests.exchange.pricing.helpers import (
    END,
    model_log_price,
    product,
    synthetic_history,
    terms,
)


@pytest.fixture(scope="module")
def market():
    products, trades = synthetic_history(seed=11, products=120, trades=1_500, noise_sd=0.08)
    return prepare_market(products, trades, as_of=END)


def untraded(seed: int = 0, **changes):
    fields = dict(product_id=f"NEW{seed}", record_count=2_000_000, coverage_months=36,
                  frequency=UpdateFrequency.DAILY, quality=(0.85, 0.9, 0.8, 0.95))  # fmt: skip
    fields.update(changes)
    return product(**fields)


def test_table_adds_up_to_the_value_and_the_range_contains_it(market):
    report = value(market, TargetSpec(untraded(), terms(months=24), END))
    report.check_invariants()
    assert report.method == "market"
    assert math.fsum(row.contribution for row in report.comparables) == pytest.approx(
        report.market_value, rel=1e-12
    )
    assert math.fsum(row.weight for row in report.comparables) == pytest.approx(1.0)
    assert report.low < report.value < report.high
    assert report.n_comparables >= 3


def test_every_row_shows_every_factor_and_its_adjusted_price(market):
    report = value(market, TargetSpec(untraded(), terms(exclusive=True), END))
    for row in report.comparables:
        assert tuple(row.factors) == FACTOR_NAMES
        assert row.adjusted_price == pytest.approx(row.comparable.price * row.total_factor)
        assert math.prod(row.factors.values()) == pytest.approx(row.total_factor)
        assert set(row.weight_parts) == {
            "similarity", "recency", "volume", "adjustment", "evidence"
        }  # fmt: skip


def test_adjustment_weight_is_the_gross_adjustment_without_date_and_book(market):
    report = value(market, TargetSpec(untraded(), terms(exclusive=True, months=3), END))
    for row in report.comparables:
        gross = sum(abs(math.log(row.factors[name])) for name in FACTOR_NAMES
                    if name not in ("date", "supply_demand"))  # fmt: skip
        assert row.weight_parts["adjustment"] == pytest.approx(math.exp(-gross))


def test_offsetting_adjustments_still_count_against_a_comparable():
    from exchange.pricing.market_approach import adjustment_weight

    # x2 and /2 net to 1, but the comparable needed two adjustments of 2: weight 1/4.
    assert adjustment_weight({"volume": 2.0, "quality": 0.5}) == pytest.approx(0.25)
    assert adjustment_weight({"date": 3.0, "supply_demand": 1.1}) == 1.0


def test_the_value_lands_near_the_model_truth(market):
    target = untraded()
    report = value(market, TargetSpec(target, terms(scope=Scope.COMMERCIAL), END))
    truth = math.exp(model_log_price(target, terms(scope=Scope.COMMERCIAL), END))
    assert report.value == pytest.approx(truth, rel=0.15)
    assert report.low <= truth <= report.high


def test_comparables_are_ranked_by_similarity_and_capped_per_product(market):
    comparables, candidates = find_comparables(market, TargetSpec(untraded(), terms(), END))
    assert candidates > len(comparables) >= 3
    similarities = [c.similarity for c in comparables]
    assert similarities == sorted(similarities, reverse=True)
    per_product = {}
    for c in comparables:
        per_product[c.product_id] = per_product.get(c.product_id, 0) + 1
        assert math.prod(c.similarity_parts.values()) == pytest.approx(c.similarity)
    assert max(per_product.values()) <= 2


def test_fewer_than_three_comparables_fall_back_to_the_cost_approach():
    day = dt.date(2026, 1, 10)
    products = [product("A"), product("B"), product("C", category="health"), untraded()]
    trades = [
        TradeRecord("1", "A", terms(), 100.0, 1, day),
        TradeRecord("2", "B", terms(), 120.0, 1, day),
        TradeRecord("3", "C", terms(), 500.0, 1, day),
    ]
    report = value_once(products, trades, TargetSpec(untraded(), terms(), day))
    report.check_invariants()
    assert report.method == "cost_fallback"
    assert report.market_value is None and report.comparables == ()
    assert report.value == pytest.approx(report.cost.value)
    assert report.low < report.value < report.high
    assert any("Fewer than 3 comparables" in note for note in report.notes)
    assert "A (" in " ".join(report.notes), "the notes name what was found"
    assert "cost approach" in report.reconciliation.explanation[0]


def test_a_category_without_trades_falls_back(market):
    report = value(market, TargetSpec(untraded(category="retail"), terms(), END))
    assert report.method == "cost_fallback" and report.candidates == 0


def test_own_trades_count_unless_excluded(market):
    listed = market.product("P0003")
    own = [c.product_id for c in find_comparables(market, TargetSpec(listed, terms(), END))[0]]
    assert "P0003" in own
    target = TargetSpec(listed, terms(), END, exclude_own_trades=True)
    assert "P0003" not in [c.product_id for c in find_comparables(market, target)[0]]


def test_comparables_never_include_trades_after_the_valuation_date(market):
    early = dt.date(2025, 3, 1)
    report = value(market, TargetSpec(untraded(), terms(), early))
    assert all(row.comparable.last_trade_date <= early for row in report.comparables)
    assert any("after the valuation date" in note for note in report.notes)


def test_a_bid_heavy_book_lifts_every_comparable_by_the_same_bounded_factor(market):
    book = BookSnapshot(bids=((100.0, 50),), asks=((110.0, 10),))
    plain = value(market, TargetSpec(untraded(), terms(), END))
    lifted = value(market, TargetSpec(untraded(), terms(), END, book=book))
    assert {row.factors["supply_demand"] for row in plain.comparables} == {1.0}
    factor = lifted.supply_demand_factor
    assert 1.0 < factor <= 1.1
    assert lifted.market_value == pytest.approx(plain.market_value * factor, rel=1e-9)


def test_income_approach_is_reported_and_reconciled_but_not_concluded(market):
    income = IncomeInputs((1_000.0, 1_000.0, 1_000.0), discount_rate=0.1, attribution=0.5)
    report = value(market, TargetSpec(untraded(), terms(), END, income=income))
    expected = sum(500 / 1.1**t for t in (1, 2, 3))
    assert report.income.value == pytest.approx(expected)
    assert report.method == "market"
    assert any("income approach gives" in line for line in report.reconciliation.explanation)


def test_reconciliation_explains_the_gap_to_the_cost_approach(market):
    report = value(market, TargetSpec(untraded(), terms(), END))
    text = " ".join(report.reconciliation.explanation)
    assert "against the cost approach" in text and "median" in text
    assert report.reconciliation.market_to_cost == pytest.approx(
        report.market_value / report.cost.value
    )


def test_report_names_the_parameters_used_and_their_source(market):
    report = value(market, TargetSpec(untraded(), terms(), END))
    names = {p.name for p in report.parameters}
    assert {"volume_elasticity", "exclusivity_premium", "duration_rate_per_year"} <= names
    assert {p.source for p in report.parameters} <= {"calibrated", "shrunk", "default"}


def test_json_report_round_trips_with_the_table(market):
    report = value(market, TargetSpec(untraded(), terms(cross_border=True), END))
    data = json.loads(report.to_json())
    assert data["method"] == "market" and data["value"] == pytest.approx(report.value)
    assert len(data["comparables"]) == report.n_comparables
    assert math.fsum(row["contribution"] for row in data["comparables"]) == pytest.approx(
        data["market_value"]
    )
    assert data["terms"]["territory"] == "cross_border"
    assert set(data["comparables"][0]["factors"]) == set(FACTOR_NAMES)


def test_html_report_is_self_contained_with_the_table_and_chart(market):
    report = value(market, TargetSpec(untraded(product_id="<b>&x"), terms(), END))
    page = render_report(report)
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<svg" in page and '<table class="comparables">' in page
    assert "&lt;b&gt;&amp;x" in page and "<b>&x" not in page, "text is escaped"
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    for row in report.comparables:
        assert row.comparable.product_id in page
    assert f"{report.value:,.2f}" in page


def test_invalid_targets_are_refused(market):
    bad = untraded(quality=(1.5, 0.9, 0.9, 0.9))
    with pytest.raises(ValueError, match="completeness"):
        value(market, TargetSpec(bad, terms(), END))


@settings(max_examples=25, deadline=None)
@given(
    record_count=st.integers(1_000, 10**8),
    months=st.sampled_from((1, 3, 6, 12, 24, 36, 60)),
    exclusive=st.booleans(),
    scope=st.sampled_from(tuple(Scope)),
    quality=st.tuples(*[st.floats(0.05, 1.0)] * 4),
    bids=st.integers(0, 100),
    asks=st.integers(0, 100),
)
def test_any_target_gets_a_table_that_adds_up_and_a_range_around_it(
    market, record_count, months, exclusive, scope, quality, bids, asks
):
    book = BookSnapshot(bids=((10.0, bids),), asks=((11.0, asks),))
    target = TargetSpec(
        untraded(record_count=record_count, quality=quality),
        terms(exclusive=exclusive, months=months, scope=scope),
        END,
        book=book,
    )
    report = value(market, target)
    report.check_invariants()
    for row in report.comparables:
        total_flagged = any(flag.startswith("total") for flag in row.flags)
        assert total_flagged == (abs(row.total_factor - 1) > 0.3 + 1e-12)
