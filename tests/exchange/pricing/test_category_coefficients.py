"""Category-specific coefficients, partially pooled: a category whose trades say much keeps its
own scale elasticity, one with two trades takes the common one, categories that do not differ
share one, and valuations use their category's coefficients (still invariant to the order of
trades and proportional to prices)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random

import numpy as np
import pytest

from exchange.catalogue import Scope
from exchange.pricing import TargetSpec, TradeRecord, prepare_market, value
from exchange.pricing.calibration import CATEGORY_COEFFICIENTS
from tests.exchange.pricing.helpers import (
    DURATIONS,
    END,
    FREQUENCIES,
    START,
    TRUE,
    model_log_price,
    product,
    terms,
)

# The scale elasticity of each category's trades; health trades twice only, two products of
# the same scale, so that its trades say nothing of its scale effect.
ELASTICITY = {"energy": 0.8, "finance": 0.3, "health": 0.95}
TRADES = {"energy": 1_500, "finance": 1_500, "health": 2}
HEALTH_RECORDS = (600_000, 600_000)


def _history(seed: int):
    rng = np.random.default_rng(seed)
    products, trades = [], []
    span = (END - START).days
    for category, count in TRADES.items():
        params = dataclasses.replace(TRUE, volume_elasticity=ELASTICITY[category])
        own = [
            product(
                f"{category}-{i}",
                category=category,
                region=("east", "west")[i % 2],
                record_count=(
                    HEALTH_RECORDS[i] if category == "health" else int(10 ** rng.uniform(3, 8))
                ),
                coverage_months=float(rng.integers(1, 121)),
                frequency=FREQUENCIES[int(rng.integers(4))],
                quality=tuple(float(q) for q in rng.uniform(0.5, 1.0, 4)),
            )
            for i in range(max(count // 10, 2))
        ]
        products.extend(own)
        for i in range(count):
            p = own[i % len(own)]
            t = terms(
                exclusive=bool(rng.random() < 0.2),
                months=int(rng.choice(DURATIONS)),
                scope=tuple(Scope)[int(rng.integers(3))],
                cross_border=bool(rng.random() < 0.3),
            )
            day = START + dt.timedelta(days=int(rng.integers(span + 1)))
            log_price = model_log_price(p, t, day, params) + rng.normal(0, 0.05)
            trades.append(
                TradeRecord(f"{category}-T{i}", p.product_id, t, math.exp(log_price), 1, day)
            )
    return products, trades


PRODUCTS, TRADE_LIST = _history(seed=7)
MARKET = prepare_market(PRODUCTS, TRADE_LIST, as_of=END)


def _estimate(category: str, name: str = "volume_elasticity"):
    estimates = {e.name: e for e in MARKET.calibration.estimates_for(category)}
    return estimates[f"{name}[{category}]"]


@pytest.mark.parametrize("category", ["energy", "finance"])
def test_a_category_with_many_trades_keeps_its_own_elasticity(category: str) -> None:
    own = MARKET.calibration.parameters_for(category).volume_elasticity
    assert own == pytest.approx(ELASTICITY[category], abs=0.05)
    assert _estimate(category).source == "calibrated"


def test_a_category_with_two_trades_shrinks_to_the_common_elasticity() -> None:
    common = MARKET.calibration.parameters.volume_elasticity
    health = MARKET.calibration.parameters_for("health").volume_elasticity
    # Its two trades say little beside what the others lend it: it stays by the common value
    # (between the two rich categories), far from its trades' 0.95.
    assert health == pytest.approx(common, abs=0.03)
    assert 0.3 < health < 0.8
    estimate = _estimate("health")
    assert estimate.data_weight < 0.2 and estimate.source == "default"
    assert estimate.default == pytest.approx(common)
    assert estimate.data_weight < _estimate("energy").data_weight


def test_categories_that_do_not_differ_share_one_coefficient() -> None:
    """Every category's trades follow the same model: the spread between categories is
    estimated near zero, so each category's coefficients stay by the common ones."""
    products, trades = _history(seed=8)
    by_id = {p.product_id: p for p in products}
    rng = np.random.default_rng(9)
    alike = [
        dataclasses.replace(
            t,
            price=math.exp(
                model_log_price(by_id[t.product_id], t.terms, t.traded_at) + rng.normal(0, 0.05)
            ),
        )
        for t in trades
    ]
    calibration = prepare_market(products, alike, as_of=END).calibration
    common = calibration.parameters
    for category in ("energy", "finance"):
        own = calibration.parameters_for(category)
        assert own.volume_elasticity == pytest.approx(common.volume_elasticity, abs=0.02)
        assert own.exclusivity_premium == pytest.approx(common.exclusivity_premium, rel=0.03)


