"""A prepared market: the tables, the calibration, the per-date instrument summaries and the
back-tested range that every valuation on it shares.

``exchange.pricing.prepare`` builds it once (O(trades) and the calibration's solve), then
back-tests the range on it (``exchange.pricing.interval``) and passes the result in
(``Market.with_range``), so that one valuation afterwards costs a similarity search over one
category's instruments and a few dozen scalar formulas. Trades after ``as_of`` are left out
entirely: neither the calibration nor the comparables see the future of the date the market
is prepared for.

An instrument's comparable price on a date is its VWAP over the ``COMPARABLE_WINDOW_DAYS``
ending at its last trade on or before that date, dated at the window's volume-weighted mean
day; summaries are computed per date for all instruments at once (vectorised) and cached.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np

from exchange.pricing.calibration import Calibration
from exchange.pricing.cost_income import cost_approach
from exchange.pricing.factors import FactorParameters
from exchange.pricing.features import (
    FREQUENCY_RANK,
    QUALITY_FLOOR,
    SCOPE_RANK,
    is_cross_border,
    is_exclusive,
)
from exchange.pricing.index import IndexPoint
from exchange.pricing.records import ProductRecord, TermsRecord
from exchange.pricing.similarity import FeatureArrays
from exchange.pricing.tables import InstrumentTable, ProductTable, TradeTable

__all__ = [
    "COMPARABLE_WINDOW_DAYS",
    "UNSCALED_RANGE",
    "CostStats",
    "InstrumentSnapshot",
    "Market",
    "RangeCalibration",
]

COMPARABLE_WINDOW_DAYS = 180
# Limit: per-date summaries kept (least recently computed dropped first).
SNAPSHOT_CACHE_DATES = 64
# Cost dispersion: a category's own counts as this many instruments' worth of the pooled one;
# below MIN_COST_INSTRUMENTS priced instruments overall the default is used.
COST_SHRINK_INSTRUMENTS = 20
MIN_COST_INSTRUMENTS = 5
DEFAULT_COST_LOG_SD = 0.6
# The least spread assumed between categories' premia of price over cost (log sd): categories
# are never taken to be identical.
MIN_PREMIUM_TAU = 0.05
_DAY_KEY = 10_000_000  # > any date ordinal: instrument x _DAY_KEY + day sorts like the trades


@dataclass(frozen=True, slots=True)
class InstrumentSnapshot:
    """Every instrument's comparable price on ``as_of`` (NaN: no trade by then)."""

    as_of: dt.date
    price: np.ndarray
    mean_day: np.ndarray
    last_day: np.ndarray
    window_trades: np.ndarray
    window_units: np.ndarray
    by_category: dict[int, np.ndarray]  # product category code -> priced instrument rows


@dataclass(frozen=True, slots=True)
class CostStats:
    """How traded prices (brought to the market's date) compare with their own cost-approach
    values: per category, the root mean square of log(price / cost value), which is the cost
    approach's typical error here, and the median and quartiles of the ratio.

    ``log_premium`` is the category's typical log(price / cost value), partially pooled: the
    category's mean shrinks toward the pooled mean in proportion to how little the category
    says (its instruments' worth against the spread of the category means), so that a
    category of two instruments borrows from the others and one of two hundred speaks for
    itself. ``premium_log_sd`` is the error of cost x exp(log_premium), the *market-calibrated
    cost*: the spread of the ratios around the category's premium plus the premium's own
    uncertainty, which the reconciliation weighs against the market approach's."""

    log_sd: dict[str, float]
    pooled_log_sd: float
    ratio_quartiles: dict[str, tuple[float, float, float, int]]  # q1, median, q3, count
    log_premium: dict[str, float] = field(default_factory=dict)
    premium_log_sd: dict[str, float] = field(default_factory=dict)
    pooled_log_premium: float | None = None
    pooled_premium_log_sd: float | None = None

    def log_sd_for(self, category: str) -> float:
        return self.log_sd.get(category, self.pooled_log_sd)

    def premium_for(self, category: str) -> tuple[float, float] | None:
        """The category's log premium of price over cost value and the calibrated cost's log
        sd, or None when too few instruments are priced to tell."""
        if self.pooled_log_premium is None or self.pooled_premium_log_sd is None:
            return None
        return (
            self.log_premium.get(category, self.pooled_log_premium),
            self.premium_log_sd.get(category, self.pooled_premium_log_sd),
        )


