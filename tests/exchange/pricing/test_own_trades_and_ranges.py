"""The subject's own trades as comparables, the reconciliation weighed by precision, and the
range's properties: invariant to the order of trades, proportional to prices, never widened
by the subject's own trades, and covering the truth about 80% of the time on a thin market."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.pricing import TargetSpec, prepare_market, render_report, value
from exchange.pricing.study import run_study
from exchange.pricing.synthetic import generate_market
from tests.exchange.pricing.helpers import product, terms

ONE_CATEGORY_DAY = dt.date(2026, 6, 1)


def _trades_of(product_id: str, count: int, price: float, first: int = 0):
    from exchange.pricing import TradeRecord

    return [
        TradeRecord(f"{product_id}-{first + i}", product_id, terms(), price * (1 + 0.01 * (i % 3)),
                    1, ONE_CATEGORY_DAY - dt.timedelta(days=i % 90))
        for i in range(count)
    ]  # fmt: skip


def test_a_subject_with_two_others_in_its_category_is_valued_on_its_own_trades() -> None:
    """As a new user found: a heavily traded instrument whose category holds only two other
    products must not fall back to the cost approach."""
    subject = product("P000001", record_count=2_000_000)
    others = [product("A", record_count=1_000_000), product("B", record_count=4_000_000)]
    trades = (
        _trades_of("P000001", 400, 5_000.0) + _trades_of("A", 5, 4_000.0)
        + _trades_of("B", 5, 6_000.0)
    )  # fmt: skip
    market = prepare_market([subject, *others], trades, as_of=ONE_CATEGORY_DAY)
    report = value(market, TargetSpec(subject, terms(), ONE_CATEGORY_DAY))
    report.check_invariants()
    assert report.method == "market"
    own = report.own_trades
    assert [row.comparable.product_id for row in own] == ["P000001"]
    assert own[0].weight > 0.9  # the strongest comparable by far
    data = json.loads(report.to_json())
    assert data["own_trades"]["instruments"] == 1 and data["own_trades"]["weight"] > 0.9
    assert [row["own"] for row in data["comparables"]] == [True, False, False]
    assert "The subject&#x27;s own trades" in render_report(report) or (
        "The subject's own trades" in render_report(report)
    )
    # Without its own trades only two comparables are left: the cost approach is concluded.
    without = value(market, TargetSpec(subject, terms(), ONE_CATEGORY_DAY, exclude_own_trades=True))
    assert without.method == "cost_fallback" and not without.own_trades


def test_the_reconciliation_weights_sum_to_one_and_cite_the_guidance() -> None:
    world = generate_market(2, 400, 0.3, 10)
    market = prepare_market(world.products, world.trades, as_of=world.as_of)
    report = value(market, world.targets[0].target)
    weights = report.reconciliation.weights
    assert math.isclose(sum(weights.values()), 1.0) and set(weights) == {"market", "cost"}
    text = " ".join(report.reconciliation.explanation)
    assert "CAS guidance on data-asset appraisal (2023) allows" in text


_WORLD = generate_market(11, 300, 0.3, 30)
_MARKET = prepare_market(_WORLD.products, _WORLD.trades, as_of=_WORLD.as_of)
_TRADED = [case.target for case in _WORLD.targets if case.traded]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.integers(0, len(_WORLD.targets) - 1))
def test_value_is_invariant_to_the_order_of_trades(random, which) -> None:
    shuffled = list(_WORLD.trades)
    random.shuffle(shuffled)
    market = prepare_market(_WORLD.products, shuffled, as_of=_WORLD.as_of)
    target = _WORLD.targets[which].target
    first, second = value(_MARKET, target), value(market, target)
    assert math.isclose(first.value, second.value, rel_tol=1e-9)
    assert math.isclose(first.high / first.low, second.high / second.low, rel_tol=1e-9)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(_WORLD.targets) - 1))
def test_doubling_every_price_doubles_the_value(which) -> None:
    """Prices and cost bases doubled: every approach is in currency units, so the concluded
    value and its range double and nothing else changes."""
    products = [dataclasses.replace(p, cost_basis=2 * p.cost_basis) for p in _WORLD.products]
    trades = [dataclasses.replace(t, price=2 * t.price) for t in _WORLD.trades]
    market = prepare_market(products, trades, as_of=_WORLD.as_of)
    target = _WORLD.targets[which].target
    doubled_target = dataclasses.replace(
        target,
        product=dataclasses.replace(target.product, cost_basis=2 * target.product.cost_basis),
    )
    plain, doubled = value(_MARKET, target), value(market, doubled_target)
    assert math.isclose(doubled.value, 2 * plain.value, rel_tol=1e-6)
    assert math.isclose(doubled.low, 2 * plain.low, rel_tol=1e-6)
    assert math.isclose(doubled.high, 2 * plain.high, rel_tol=1e-6)


@settings(max_examples=len(_TRADED), deadline=None)
@given(st.sampled_from(_TRADED))
def test_the_subjects_own_trades_never_widen_the_range(target: TargetSpec) -> None:
    with_own = value(_MARKET, target)
    without = value(_MARKET, dataclasses.replace(target, exclude_own_trades=True))
    assert with_own.own_trades
    assert with_own.high / with_own.low <= without.high / without.low * (1 + 1e-12)
    if with_own.market_low is not None and without.market_low is not None:
        assert with_own.market_high / with_own.market_low <= (  # type: ignore[operator]
            without.market_high / without.market_low * (1 + 1e-12)  # type: ignore[operator]
        )


def test_the_80_percent_range_covers_the_truth_75_to_88_percent_at_5_percent_traded() -> None:
    rows = run_study(seed=3, products=1_500, shares=[0.05], targets=400)
    reconciled = next(row for row in rows if row.approach == "reconciled")
    assert 75 <= reconciled.coverage_80_pct <= 88, reconciled
