"""Calibration: known coefficients recovered from synthetic trades, defaults when thin, the
hedonic index following the category's trend."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from exchange.pricing import DEFAULT_PARAMETERS, prepare_market
from tests.exchange.pricing.helpers import END, MONTHLY_GROWTH, TRUE, synthetic_history


@pytest.fixture(scope="module")
def rich_market():
    products, trades = synthetic_history(seed=3, products=300, trades=4_000, noise_sd=0.05,
                                        categories=("energy", "finance"))  # fmt: skip
    return prepare_market(products, trades, as_of=END)


def test_calibration_recovers_known_elasticities_and_premia(rich_market):
    used = rich_market.calibration.parameters
    assert used.volume_elasticity == pytest.approx(TRUE.volume_elasticity, abs=0.03)
    for got, want in zip(used.quality_elasticities, TRUE.quality_elasticities, strict=True):
        assert got == pytest.approx(want, abs=0.08)
    assert used.exclusivity_premium == pytest.approx(TRUE.exclusivity_premium, rel=0.05)
    assert used.commercial_premium == pytest.approx(TRUE.commercial_premium, rel=0.05)
    assert used.resale_premium == pytest.approx(TRUE.resale_premium, rel=0.05)
    assert used.cross_border_premium == pytest.approx(TRUE.cross_border_premium, rel=0.05)
    assert used.real_time_premium == pytest.approx(TRUE.real_time_premium, rel=0.05)
    assert used.monthly_premium == pytest.approx(TRUE.monthly_premium, rel=0.05)
    assert used.coverage_elasticity == pytest.approx(TRUE.coverage_elasticity, abs=0.03)


def test_calibration_recovers_the_duration_curve(rich_market):
    used = rich_market.calibration.parameters
    from exchange.pricing.factors import duration_factor

    for months in (1, 3, 24, 36):
        want = duration_factor(months, 12, TRUE.duration_rate_per_year, TRUE.duration_elasticity)
        got = duration_factor(months, 12, used.duration_rate_per_year, used.duration_elasticity)
        assert got == pytest.approx(want, rel=0.05)


def test_rich_data_marks_every_estimate_calibrated(rich_market):
    sources = {e.name: e.source for e in rich_market.calibration.estimates}
    assert set(sources.values()) == {"calibrated"}, sources


def test_hedonic_index_follows_each_category_trend(rich_market):
    index = rich_market.calibration.index
    start, end = dt.date(2025, 2, 15), dt.date(2026, 2, 15)
    for category, growth in MONTHLY_GROWTH.items():
        assert index.ratio(category, start, end) == pytest.approx(math.exp(12 * growth), rel=0.03)
    points = rich_market.index_points("energy")
    assert points[0].value == 100.0 and points[0].period_start == dt.date(2025, 1, 1)
    assert sum(point.trades for point in points) > 0


def test_index_is_flat_beyond_the_data_and_for_unknown_categories(rich_market):
    index = rich_market.calibration.index
    later = index.ratio("energy", dt.date(2026, 7, 15), dt.date(2030, 1, 1))
    assert later == pytest.approx(1.0)
    assert index.ratio("unheard_of", dt.date(2025, 1, 1), dt.date(2026, 1, 1)) == 1.0


def test_thin_data_use_the_defaults_and_say_so():
    products, trades = synthetic_history(seed=4, products=10, trades=12)
    market = prepare_market(products, trades, as_of=END)
    assert market.calibration.parameters == DEFAULT_PARAMETERS
    assert {e.source for e in market.calibration.estimates} == {"default"}
    assert "defaults used" in market.calibration.note


def test_few_trades_shrink_toward_the_defaults():
    products, trades = synthetic_history(seed=5, products=15, trades=30, noise_sd=0.3)
    market = prepare_market(products, trades, as_of=END)
    estimates = {e.name: e for e in market.calibration.estimates}
    weights = [e.data_weight for e in estimates.values()]
    assert min(weights) < 0.7, "some parameter leans on its prior"
    # Shrinkage: the territory premium lies between its default and the truth or near them.
    territory = estimates["cross_border_premium"]
    assert territory.default == DEFAULT_PARAMETERS.cross_border_premium
    assert 0 <= territory.data_weight <= 1


def test_residual_variances_separate_product_deviation_from_trade_noise(rich_market):
    residuals = rich_market.calibration.residuals
    # The synthetic trades have only trade noise (log sd 0.05) and no product deviation.
    assert math.sqrt(residuals.within_var) == pytest.approx(0.05, rel=0.2)
    assert residuals.pooled_between_var < 0.03**2