@dataclass(frozen=True, slots=True)
class RangeCalibration:
    """How the market's valuation ranges are scaled, from the back-test of
    ``exchange.pricing.interval``: ``scale`` multiplies the range's z; ``raw_scale`` is the
    back-test's own figure (None without cases); ``backtest_mdape_pct`` the median absolute
    error it saw."""

    scale: float
    cases: int
    raw_scale: float | None
    backtest_mdape_pct: float | None
    cost_scale: float = 1.0  # multiplies the market-calibrated cost's log sd
    reconciled_scale: float = 1.0  # multiplies the concluded value's combined se
    cross_fitted: bool = False

    def note(self) -> str:
        if self.raw_scale is None:
            return "no back-test cases: the model's z is used unscaled"
        how = (
            "each valued on the market recalibrated without them (cross-fitted)"
            if self.cross_fitted else "valued without their own trades"
        )  # fmt: skip
        return (
            f"back-test on {self.cases} traded products, {how}: market approach's median "
            f"absolute error {self.backtest_mdape_pct:.1f}% against their traded prices; its "
            f"se scaled by {self.scale:.2f} (back-test alone: {self.raw_scale:.2f}), the "
            f"calibrated cost's by {self.cost_scale:.2f}, the concluded value's by "
            f"{self.reconciled_scale:.2f}"
        )


# The range of a market not (or not yet) back-tested: the model's z as it is.
UNSCALED_RANGE = RangeCalibration(1.0, 0, None, None)


