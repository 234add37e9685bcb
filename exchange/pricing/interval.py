"""Calibrating the valuation range on the market itself, by a back-test.

The model's standard error (``market_approach``) rests on assumptions: that a product's own
deviation is as large as the regression's between-product residuals say, that comparables
err independently, that errors are normal. The back-test checks them where the truth is
observable: it values up to ``BACKTEST_PRODUCTS`` traded products from the *other* products'
trades (their own left out), under the terms they traded most, and compares with the price
they actually traded at (their VWAP brought to the market's date by the index).

An observed price is itself noisy (trade-to-trade noise, variance ``within / trades``), so
each case is standardised by ``sqrt(se^2 + within / trades)``; the 80th percentile of the
standardised absolute errors, divided by 1.2816 (the normal's), is the scale by which the
model's z is too small (> 1) or too large (< 1). No normality is assumed: heavy tails show
up as a larger percentile. The scale is shrunk toward 1 as ``BACKTEST_SHRINK_CASES`` cases'
worth of prior belief, and bounded to ``SCALE_BOUNDS``. The held-out products' trades did
take part in the calibration, which makes the back-test slightly optimistic when there are
few products; the report says how many cases it used.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from exchange.pricing.comparables import MAX_COMPARABLES, find_comparables
from exchange.pricing.market import UNSCALED_RANGE, Market, RangeCalibration
from exchange.pricing.market_approach import Z_80, market_approach
from exchange.pricing.records import TargetSpec

__all__ = ["BACKTEST_PRODUCTS", "calibrate_range"]

BACKTEST_PRODUCTS = 200
BACKTEST_SHRINK_CASES = 20
BACKTEST_SEED = 5  # which products are held out: fixed, so the same data give the same range
SCALE_BOUNDS = (0.5, 3.0)
COVERAGE = 0.8


def calibrate_range(market: Market) -> RangeCalibration:
    """Back-test the market approach on held-out traded products of ``market`` (whose own
    range is not used). O(BACKTEST_PRODUCTS x one valuation)."""
    snapshot = market.snapshot(market.as_of)
    priced = np.flatnonzero(~np.isnan(snapshot.price))
    if len(priced) == 0:
        return UNSCALED_RANGE
    # Each product's most traded instrument.
    order = np.lexsort((-snapshot.window_trades[priced], market.instruments.product[priced]))
    rows = priced[order]
    products = market.instruments.product[rows]
    first = np.concatenate([[True], products[1:] != products[:-1]])
    rows = rows[first]
    rng = np.random.default_rng(BACKTEST_SEED)
    chosen = rows[rng.permutation(len(rows))[:BACKTEST_PRODUCTS]]
    calibration = market.calibration
    residuals = calibration.residuals
    standardised: list[float] = []
    errors: list[float] = []
    for row in chosen:
        product = market.products.records[market.instruments.product[row]]
        target = TargetSpec(
            product, market.instruments.terms[row], market.as_of, exclude_own_trades=True
        )
        comparables, candidates = find_comparables(market, target, MAX_COMPARABLES, snapshot)
        result = market_approach(
            target,
            comparables,
            [market.products.records[market.instruments.product[c.instrument_row]]
             for c in comparables],
            candidates,
            calibration.parameters,
            calibration.index,
            residuals.between(product.category),
            residuals.within_var,
        )  # fmt: skip
        if result.value is None or result.log_se is None:
            continue
        price_day = dt.date.fromordinal(round(float(snapshot.mean_day[row])))
        observed = float(snapshot.price[row]) * calibration.index.ratio(
            product.category, price_day, market.as_of
        )
        error = math.log(result.value / observed)
        noise_var = residuals.within_var / max(int(snapshot.window_trades[row]), 1)
        standardised.append(abs(error) / math.sqrt(result.log_se**2 + noise_var))
        errors.append(abs(math.expm1(error)))
    cases = len(standardised)
    if cases == 0:
        return UNSCALED_RANGE
    raw = float(np.quantile(standardised, COVERAGE)) / Z_80
    shrunk = (cases * raw + BACKTEST_SHRINK_CASES) / (cases + BACKTEST_SHRINK_CASES)
    scale = min(max(shrunk, SCALE_BOUNDS[0]), SCALE_BOUNDS[1])
    return RangeCalibration(scale, cases, raw, 100 * float(np.median(errors)))
