"""Calibrating the valuation range on the market itself, by a back-test.

The model's standard errors (``market_approach`` and the market-calibrated cost of
``Market.cost``) rest on assumptions: that a product's own deviation is as large as the
regression's between-product residuals say, that comparables err independently, that errors
are normal. The back-test checks them where the truth is observable: it values up to
``BACKTEST_PRODUCTS`` traded products from the *other* products' trades (their own left out),
each under the terms of one of its instruments drawn at random (so the cases carry the terms
that trade, in the mix they trade in, as targets do), and compares with the price they
actually traded at (their VWAP brought to the market's date by the index).

**Cross-fitting.** On a market of at most ``CROSS_FIT_MAX_TRADES`` trades the held-out
products are split into ``CROSS_FIT_FOLDS`` folds, and each fold is valued on a market
calibrated *without* that fold's trades (the regression, the index, the residual variances
and the cost premia all refitted): a back-test whose held-out products took part in the
calibration flatters it, and on a thin market (a few thousand trades) by a factor of two in
the width. On a larger market one product's trades move the calibration too little to
matter, and the in-sample back-test saves the refits.

An observed price is itself noisy (trade-to-trade noise, variance ``typical within /
trades``, the robust within-product variance: the occasional non-arm's-length trade would
otherwise inflate every case's allowance), so each case is standardised by
``sqrt(se^2 + typical within / trades)``; the 80th percentile of the
standardised absolute errors, divided by 1.2816 (the normal's), is the scale by which the
model's z is too small (> 1) or too large (< 1). No normality is assumed: heavy tails show up
as a larger percentile. Three scales come from the same cases, in turn: the market
approach's, the calibrated cost's (from every case, those with too few comparables for the
market approach too, as the fallback concludes the cost alone), and then the concluded
value's (the reconciliation of the two, scaled), which corrects for their errors not being
independent (and is at least 1, since they are positively correlated: both miss the
subject's own deviation). Each is shrunk toward 1 as ``BACKTEST_SHRINK_CASES`` cases' worth
of prior belief and bounded to ``SCALE_BOUNDS``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import numpy as np

from exchange.pricing.calibration import calibrate
from exchange.pricing.comparables import MAX_COMPARABLES, find_comparables
from exchange.pricing.cost_income import cost_approach
from exchange.pricing.factors import DEFAULT_PARAMETERS, FactorParameters
from exchange.pricing.market import UNSCALED_RANGE, Market, RangeCalibration
from exchange.pricing.market_approach import Z_80, market_approach
from exchange.pricing.records import TargetSpec, TradeRecord
from exchange.pricing.tables import build_tables

__all__ = ["BACKTEST_PRODUCTS", "CROSS_FIT_MAX_TRADES", "calibrate_range"]

BACKTEST_PRODUCTS = 200
BACKTEST_SHRINK_CASES = 20
BACKTEST_SEED = 5  # which products are held out: fixed, so the same data give the same range
SCALE_BOUNDS = (0.5, 4.0)
COVERAGE = 0.8
# The confidence with which the back-test's scale bounds the standardised errors' 80%
# quantile from above (the scale's own sampling error, which is large on few cases).
QUANTILE_CONFIDENCE = 0.75
CROSS_FIT_FOLDS = 5
CROSS_FIT_MAX_TRADES = 30_000


def calibrate_range(
    market: Market,
    trades: Sequence[TradeRecord] | None = None,
    defaults: FactorParameters = DEFAULT_PARAMETERS,
) -> RangeCalibration:
    """Back-test the valuation on held-out traded products of ``market`` (whose own range is
    not used). ``trades`` (the market's trade records) enable the cross-fitted back-test on a
    small market; ``defaults`` are the calibration's priors. O(BACKTEST_PRODUCTS x one
    valuation), plus ``CROSS_FIT_FOLDS`` calibrations when cross-fitted."""
    snapshot = market.snapshot(market.as_of)
    priced = np.flatnonzero(~np.isnan(snapshot.price))
    if len(priced) == 0:
        return UNSCALED_RANGE
    # One instrument of each product, drawn at random: the held-out cases then carry the
    # terms that trade, in the mix they trade in, as the targets do (a product's most traded
    # instrument would be nearly always non-exclusive, the terms the comparables hold most).
    rng = np.random.default_rng(BACKTEST_SEED)
    order = np.lexsort((rng.random(len(priced)), market.instruments.product[priced]))
    rows = priced[order]
    products = market.instruments.product[rows]
    first = np.concatenate([[True], products[1:] != products[:-1]])
    rows = rows[first]
    chosen = rows[rng.permutation(len(rows))[:BACKTEST_PRODUCTS]]
    cross_fit = (
        trades is not None and len(market.trades) <= CROSS_FIT_MAX_TRADES and len(chosen) > 1
    )
    folds = np.arange(len(chosen)) % CROSS_FIT_FOLDS if cross_fit else np.zeros(len(chosen))
    cases: list[tuple[float, float, float, float, float]] = []
    for fold in np.unique(folds):
        held_out = chosen[folds == fold]
        valuing = market
        if cross_fit:
            assert trades is not None
            left_out = {market.products.records[market.instruments.product[r]].product_id
                        for r in held_out}  # fmt: skip
            valuing = _market_without(market, trades, left_out, defaults)
        cases.extend(_cases(market, valuing, held_out))
    if not cases:
        return UNSCALED_RANGE
    market_errors = np.array([c[0] for c in cases])
    market_se = np.array([c[1] for c in cases])
    cost_errors = np.array([c[2] for c in cases])
    cost_se = np.array([c[3] for c in cases])
    noise = np.array([c[4] for c in cases])
    has_market = ~np.isnan(market_errors)
    has_cost = ~np.isnan(cost_errors)
    if not has_market.any():
        return UNSCALED_RANGE
    market_scale, raw = _scale(market_errors[has_market], market_se[has_market], noise[has_market])
    cost_scale = (
        _scale(cost_errors[has_cost], cost_se[has_cost], noise[has_cost])[0]
        if has_cost.any() else 1.0
    )  # fmt: skip
    # The concluded value: both approaches weighed by their scaled precision, or the cost
    # alone where the market approach found too few comparables (as the fallback does).
    m_var = np.where(has_market, (market_scale * market_se) ** 2, np.inf)
    c_var = np.where(has_cost, (cost_scale * cost_se) ** 2, np.inf)
    concluding = has_market | has_cost
    m_var, c_var = m_var[concluding], c_var[concluding]
    precision = 1 / m_var + 1 / c_var
    concluded = (
        np.where(has_market, market_errors, 0)[concluding] / m_var
        + np.where(has_cost, cost_errors, 0)[concluding] / c_var
    ) / precision
    # At least 1: the two approaches share the subject's own deviation (its cost premium and
    # its comparables' adjustments both miss it), so their errors are positively correlated
    # and the combined se is never smaller than independence implies.
    reconciled_scale = max(_scale(concluded, precision**-0.5, noise[concluding])[0], 1.0)
    return RangeCalibration(
        market_scale,
        int(has_market.sum()),
        raw,
        100 * float(np.median(np.abs(np.expm1(market_errors[has_market])))),
        cost_scale=cost_scale,
        reconciled_scale=reconciled_scale,
        cross_fitted=cross_fit,
    )


def upper_quantile_rank(cases: int, quantile: float, confidence: float) -> int:
    """The rank k (1-based) of the order statistic that bounds the ``quantile`` of the
    cases' distribution from above with ``confidence``: the smallest k with P(Binomial(cases,
    quantile) < k) >= confidence, capped at ``cases``. Distribution-free (the count of cases
    below the true quantile is binomial whatever the distribution). O(cases).

    >>> upper_quantile_rank(50, 0.8, 0.9), upper_quantile_rank(200, 0.8, 0.9)
    (45, 168)
    """
    below = 0.0
    for k in range(cases + 1):
        below += math.comb(cases, k) * quantile**k * (1 - quantile) ** (cases - k)
        if below >= confidence:
            return min(k + 1, cases)
    return cases


def _scale(errors: np.ndarray, se: np.ndarray, noise_var: np.ndarray) -> tuple[float, float]:
    """The shrunk, bounded scale and the raw one, from log errors and their model se. The raw
    scale is the upper ``QUANTILE_CONFIDENCE`` bound of the standardised errors' 80%
    quantile, not its point estimate: a back-test of a few dozen cases would otherwise narrow
    the range on the strength of its luck (on the study's thinnest markets, 43 and 50 cases
    put the point estimate at 0.62 and 0.41 where the targets needed 0.82 and 0.66)."""
    standardised = np.sort(np.abs(errors) / np.sqrt(se**2 + noise_var))
    rank = upper_quantile_rank(len(standardised), COVERAGE, QUANTILE_CONFIDENCE)
    raw = float(standardised[rank - 1]) / Z_80
    cases = len(errors)
    shrunk = (cases * raw + BACKTEST_SHRINK_CASES) / (cases + BACKTEST_SHRINK_CASES)
    return min(max(shrunk, SCALE_BOUNDS[0]), SCALE_BOUNDS[1]), raw


def _market_without(
    market: Market,
    trades: Sequence[TradeRecord],
    left_out: set[str],
    defaults: FactorParameters,
) -> Market:
    """The market recalibrated without the trades of the ``left_out`` products."""
    kept = [trade for trade in trades if trade.product_id not in left_out]
    tables = build_tables(market.products.records, kept, market.as_of)
    calibration = calibrate(*tables, market.as_of, defaults)
    return Market(*tables, calibration, market.as_of)


def _cases(
    market: Market, valuing: Market, held_out: np.ndarray
) -> list[tuple[float, float, float, float, float]]:
    """Per held-out instrument row of ``market``, valued on ``valuing``: the market
    approach's log error and model se, the calibrated cost's (NaN without one), and the
    observed price's noise variance."""
    snapshot = market.snapshot(market.as_of)
    valuing_snapshot = valuing.snapshot(market.as_of)
    calibration = valuing.calibration
    residuals = calibration.residuals
    cases = []
    for row in held_out:
        product = market.products.records[market.instruments.product[row]]
        terms = market.instruments.terms[row]
        target = TargetSpec(product, terms, market.as_of, exclude_own_trades=True)
        parameters = calibration.parameters_for(product.category)
        comparables, candidates = find_comparables(
            valuing, target, MAX_COMPARABLES, valuing_snapshot
        )
        result = market_approach(
            target,
            comparables,
            [valuing.products.records[valuing.instruments.product[c.instrument_row]]
             for c in comparables],
            candidates,
            parameters,
            calibration.index,
            residuals.between(product.category),
            residuals.within_var,
            coefficient_covariance=calibration.covariance_for(product.category),
        )  # fmt: skip
        price_day = dt.date.fromordinal(round(float(snapshot.mean_day[row])))
        observed = float(snapshot.price[row]) * market.calibration.index.ratio(
            product.category, price_day, market.as_of
        )
        cost_error, cost_se = math.nan, math.nan
        premium = valuing.cost.premium_for(product.category)
        cost = cost_approach(product, terms, parameters, 0.0).value
        if premium is not None and cost > 0:
            cost_error = math.log(cost * math.exp(premium[0]) / observed)
            cost_se = premium[1]
        noise_var = market.calibration.residuals.typical_within_var / max(
            int(snapshot.window_trades[row]), 1
        )
        if result.value is None or result.log_se is None:
            # Too few comparables: a case for the calibrated cost (and the fallback) only.
            if not math.isnan(cost_error):
                cases.append((math.nan, math.nan, cost_error, cost_se, noise_var))
            continue
        cases.append(
            (math.log(result.value / observed), result.log_se, cost_error, cost_se, noise_var)
        )
    return cases