class Market:
    """Products, trades, their calibration and the range's scale, prepared for valuations on
    or after ``as_of``. Read-only except for its cache of per-date summaries: a calibrated
    range comes in as a new market (``with_range``)."""

    __slots__ = (
        "_category_code",
        "_cumulative",
        "_priced_days",
        "_region_code",
        "_snapshots",
        "as_of",
        "calibration",
        "cost",
        "features",
        "instrument_category",
        "instruments",
        "products",
        "range",
        "trades",
    )

    def __init__(
        self,
        products: ProductTable,
        instruments: InstrumentTable,
        trades: TradeTable,
        calibration: Calibration,
        as_of: dt.date,
    ) -> None:
        self.products = products
        self.instruments = instruments
        self.trades = trades
        self.calibration = calibration
        self.as_of = as_of
        self.instrument_category = products.category[instruments.product]
        self._category_code = {name: code for code, name in enumerate(products.categories)}
        self._region_code = {name: code for code, name in enumerate(products.regions)}
        self.features = self._instrument_features()
        self._snapshots: dict[dt.date, InstrumentSnapshot] = {}
        # The comparables' prices come from the trades at arm's length only.
        priced = (
            trades
            if calibration.screened is None
            else trades.take(np.flatnonzero(~calibration.screened))
        )
        self._priced_days = priced.day
        keys = priced.instrument * _DAY_KEY + priced.day
        units = priced.quantity.astype(np.float64)
        day0 = int(priced.day.min()) if len(priced) else 0

        def prefix(values: np.ndarray) -> np.ndarray:
            return np.concatenate([[0.0], np.cumsum(values)])

        self._cumulative = (
            keys,
            prefix(priced.price * units),
            prefix(units),
            prefix(units * (priced.day - day0)),
            day0,
        )
        self.cost = self._cost_stats()
        self.range = UNSCALED_RANGE

    def with_range(self, range_calibration: RangeCalibration) -> Market:
        """This market with ``range_calibration`` for its ranges. O(1): the copy shares the
        tables, the calibration and the per-date cache, all unchanged by the range."""
        market = copy.copy(self)
        market.range = range_calibration
        return market

    @property
    def parameters(self) -> FactorParameters:
        return self.calibration.parameters

    def product(self, product_id: str) -> ProductRecord | None:
        row = self.products.row_of.get(product_id)
        return None if row is None else self.products.records[row]

    def index_points(self, category: str) -> list[IndexPoint]:
        """The category's price index (first period = 100), for display and the API."""
        return self.calibration.index.points(category)

    def category_code(self, category: str) -> int | None:
        return self._category_code.get(category)

    def target_features(self, product: ProductRecord, terms: TermsRecord) -> FeatureArrays:
        """The similarity features of a target (which need not be in the market)."""
        region = self._region_code.get(product.region, -1)
        quality = np.maximum(np.array([product.quality()], dtype=np.float64), QUALITY_FLOOR)
        return FeatureArrays(
            region=np.array([region]),
            log2_records=np.array([math.log2(product.record_count)]),
            log2_coverage=np.array([math.log2(product.coverage_months)]),
            frequency_rank=np.array([FREQUENCY_RANK[product.update_frequency]]),
            quality=quality,
            exclusive=np.array([is_exclusive(terms.exclusivity)]),
            log2_duration=np.array([math.log2(terms.duration_months)]),
            scope_rank=np.array([SCOPE_RANK[terms.scope]]),
            cross_border=np.array([is_cross_border(terms.territory)]),
        )

    def _instrument_features(self) -> FeatureArrays:
        product = self.instruments.product
        table = self.products
        return FeatureArrays(
            region=table.region[product],
            log2_records=table.log_records[product] / math.log(2),
            log2_coverage=table.log_coverage[product] / math.log(2),
            frequency_rank=table.frequency_rank[product],
            quality=table.quality[product],
            exclusive=self.instruments.exclusive,
            log2_duration=np.log2(self.instruments.duration_months),
            scope_rank=self.instruments.scope_rank,
            cross_border=self.instruments.cross_border,
        )

    def snapshot(self, as_of: dt.date) -> InstrumentSnapshot:
        """Every instrument's comparable price on ``as_of``; cached per date. O(instruments
        x log trades) the first time."""
        cached = self._snapshots.get(as_of)
        if cached is not None:
            return cached
        keys, notional, units, unit_days, day0 = self._cumulative
        rows = np.arange(len(self.instruments.terms), dtype=np.int64)
        day = as_of.toordinal()
        block_start = np.searchsorted(keys, rows * _DAY_KEY, side="left")
        end = np.searchsorted(keys, rows * _DAY_KEY + day, side="right")
        priced = end > block_start
        last_day = np.zeros(len(rows), dtype=np.int64)
        last_day[priced] = self._priced_days[end[priced] - 1]
        window_first = last_day - COMPARABLE_WINDOW_DAYS + 1
        start = np.searchsorted(keys, rows * _DAY_KEY + window_first, side="left")
        start = np.where(priced, start, end)
        window_units = units[end] - units[start]
        with np.errstate(invalid="ignore", divide="ignore"):
            price = np.where(priced, (notional[end] - notional[start]) / window_units, np.nan)
            mean_day = np.where(
                priced, day0 + (unit_days[end] - unit_days[start]) / window_units, np.nan
            )
        categories = self.instrument_category
        by_category: dict[int, np.ndarray] = {}
        priced_rows = rows[priced]
        order = np.argsort(categories[priced_rows], kind="stable")
        sorted_rows = priced_rows[order]
        codes, first = np.unique(categories[sorted_rows], return_index=True)
        if sorted_rows.size:  # np.split of nothing still gives one (empty) group
            for code, group in zip(codes, np.split(sorted_rows, first[1:]), strict=True):
                by_category[int(code)] = group
        snapshot = InstrumentSnapshot(
            as_of=as_of,
            price=price,
            mean_day=mean_day,
            last_day=last_day,
            window_trades=end - start,
            window_units=window_units.astype(np.int64),
            by_category=by_category,
        )
        if len(self._snapshots) >= SNAPSHOT_CACHE_DATES:
            del self._snapshots[next(iter(self._snapshots))]
        self._snapshots[as_of] = snapshot
        return snapshot

    def _cost_stats(self) -> CostStats:
        snapshot = self.snapshot(self.as_of)
        index = self.calibration.index
        by_category: dict[str, list[float]] = {}
        for row in np.flatnonzero(~np.isnan(snapshot.price)):
            product = self.products.records[self.instruments.product[row]]
            if product.cost_basis <= 0:
                continue
            parameters = self.calibration.parameters_for(product.category)
            cost = cost_approach(product, self.instruments.terms[row], parameters, 0.0).value
            if cost <= 0:
                continue
            price_day = dt.date.fromordinal(round(snapshot.mean_day[row]))
            price = snapshot.price[row] * index.ratio(product.category, price_day, self.as_of)
            by_category.setdefault(product.category, []).append(math.log(price / cost))
        everything = [ratio for ratios in by_category.values() for ratio in ratios]
        if len(everything) < MIN_COST_INSTRUMENTS:
            return CostStats({}, DEFAULT_COST_LOG_SD, {})
        pooled = float(np.mean(np.square(everything)))
        log_sd: dict[str, float] = {}
        quartiles: dict[str, tuple[float, float, float, int]] = {}
        for category, ratios in by_category.items():
            values = np.array(ratios)
            mean_square = float(np.mean(np.square(values)))
            shrunk = (len(values) * mean_square + COST_SHRINK_INSTRUMENTS * pooled) / (
                len(values) + COST_SHRINK_INSTRUMENTS
            )
            log_sd[category] = math.sqrt(shrunk)
            q1, median, q3 = np.exp(np.quantile(values, [0.25, 0.5, 0.75]))
            quartiles[category] = (float(q1), float(median), float(q3), len(values))
        premium, premium_sd, pooled_premium, pooled_sd = _pooled_premia(by_category)
        return CostStats(
            log_sd, math.sqrt(pooled), quartiles, premium, premium_sd, pooled_premium, pooled_sd
        )


