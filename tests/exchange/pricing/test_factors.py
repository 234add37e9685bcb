"""Each factor's formula on hand-computed cases, the flags, and the supply-demand bounds."""

from __future__ import annotations

import math

import pytest

from exchange.catalogue import Scope, UpdateFrequency
from exchange.pricing import BookSnapshot, FactorParameters
from exchange.pricing.curves import Curve
from exchange.pricing.factors import (
    annuity_months,
    coverage_factor,
    date_factor,
    duration_factor,
    exclusivity_factor,
    flag_factor,
    flag_total,
    freshness_factor,
    log_mean_quality,
    quality_factor,
    region_factor,
    scope_factor,
    supply_demand_factor,
    territory_factor,
    volume_factor,
)

PARAMS = FactorParameters(region_effects={"east": 1.2, "west": 0.8})


def test_date_factor_is_the_index_ratio():
    assert date_factor(121.0, 110.0) == pytest.approx(1.1)


def test_volume_factor_is_the_record_ratio_to_alpha():
    assert volume_factor(4_000_000, 1_000_000, alpha=0.5) == pytest.approx(2.0)
    assert volume_factor(1_000, 8_000, alpha=1 / 3) == pytest.approx(0.5)
    assert volume_factor(5, 7, alpha=0.0) == 1.0


def test_volume_curve_bends_the_elasticity_between_subject_and_comparable():
    # Curve: slope +0.2 past log(1000). Subject 10^5, comparable 10^3: the curve adds
    # 0.2 x log(100), so the factor is 100^0.5 x 100^0.2 = 100^0.7.
    curve = Curve((math.log(1_000),), (0.2,))
    assert volume_factor(100_000, 1_000, 0.5, curve) == pytest.approx(100**0.7)
    assert volume_factor(1_000, 100_000, 0.5, curve) == pytest.approx(100**-0.7)
    # Below the knot the curve is flat: the plain power law.
    assert volume_factor(500, 100, 0.5, curve) == pytest.approx(5**0.5)


def test_volume_curve_keeps_the_implied_elasticity_within_zero_and_one():
    steep, falling = Curve((0.0,), (0.9,)), Curve((0.0,), (-0.9,))
    assert volume_factor(100, 10, 0.5, steep) == pytest.approx(10.0)  # 1.4 bounded to 1
    assert volume_factor(100, 10, 0.5, falling) == pytest.approx(1.0)  # -0.4 bounded to 0


def test_coverage_curve_multiplies_by_the_curve_difference():
    curve = Curve((math.log(12),), (-0.1,))
    # (48/12)^0.2 x exp(-0.1 x log 4) = 4^0.1
    assert coverage_factor(48, 12, 0.2, curve) == pytest.approx(4**0.1)


def test_quality_curve_runs_on_the_log_geometric_mean_quality():
    assert log_mean_quality((0.25, 1.0, 1.0, 1.0)) == pytest.approx(math.log(0.25) / 4)
    curve = Curve((math.log(0.5),), (2.0,))
    subject, comparable = (0.8, 0.8, 0.8, 0.8), (0.4, 0.4, 0.4, 0.4)
    # Betas 0.25 each: (0.8/0.4)^1 = 2; curve: 2 x (log 0.8 - log 0.5) - 0.
    expected = 2 * math.exp(2 * math.log(0.8 / 0.5))
    assert quality_factor(subject, comparable, (0.25,) * 4, curve) == pytest.approx(expected)


def test_quality_factor_multiplies_each_dimension_ratio_to_its_beta():
    # (0.9/0.6)^0.5 * (0.5/1.0)^1 * 1 * (0.8/0.4)^0.25
    expected = math.sqrt(1.5) * 0.5 * 2**0.25
    got = quality_factor((0.9, 0.5, 0.7, 0.8), (0.6, 1.0, 0.2, 0.4), (0.5, 1.0, 0.0, 0.25))
    assert got == pytest.approx(expected)