def test_an_unpooled_category_uses_the_common_parameters() -> None:
    calibration = MARKET.calibration
    assert calibration.parameters_for("unheard_of") is calibration.parameters
    assert calibration.estimates_for("unheard_of") == calibration.estimates
    names = {e.name for e in calibration.estimates_for("energy")}
    assert {f"{name}[energy]" for name in CATEGORY_COEFFICIENTS} <= names


def test_the_valuation_adjusts_scale_with_its_categorys_elasticity() -> None:
    subject = product("new", category="energy", record_count=50_000_000, region="east")
    report = value(MARKET, TargetSpec(subject, terms(), END))
    report.check_invariants()
    alpha = MARKET.calibration.parameters_for("energy").volume_elasticity
    curve = MARKET.calibration.parameters.volume_curve
    for row in report.comparables:
        log_ratio = math.log(subject.record_count / row.product.record_count)
        bend = curve(math.log(subject.record_count)) - curve(math.log(row.product.record_count))
        implied = min(max(alpha + bend / log_ratio, 0.0), 1.0)
        assert row.factors["volume"] == pytest.approx(math.exp(implied * log_ratio))
    assert "volume_elasticity[energy]" in {p.name for p in report.parameters}


_TARGETS = [
    TargetSpec(product("t1", category="energy", record_count=20_000), terms(), END),
    TargetSpec(product("t2", category="finance", record_count=3_000_000), terms(True, 24), END),
    TargetSpec(product("t3", category="health", record_count=400_000), terms(), END),
]


def test_value_is_invariant_to_the_order_of_trades() -> None:
    shuffled = list(TRADE_LIST)
    random.Random(3).shuffle(shuffled)
    market = prepare_market(PRODUCTS, shuffled, as_of=END)
    for target in _TARGETS:
        first, second = value(MARKET, target), value(market, target)
        assert math.isclose(first.value, second.value, rel_tol=1e-9)
        assert math.isclose(first.high / first.low, second.high / second.low, rel_tol=1e-9)


def test_doubling_every_price_doubles_the_value() -> None:
    products = [dataclasses.replace(p, cost_basis=2 * p.cost_basis) for p in PRODUCTS]
    trades = [dataclasses.replace(t, price=2 * t.price) for t in TRADE_LIST]
    market = prepare_market(products, trades, as_of=END)
    # Scale, not level: the category's elasticity is the same on doubled prices.
    assert math.isclose(
        market.calibration.parameters_for("energy").volume_elasticity,
        MARKET.calibration.parameters_for("energy").volume_elasticity,
        rel_tol=1e-6,
    )
    for target in _TARGETS:
        doubled_target = dataclasses.replace(
            target,
            product=dataclasses.replace(target.product, cost_basis=2 * target.product.cost_basis),
        )
        plain, doubled = value(MARKET, target), value(market, doubled_target)
        assert math.isclose(doubled.value, 2 * plain.value, rel_tol=1e-6)
        assert math.isclose(doubled.low, 2 * plain.low, rel_tol=1e-6)
        assert math.isclose(doubled.high, 2 * plain.high, rel_tol=1e-6)


def test_the_range_widens_with_the_adjustments_uncertainty() -> None:
    """The same comparables: with the category's coefficient covariance the market range is
    wider than without, and more so for a subject that needs a larger scale adjustment."""
    from exchange.pricing.comparables import find_comparables
    from exchange.pricing.market_approach import market_approach

    calibration = MARKET.calibration
    residuals = calibration.residuals

    def log_se(target: TargetSpec, covariance) -> float:
        comparables, candidates = find_comparables(MARKET, target)
        products = [MARKET.products.records[MARKET.instruments.product[c.instrument_row]]
                    for c in comparables]  # fmt: skip
        result = market_approach(
            target, comparables, products, candidates, calibration.parameters_for("energy"),
            calibration.index, residuals.between("energy"), residuals.within_var,
            coefficient_covariance=covariance,
        )  # fmt: skip
        assert result.log_se is not None
        return result.log_se

    covariance = calibration.covariance_for("energy")
    assert covariance is not None
    widening = []
    for records in (1_000_000, 10_000_000_000):
        target = TargetSpec(product("s", category="energy", record_count=records), terms(), END)
        plain, widened = log_se(target, None), log_se(target, covariance)
        assert widened > plain
        widening.append(widened**2 - plain**2)
    assert widening[1] > widening[0]  # ten billion records is far beyond the comparables
