"""The calibrated curves: the spline's formula by hand, its knots, and the calibration finding
a bend where the trades have one and none where they have none."""

from __future__ import annotations

import math

import numpy as np
import pytest

from exchange.pricing import prepare_market
from exchange.pricing.curves import Curve, hinge_columns, quantile_knots
from exchange.pricing.records import TradeRecord
from tests.exchange.pricing.helpers import END, TRUE, synthetic_history


def test_curve_adds_each_slope_change_past_its_knot():
    curve = Curve(knots=(1.0, 3.0), slope_changes=(0.2, -0.5))
    assert curve(0.5) == 0.0
    assert curve(1.0) == 0.0
    assert curve(2.0) == pytest.approx(0.2)  # 0.2 x (2 - 1)
    assert curve(5.0) == pytest.approx(0.2 * 4 - 0.5 * 2)
    assert curve.slope_range() == pytest.approx((-0.3, 0.2))


def test_empty_curve_is_zero_everywhere():
    assert Curve()(123.0) == 0.0
    assert Curve().slope_range() == (0.0, 0.0)


def test_knots_sit_at_quantiles_without_duplicates():
    knots = quantile_knots(np.arange(1.0, 10.0), count=3)  # quartiles of 1..9
    assert knots.tolist() == [3.0, 5.0, 7.0]
    assert quantile_knots(np.ones(50), count=8).tolist() == [1.0]
    assert quantile_knots(np.empty(0)).size == 0


def test_hinge_columns_are_the_spline_design():
    got = hinge_columns(np.array([0.0, 2.0, 4.0]), np.array([1.0, 3.0]))
    assert got.tolist() == [[0.0, 0.0], [1.0, 0.0], [3.0, 1.0]]


def test_power_law_prices_get_flat_curves():
    products, trades = synthetic_history(seed=3, products=300, trades=4_000, noise_sd=0.05)
    parameters = prepare_market(products, trades, as_of=END).calibration.parameters
    # Changes of elasticity near zero (the quality curve's argument spans less than one log
    # unit, so 0.1 there moves a price by a few percent at most).
    limits = {"volume_curve": 0.05, "coverage_curve": 0.05, "quality_curve": 0.1}
    for name, limit in limits.items():
        low, high = getattr(parameters, name).slope_range()
        assert max(abs(low), abs(high)) < limit, name
    assert parameters.volume_elasticity == pytest.approx(TRUE.volume_elasticity, abs=0.03)


def test_scale_effect_that_flattens_is_found_by_the_volume_curve():
    # Above 10^5.5 records the scale elasticity drops from 0.7 to 0.3: a change of -0.4.
    products, trades = synthetic_history(seed=6, products=400, trades=5_000, noise_sd=0.05)
    records = {p.product_id: p.record_count for p in products}
    kink = 5.5 * math.log(10)
    bent = [
        TradeRecord(t.trade_id, t.product_id, t.terms,
                    t.price * math.exp(-0.4 * max(math.log(records[t.product_id]) - kink, 0.0)),
                    t.quantity, t.traded_at)
        for t in trades
    ]  # fmt: skip
    market = prepare_market(products, bent, as_of=END)
    curve = market.calibration.parameters.volume_curve
    alpha = market.calibration.parameters.volume_elasticity

    # The local elasticity, low and high on the scale, from the fitted curve.
    def local(log_records: float) -> float:
        return alpha + (curve(log_records + 0.01) - curve(log_records - 0.01)) / 0.02

    assert local(3.5 * math.log(10)) == pytest.approx(0.7, abs=0.08)
    assert local(7.5 * math.log(10)) == pytest.approx(0.3, abs=0.08)
    estimate = {e.name: e for e in market.calibration.estimates}["volume_curve"]
    assert estimate.source == "calibrated"
    assert estimate.value == pytest.approx(0.4, abs=0.1)