def test_quality_factor_floors_zero_scores_at_one_percent():
    assert quality_factor((0.5, 1, 1, 1), (0.0, 1, 1, 1), (1, 0, 0, 0)) == pytest.approx(50.0)


def test_exclusivity_and_territory_apply_the_premium_one_way_or_the_other():
    assert exclusivity_factor(True, False, premium=2.5) == 2.5
    assert exclusivity_factor(False, True, premium=2.5) == pytest.approx(0.4)
    assert exclusivity_factor(True, True, premium=2.5) == 1.0
    assert territory_factor(True, False, premium=1.25) == 1.25
    assert territory_factor(False, True, premium=1.25) == pytest.approx(0.8)


def test_annuity_sums_monthly_instalments_decaying_at_the_rate():
    rate = 0.24  # 2% a month
    by_hand = sum(math.exp(-0.02 * m) for m in range(12))
    assert annuity_months(12, rate) == pytest.approx(by_hand)
    assert annuity_months(12, 0.0) == 12.0


def test_duration_factor_is_the_annuity_ratio_to_its_elasticity():
    rate = 0.24
    ratio = sum(math.exp(-0.02 * m) for m in range(24)) / sum(math.exp(-0.02 * m) for m in range(6))
    assert duration_factor(24, 6, rate) == pytest.approx(ratio)
    assert duration_factor(24, 6, rate, elasticity=0.5) == pytest.approx(math.sqrt(ratio))
    assert 1 < duration_factor(24, 12, rate) < 2, "longer is worth more, less than in proportion"


def test_scope_freshness_and_region_are_ratios_of_premia():
    assert scope_factor(Scope.RESALE, Scope.COMMERCIAL, PARAMS) == pytest.approx(2.5 / 1.5)
    assert scope_factor(Scope.INTERNAL, Scope.RESALE, PARAMS) == pytest.approx(1 / 2.5)
    assert freshness_factor(
        UpdateFrequency.REAL_TIME, UpdateFrequency.STATIC, PARAMS
    ) == pytest.approx(1.5)
    assert freshness_factor(
        UpdateFrequency.MONTHLY, UpdateFrequency.DAILY, PARAMS
    ) == pytest.approx(1.1 / 1.3)
    assert region_factor("east", "west", PARAMS) == pytest.approx(1.5)
    assert region_factor("east", "unknown", PARAMS) == pytest.approx(1.2)


def test_coverage_factor_is_the_coverage_ratio_to_gamma():
    assert coverage_factor(48, 12, gamma=0.5) == pytest.approx(2.0)


def test_supply_demand_is_neutral_without_a_book_or_with_an_empty_one():
    assert supply_demand_factor(None) == 1.0
    assert supply_demand_factor(BookSnapshot()) == 1.0


def test_supply_demand_follows_imbalance_damped_by_thin_depth():
    # imbalance (30-10)/40 = 0.5, depth 40 -> confidence 40/50: 1 + 0.1 * 0.5 * 0.8
    book = BookSnapshot(bids=((10.0, 30),), asks=((11.0, 10),))
    assert supply_demand_factor(book) == pytest.approx(1.04)
    offers = BookSnapshot(bids=((10.0, 10),), asks=((11.0, 30),))
    assert supply_demand_factor(offers) == pytest.approx(0.96)


def test_supply_demand_stays_within_its_bound():
    flooded = BookSnapshot(bids=((10.0, 10**9),), asks=())
    assert supply_demand_factor(flooded, sensitivity=5.0) == pytest.approx(1.1)
    assert supply_demand_factor(BookSnapshot(asks=((1.0, 10**9),)), sensitivity=5.0) == 0.9


def test_flags_fire_beyond_twenty_percent_per_factor_and_thirty_in_total():
    assert flag_factor("volume", 1.2) is None and flag_factor("volume", 0.8) is None
    assert "volume factor 1.210" in flag_factor("volume", 1.21)
    assert flag_factor("date", 0.79) is not None
    assert flag_total(1.3) is None and flag_total(0.7) is None
    assert "total adjustment" in flag_total(1.31)