def _pooled_premia(
    by_category: dict[str, list[float]],
) -> tuple[dict[str, float], dict[str, float], float, float]:
    """Partially pooled category means of log(price / cost value) and the log sd of a cost
    value rebased by them: a one-way random-effects model, the between-category variance
    tau^2 by the method of moments (the variance of the category means less their sampling
    variance, at least ``MIN_PREMIUM_TAU``^2), each mean shrunk toward the pooled one with
    weight n / (n + s^2 / tau^2)."""
    everything = np.array([ratio for ratios in by_category.values() for ratio in ratios])
    pooled_mean = float(np.mean(everything))
    centred = [np.array(r) - np.mean(r) for r in by_category.values()]
    degrees = sum(len(r) - 1 for r in centred)
    within = (
        float(sum(np.sum(r * r) for r in centred)) / degrees
        if degrees > 0 else float(np.var(everything))
    )  # fmt: skip
    within = max(within, MIN_PREMIUM_TAU**2)
    means = np.array([np.mean(r) for r in by_category.values()])
    counts = np.array([len(r) for r in by_category.values()])
    tau2 = max(
        float(np.var(means)) - float(np.mean(within / counts)) if len(means) > 1 else 0.0,
        MIN_PREMIUM_TAU**2,
    )
    premium: dict[str, float] = {}
    premium_sd: dict[str, float] = {}
    for category, mean, count in zip(by_category, means, counts, strict=True):
        shrink = count / (count + within / tau2)
        premium[category] = float(shrink * mean + (1 - shrink) * pooled_mean)
        # The spread around the premium plus the premium's own posterior variance.
        premium_sd[category] = math.sqrt(within + 1 / (count / within + 1 / tau2))
    pooled_sd = math.sqrt(within + tau2)
    return premium, premium_sd, pooled_mean, pooled_sd
