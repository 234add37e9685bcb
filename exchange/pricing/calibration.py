"""Calibration: the factors' elasticities and premia and the category price indices, estimated
together from the trade history by one penalised log-linear regression.

The model, for trade i of product p under terms t in period m of category c::

    log price_i = L[c, m] + alpha log records_p + sum_k beta_k log quality_p,k
                  + log(exclusivity premium) exclusive_t + log(scope premium)[scope_t]
                  + log(territory premium) cross_border_t + log(freshness premium)[frequency_p]
                  + gamma log coverage_p + log(region effect)[region_p]
                  + theta log A_rate(duration_t)
                  + C_v(log records_p) + C_c(log coverage_p) + C_q(mean_k log quality_p,k) + e_i

``L[c, m]`` are the index levels (``exchange.pricing.index``), ``A_rate`` the annuity of
``factors.annuity_months``, ``C`` the penalised linear splines of ``exchange.pricing.curves``
(changes of elasticity at quantile knots, prior mean 0). Each curve's smoothing, the prior
standard deviation of its slope changes, is estimated from the trades by a few
expectation-maximisation steps (the variance-component update of a mixed model:
``tau^2 = mean(b^2 + posterior variance of b)``), so the data say how far each effect bends
away from a power law. Every coefficient has a prior centred on its documented default
(``factors.DEFAULT_PARAMETERS``) with a stated standard deviation, and consecutive index
levels have a random-walk prior; the fit maximises the posterior, which is least squares on
the data augmented with the priors (solved through the normal equations with numpy). With
many informative trades the data decide; with few, the estimates shrink toward the defaults.
Each estimate's *data weight* is the share of its posterior precision that comes from the
data (``1 - prior precision x posterior variance``): the report calls an estimate
``calibrated`` when that weight is at least 0.7, ``shrunk`` from 0.2, ``default`` below. The
duration rate enters non-linearly (its elasticity theta linearly), so it is profiled: the
regression is solved on a grid of rates and the best (with its own prior) is refined by a
parabola; its data weight comes from the curvature of the profile. The residual variance is
estimated, and the fit repeated once with it. Bounds: alpha in [0, 1], each beta >= 0,
theta >= 0.

**Category-specific coefficients** (random slopes). Scale, freshness, licence-term and coverage
effects need not be the same in every category, so each coefficient of
``CATEGORY_COEFFICIENTS`` also gets a deviation per category (the ``MAX_CATEGORY_EFFECTS``
most traded), a column ``x_i x [category_i = c]`` whose prior is normal with mean 0 and a
standard deviation (the spread between categories) estimated from the trades by the same
EM steps as the curves' smoothing. This is the empirical-Bayes hierarchical model: a
category's own coefficient (common + deviation) shrinks toward the common one in proportion
to how little its trades say, so a category of thousands of trades keeps its own elasticity
and one of two trades takes the common one; when the categories do not differ the estimated
spread falls toward zero and so do all the deviations. ``Calibration.parameters_for``
gives a category's coefficients, ``estimates_for`` their estimates (the data weight of a
category's coefficient is the share of its deviation's precision that came from its trades).

From the same fit come the residual statistics the valuation range needs: leave-one-out
residuals (``r_i / (1 - h_ii)``, exact for a penalised linear fit) split into the variance of
a product's own deviation from the model (between products, per category, shrunk toward the
pooled value) and the trade-to-trade noise (within products).

Below ``MIN_TRADES`` trades nothing is fitted: the defaults are used, the index is flat, and
the residual variances take their documented defaults.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from threadpoolctl import threadpool_limits

from exchange.pricing.curves import Curve, hinge_columns, quantile_knots
from exchange.pricing.factors import DEFAULT_PARAMETERS, FactorParameters
from exchange.pricing.features import month_number
from exchange.pricing.index import PriceIndex
from exchange.pricing.records import QUALITY_DIMENSIONS
from exchange.pricing.tables import InstrumentTable, ProductTable, TradeTable

__all__ = [
    "CATEGORY_COEFFICIENTS",
    "MIN_TRADES",
    "Calibration",
    "ParameterEstimate",
    "ResidualStats",
    "adjustment_covariates",
    "calibrate",
]

# Below this many trades the defaults are used and nothing is fitted.
MIN_TRADES = 20
# The first pass assumes this residual standard deviation (log price); the second uses the
# first pass's estimate.
PRIOR_RESIDUAL_SD = 0.3
# An index level moves by about 5% a month at most, one standard deviation.
RANDOM_WALK_SD_PER_MONTH = 0.05
# Prior standard deviations, on the coefficient's scale (log multipliers for premia).
ELASTICITY_PRIOR_SD = 0.25
PREMIUM_PRIOR_SD = 0.30
COVERAGE_PRIOR_SD = 0.20
REGION_PRIOR_SD = 0.30
DURATION_RATE_PRIOR_SD = 0.7  # of the log rate
DURATION_RATE_GRID = np.geomspace(0.01, 4.0, 19)  # per year
# Curves: the first pass's prior sd of a change of elasticity at a knot, the EM steps that
# then estimate it from the trades, and its bounds (0.01: effectively a power law).
CURVE_PRIOR_SD = 0.5
CURVE_SMOOTHING_STEPS = 5
CURVE_SD_BOUNDS = (0.01, 1.0)
CURVE_NAMES = ("volume_curve", "coverage_curve", "quality_curve")
# Category-specific coefficients: each gets a deviation per category, shrunk toward the common
# coefficient; the first pass's spread between categories, the EM steps that then estimate
# it, and its bounds (0.01: effectively one coefficient for all categories).
CATEGORY_COEFFICIENTS = (
    "volume_elasticity", "exclusivity_premium", "commercial_premium", "resale_premium",
    "cross_border_premium", "real_time_premium", "daily_premium", "monthly_premium",
    "coverage_elasticity",
    *(f"quality_elasticity_{name}" for name in QUALITY_DIMENSIONS),
)  # fmt: skip
CATEGORY_PRIOR_SD = 0.2
CATEGORY_SD_BOUNDS = (0.01, 1.0)
# Limit: categories with their own coefficients (the most traded; the others use the common).
MAX_CATEGORY_EFFECTS = 30
# The design effect on the coefficients' covariance (trades of one product are not independent
# evidence) is kept in this range.
DESIGN_EFFECT_BOUNDS = (1.0, 50.0)
# Limits: at most this many index levels (categories x periods; periods lengthen to fit) and
# region effects (the most traded regions; the others get none).
MAX_INDEX_CELLS = 2_000
PERIOD_CHOICES_MONTHS = (1, 3, 6, 12)
MAX_REGION_EFFECTS = 200
# Data weights that make an estimate "calibrated" or "shrunk" rather than "default".
CALIBRATED_WEIGHT = 0.7
SHRUNK_WEIGHT = 0.2
# A category's between-product variance counts as this many products' worth of the pooled one.
BETWEEN_SHRINK_PRODUCTS = 20
# Without data: a product's own deviation from comparables-adjusted prices (log sd 0.35) and
# trade-to-trade noise (log sd 0.15). Floor on any variance: a 1% standard deviation.
DEFAULT_BETWEEN_SD = 0.35
DEFAULT_WITHIN_SD = 0.15
# Trades not at arm's length (related-party transfers, distressed or bundled sales): a trade
# whose leave-one-out residual lies further from its product's median than this modified
# z-score (Iglewicz and Hoaglin's outlier rule, 0.6745 x deviation / median absolute
# deviation) is left out of the fit, the comparables' prices and the residual variances;
# only products with at least SCREEN_MIN_PRODUCT_TRADES trades are screened (a median of
# fewer says nothing), and at most SCREEN_MAX_SHARE of the trades (beyond that the rule is
# describing the market's noise, not its outliers).
SCREEN_MODIFIED_Z = 3.5
# The robust sd is taken as at least this (log price): in very regular prices one far trade
# moves the others' leave-one-out residuals by more than their own tiny spread, and a
# deviation of less than about 17% is no evidence of a deal not at arm's length.
SCREEN_MIN_LOG_SD = 0.05
SCREEN_MIN_PRODUCT_TRADES = 3
SCREEN_MAX_SHARE = 0.2
# Up to this many trades the regression is refitted without the screened ones (on the study's
# market at 40% traded, 23,000 trades, the refit took the median error from 6.8% to 6.5%);
# beyond it the second fit's cost is not paid, and the screened trades leave only the
# residual variances and the comparables' prices.
SCREEN_REFIT_MAX_TRADES = 30_000
VARIANCE_FLOOR = 1e-4


@dataclass(frozen=True, slots=True)
class ParameterEstimate:
    """One calibrated quantity as used (``value``, on the factor's own scale: an elasticity
    or a multiplier), its ``default``, the share of its information that came from the
    trades (``data_weight``), and the resulting ``source``: calibrated, shrunk or default."""

    name: str
    value: float
    default: float
    data_weight: float
    source: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class ResidualStats:
    """Leave-one-out residual variances of log prices: a product's own deviation from the
    model (between products, per category and pooled) and trade-to-trade noise (within)."""

    between_var: dict[str, float]
    pooled_between_var: float
    within_var: float
    trades: int
    products: int
    # The typical trade's noise: a robust (median-based) variance of the within-product
    # residuals, which the occasional non-arm's-length trade does not inflate. The mean-square
    # ``within_var`` is right for a VWAP's variance; a back-test percentile needs this one.
    typical_within_var: float = DEFAULT_WITHIN_SD**2

    def between(self, category: str) -> float:
        return self.between_var.get(category, self.pooled_between_var)


@dataclass(frozen=True, slots=True)
class Calibration:
    """The common ``parameters`` and their ``estimates``, each category's own (its
    coefficients of ``CATEGORY_COEFFICIENTS`` partially pooled toward the common ones), the
    index and the residual statistics."""

    parameters: FactorParameters
    estimates: tuple[ParameterEstimate, ...]
    index: PriceIndex
    residuals: ResidualStats
    note: str
    category_parameters: Mapping[str, FactorParameters] = field(default_factory=dict)
    category_estimates: Mapping[str, tuple[ParameterEstimate, ...]] = field(default_factory=dict)
    # The posterior covariance of the CATEGORY_COEFFICIENTS as a category uses them (common +
    # deviation), times the category's design effect; ``common_covariance`` is that of a
    # category without its own (the common ones plus a deviation of the spread's size).
    category_covariance: Mapping[str, np.ndarray] = field(default_factory=dict)
    common_covariance: np.ndarray | None = None
    # Per trade of the calibrated TradeTable: True where the trade was screened out as not at
    # arm's length (``screen_trades``); None when nothing was screened.
    screened: np.ndarray | None = None

    def parameters_for(self, category: str) -> FactorParameters:
        """The parameters that value a product of ``category``: its own coefficients where
        it has them, the common ones otherwise."""
        return self.category_parameters.get(category, self.parameters)

    def covariance_for(self, category: str) -> np.ndarray | None:
        """How uncertain the category's ``CATEGORY_COEFFICIENTS`` are (on the regression's
        scale, in that order), or None without a calibration."""
        return self.category_covariance.get(category, self.common_covariance)

    def estimates_for(self, category: str) -> tuple[ParameterEstimate, ...]:
        """The common estimates, then the category's own (named ``name[category]``)."""
        return self.estimates + tuple(self.category_estimates.get(category, ()))


@dataclass(frozen=True, slots=True)
class _Coefficient:
    name: str  # parameter name in reports
    default: float  # on the regression's scale (log for premia)
    prior_sd: float
    log_scale: bool  # reported as exp(coefficient)


def _source(weight: float) -> str:
    if weight >= CALIBRATED_WEIGHT:
        return "calibrated"
    if weight >= SHRUNK_WEIGHT:
        return "shrunk"
    return "default"


def _dense_coefficients(defaults: FactorParameters) -> list[_Coefficient]:
    log = math.log
    quality = [
        _Coefficient(f"quality_elasticity_{name}", beta, ELASTICITY_PRIOR_SD, False)
        for name, beta in zip(QUALITY_DIMENSIONS, defaults.quality_elasticities, strict=True)
    ]
    elasticity, premium, coverage = ELASTICITY_PRIOR_SD, PREMIUM_PRIOR_SD, COVERAGE_PRIOR_SD
    return [
        _Coefficient("volume_elasticity", defaults.volume_elasticity, elasticity, False),
        *quality,
        _Coefficient("exclusivity_premium", log(defaults.exclusivity_premium), premium, True),
        _Coefficient("commercial_premium", log(defaults.commercial_premium), premium, True),
        _Coefficient("resale_premium", log(defaults.resale_premium), premium, True),
        _Coefficient("cross_border_premium", log(defaults.cross_border_premium), premium, True),
        _Coefficient("real_time_premium", log(defaults.real_time_premium), premium, True),
        _Coefficient("daily_premium", log(defaults.daily_premium), premium, True),
        _Coefficient("monthly_premium", log(defaults.monthly_premium), premium, True),
        _Coefficient("coverage_elasticity", defaults.coverage_elasticity, coverage, False),
        _Coefficient("duration_elasticity", defaults.duration_elasticity, elasticity, False),
    ]


def _log_annuity(duration_months: np.ndarray, rate_per_year: float) -> np.ndarray:
    """``log A(T)`` of ``factors.annuity_months``, vectorised."""
    k = rate_per_year / 12
    if k < 1e-9:
        return np.log(duration_months)
    return np.log(-np.expm1(-k * duration_months) / -math.expm1(-k))


def adjustment_covariates(
    log_records: float,
    log_quality: Sequence[float],
    exclusive: bool,
    scope_rank: int,
    cross_border: bool,
    frequency_rank: int,
    log_coverage: float,
) -> tuple[float, ...]:
    """A product under licence terms as the regression's columns of the
    ``CATEGORY_COEFFICIENTS``, in that order: the difference of two such tuples, times a
    category's coefficients, is the log adjustment between them that those coefficients
    make (before the curves)."""
    return (
        log_records, float(exclusive), float(scope_rank == 1), float(scope_rank == 2),
        float(cross_border), float(frequency_rank == 0), float(frequency_rank == 1),
        float(frequency_rank == 2), log_coverage, *log_quality,
    )  # fmt: skip


def _parameter(parameters: FactorParameters, name: str) -> float:
    """A coefficient of ``parameters`` by its estimate's name (a quality elasticity is an
    element of ``quality_elasticities``)."""
    if name.startswith("quality_elasticity_"):
        dimension = QUALITY_DIMENSIONS.index(name.removeprefix("quality_elasticity_"))
        return parameters.quality_elasticities[dimension]
    value: float = getattr(parameters, name)
    return value


def _group_sums(codes: np.ndarray, values: np.ndarray, groups: int) -> np.ndarray:
    """The sums of ``values``' rows (trades x columns) by ``codes`` (in 0..groups-1): one
    sort and one pass, where a bincount per column would make as many passes."""
    order = np.argsort(codes, kind="stable")
    present, starts = np.unique(codes[order], return_index=True)
    sums = np.zeros((groups, values.shape[1]))
    if len(order):
        sums[present] = np.add.reduceat(values[order], starts, axis=0)
    return sums


def calibrate(
    products: ProductTable,
    instruments: InstrumentTable,
    trades: TradeTable,
    as_of: dt.date,
    defaults: FactorParameters = DEFAULT_PARAMETERS,
) -> Calibration:
    """Fit the factors and the category indices to ``trades`` (all on or before ``as_of``).

    Deterministic; O(trades x 37 + cells^3) with cells <= ``MAX_INDEX_CELLS`` plus the
    regions and 37 coefficients (13 factors' and up to 3 x ``curves.KNOTS`` curves').
    """
    n = len(trades)
    if n < MIN_TRADES:
        return _uncalibrated(defaults, as_of, n, f"{n} trades (< {MIN_TRADES}): defaults used")
    # The systems solved here have a few hundred unknowns: too small for BLAS threads to pay,
    # and on a shared machine their spinning cost 1.5-3.7 times the wall-clock time of one
    # thread (docs/benchmarks.md, "Valuation").
    with threadpool_limits(limits=1, user_api="blas"):
        return _calibrate(products, instruments, trades, as_of, defaults)


def _calibrate(
    products: ProductTable,
    instruments: InstrumentTable,
    trades: TradeTable,
    as_of: dt.date,
    defaults: FactorParameters,
) -> Calibration:
    """``calibrate``'s fit, the screening of trades not at arm's length, and the refit."""
    n = len(trades)
    fit = _Fit(products, instruments, trades, as_of, defaults)
    calibration = fit.run()
    screened = screen_trades(fit.loo, fit.product)
    kept = np.flatnonzero(~screened)
    left_out = n - len(kept)
    if left_out == 0 or len(kept) < MIN_TRADES:
        return calibration
    note = f"{left_out} of {n} trades left out as not at arm's length"
    if n > SCREEN_REFIT_MAX_TRADES:
        # The screened trades still leave the residual variances and the comparables'
        # prices; the coefficients, told by many trades, are kept.
        return replace(
            calibration,
            residuals=fit.residual_stats(fit.loo, ~screened),
            screened=screened,
            note=f"{calibration.note}; {note} (of the variances and prices, not the fit)",
        )
    refit = _Fit(products, instruments, trades.take(kept), as_of, defaults).run()
    return replace(refit, screened=screened, note=f"{refit.note}; {note}")


def screen_trades(loo_residual: np.ndarray, product: np.ndarray) -> np.ndarray:
    """True for each trade whose leave-one-out residual lies beyond ``SCREEN_MODIFIED_Z``
    robust sds from its product's median residual (modified z-score: the sd is the median
    absolute deviation over every screened product's trades / 0.6745, at least
    ``SCREEN_MIN_LOG_SD``), for products of at least
    ``SCREEN_MIN_PRODUCT_TRADES`` trades; at most ``SCREEN_MAX_SHARE`` of the trades, the
    furthest first. O(trades log trades).

    >>> residual = np.array([0.0, 0.05, -0.05, 0.02, -0.7, 0.3, 0.1])
    >>> screen_trades(residual, np.array([0, 0, 0, 0, 0, 1, 1])).tolist()
    [False, False, False, False, True, False, False]
    """
    flagged = np.zeros(len(loo_residual), dtype=bool)
    codes, group = np.unique(product, return_inverse=True)
    counts = np.bincount(group, minlength=len(codes))
    screened = counts[group] >= SCREEN_MIN_PRODUCT_TRADES
    if not screened.any():
        return flagged
    order = np.lexsort((loo_residual, group))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sorted_residual = loo_residual[order]
    # Each product's median (the mean of the two middle values for an even count).
    lower = sorted_residual[starts + (counts - 1) // 2]
    upper = sorted_residual[starts + counts // 2]
    deviation = loo_residual - ((lower + upper) / 2)[group]
    robust_sd = max(float(np.median(np.abs(deviation[screened]))) / 0.6745, SCREEN_MIN_LOG_SD)
    score = np.abs(deviation) / robust_sd
    candidates = np.flatnonzero(screened & (score > SCREEN_MODIFIED_Z))
    limit = int(SCREEN_MAX_SHARE * len(loo_residual))
    if len(candidates) > limit:
        candidates = candidates[np.argsort(-score[candidates], kind="stable")[:limit]]
    flagged[candidates] = True
    return flagged


def _uncalibrated(defaults: FactorParameters, as_of: dt.date, n: int, note: str) -> Calibration:
    estimates = [
        ParameterEstimate(c.name, math.exp(c.default) if c.log_scale else c.default,
                          math.exp(c.default) if c.log_scale else c.default, 0.0, "default")
        for c in _dense_coefficients(defaults)
    ]  # fmt: skip
    rate = defaults.duration_rate_per_year
    estimates.append(ParameterEstimate("duration_rate_per_year", rate, rate, 0.0, "default"))
    estimates.extend(
        ParameterEstimate(name, 0.0, 0.0, 0.0, "default", "no curve: the plain power law")
        for name in CURVE_NAMES
    )
    residuals = ResidualStats({}, DEFAULT_BETWEEN_SD**2, DEFAULT_WITHIN_SD**2, n, 0)
    index = PriceIndex.flat(month_number(as_of))
    return Calibration(defaults, tuple(estimates), index, residuals, note)


class _Fit:
    """One calibration run: the design, the penalised normal equations, the profile over
    the duration rate, and what is read off the solution."""

    def __init__(
        self,
        products: ProductTable,
        instruments: InstrumentTable,
        trades: TradeTable,
        as_of: dt.date,
        defaults: FactorParameters,
    ) -> None:
        self.products = products
        self.defaults = defaults
        self.n = n = len(trades)
        product = instruments.product[trades.instrument]
        self.product = product
        self.loo = np.zeros(n)  # the leave-one-out residuals, once run
        self.y = np.log(trades.price)
        self.duration = instruments.duration_months[trades.instrument]

        # Index cells: (category present in the trades) x period.
        category_code = products.category[product]
        present, category = np.unique(category_code, return_inverse=True)
        self.category_names = [products.categories[c] for c in present]
        self.category = category
        first = int(trades.month.min())
        last = max(int(trades.month.max()), month_number(as_of))
        span = last - first + 1
        categories = len(present)
        period = next(
            (p for p in PERIOD_CHOICES_MONTHS if categories * -(-span // p) <= MAX_INDEX_CELLS),
            -(-categories * span // MAX_INDEX_CELLS),
        )
        self.first_month, self.period_months = first, period
        self.periods = -(-span // period)
        self.cell = category * self.periods + (trades.month - first) // period
        self.cells = categories * self.periods
        self.cell_trades = np.bincount(self.cell, minlength=self.cells)

        # Region effects for the most traded regions, relative to the most traded one (the
        # cell levels already hold the common level, so one region is the reference); a last
        # bucket holds the others, with its effect pinned at zero too.
        region_code = products.region[product]
        counts = np.bincount(region_code, minlength=len(products.regions))
        ranked = [r for r in np.argsort(-counts, kind="stable") if counts[r] > 0]
        modelled = ranked[:MAX_REGION_EFFECTS]
        self.region_names = [products.regions[r] for r in modelled]
        lookup = np.full(len(products.regions), len(modelled), dtype=np.int64)
        lookup[modelled] = np.arange(len(modelled))
        self.region = lookup[region_code]
        self.regions = len(modelled) + 1

        # Dense controls, centred (the cell levels absorb the means).
        frequency = products.frequency_rank[product]
        scope = instruments.scope_rank[trades.instrument]
        columns = [
            products.log_records[product],
            *np.log(products.quality[product]).T,
            instruments.exclusive[trades.instrument].astype(np.float64),
            (scope == 1).astype(np.float64),
            (scope == 2).astype(np.float64),
            instruments.cross_border[trades.instrument].astype(np.float64),
            (frequency == 0).astype(np.float64),
            (frequency == 1).astype(np.float64),
            (frequency == 2).astype(np.float64),
            products.log_coverage[product],
        ]
        self.coefficients = _dense_coefficients(defaults)
        duration = self.coefficients.pop()  # the duration's column stays last (_set_rate)
        dense_position = {c.name: j for j, c in enumerate(self.coefficients)}
        # The curves: hinge columns at knots placed at quantiles over the traded products.
        traded = np.unique(product)
        attributes = dict(
            zip(
                CURVE_NAMES,
                (products.log_records, products.log_coverage,
                 np.log(products.quality).mean(axis=1)),
                strict=True,
            )
        )  # fmt: skip
        self.curve_knots: dict[str, np.ndarray] = {}
        self.curve_columns: dict[str, np.ndarray] = {}  # positions among the dense columns
        for name, values in attributes.items():
            knots = quantile_knots(values[traded])
            self.curve_knots[name] = knots
            self.curve_columns[name] = len(columns) + np.arange(len(knots))
            columns.extend(hinge_columns(values[product], knots).T)
            self.coefficients.extend(
                _Coefficient(f"{name}_{j}", 0.0, CURVE_PRIOR_SD, False) for j in range(len(knots))
            )
        # The category deviations (random slopes) of the CATEGORY_COEFFICIENTS, for the most
        # traded categories when there are at least two to pool.
        ranked_categories = np.argsort(-np.bincount(category), kind="stable")
        pooled = [int(c) for c in ranked_categories[:MAX_CATEGORY_EFFECTS]]
        if categories < 2:
            pooled = []
        self.slope_categories = [self.category_names[c] for c in pooled]
        self.slope_columns: dict[str, np.ndarray] = {}
        for name in CATEGORY_COEFFICIENTS:
            base = columns[dense_position[name]]
            self.slope_columns[name] = len(columns) + np.arange(len(pooled))
            columns.extend(base * (category == c) for c in pooled)
            self.coefficients.extend(
                _Coefficient(f"{name}[{self.category_names[c]}]", 0.0, CATEGORY_PRIOR_SD, False)
                for c in pooled
            )
        columns.append(np.zeros(n))  # the duration's log annuity: set per rate by _set_rate
        self.coefficients.append(duration)
        z = np.column_stack(columns)
        self.z = z - z.mean(axis=0)
        self.q = len(self.coefficients)
        assert self.z.shape == (n, self.q)
        self.p = self.cells + self.regions + self.q
        self._build_normal_equations()
        self._prepare_duration()

    # ------------------------------------------------------------------ normal equations

    def _build_normal_equations(self) -> None:
        """X'X for every column but the duration's (which depends on the rate), and the
        prior precision and means."""
        cells, regions, q = self.cells, self.regions, self.q
        c0, r0 = 0, cells
        z0 = cells + regions
        xtx = np.zeros((self.p, self.p))
        xtx[c0:r0, c0:r0] = np.diag(self.cell_trades.astype(np.float64))
        region_trades = np.bincount(self.region, minlength=regions).astype(np.float64)
        xtx[r0:z0, r0:z0] = np.diag(region_trades)
        cross = np.bincount(self.cell * regions + self.region, minlength=cells * regions)
        xtx[c0:r0, r0:z0] = cross.reshape(cells, regions)
        xtx[r0:z0, c0:r0] = xtx[c0:r0, r0:z0].T
        xtx[c0:r0, z0 : z0 + q - 1] = _group_sums(self.cell, self.z[:, : q - 1], cells)
        xtx[r0:z0, z0 : z0 + q - 1] = _group_sums(self.region, self.z[:, : q - 1], regions)
        xtx[z0:, :z0] = xtx[:z0, z0:].T
        xtx[z0 : z0 + q - 1, z0 : z0 + q - 1] = self.z[:, : q - 1].T @ self.z[:, : q - 1]
        self.xtx = xtx

        precision = np.zeros((self.p, self.p))
        walk_sd = RANDOM_WALK_SD_PER_MONTH * math.sqrt(self.period_months)
        block = np.zeros((self.periods, self.periods))
        if self.periods > 1:
            diff = np.diff(np.eye(self.periods), axis=0)
            block = diff.T @ diff / walk_sd**2
        for c in range(len(self.category_names)):
            s = c * self.periods
            precision[s : s + self.periods, s : s + self.periods] = block
        precision[np.arange(cells), np.arange(cells)] += 1e-9  # numerical safety only
        region_precision = np.full(regions, 1 / REGION_PRIOR_SD**2)
        region_precision[0] = 1e12  # the reference region stays at zero
        region_precision[-1] = 1e12  # and so does the "other regions" bucket
        precision[r0:z0, r0:z0] += np.diag(region_precision)
        sd = np.array([c.prior_sd for c in self.coefficients])
        precision[z0:, z0:] += np.diag(1 / sd**2)
        self.prior_precision = precision
        self.prior_mean = np.zeros(self.p)
        self.prior_mean[z0:] = [c.default for c in self.coefficients]
        self.prior_term = precision @ self.prior_mean

    def _prepare_duration(self) -> None:
        """The sums that make the duration's column cheap to change: it takes one value per
        distinct duration, so X' column, column' column and column' y are sums over the
        durations (O(parameters x durations) per rate instead of O(trades x parameters))."""
        values, code = np.unique(self.duration, return_inverse=True)
        count = len(values)
        self.duration_values, self.duration_code = values, code
        self.duration_trades = np.bincount(code, minlength=count).astype(np.float64)
        self.xt_duration = np.concatenate(
            [
                np.bincount(self.cell * count + code, minlength=self.cells * count).reshape(
                    self.cells, count
                ),
                np.bincount(self.region * count + code, minlength=self.regions * count).reshape(
                    self.regions, count
                ),
                _group_sums(code, self.z[:, : self.q - 1], count).T,
            ]
        )  # X' (duration indicator), every column but the duration's own
        # X' 1 (the centred controls sum to zero) and X' y without the duration's entry.
        self.xt_ones = np.concatenate(
            [
                self.cell_trades,
                np.bincount(self.region, minlength=self.regions),
                np.zeros(self.q - 1),
            ]
        )
        self.xty = self._xt(self.y)
        self.y_by_duration = np.bincount(code, weights=self.y, minlength=count)
        self.y_sum = float(self.y.sum())
        # For the residual sum of squares from sums: about the mean log price, so that the
        # sums do not cancel to the last digits (a cell level carries the mean instead).
        self.y_mean = self.y_sum / self.n
        centred = self.y - self.y_mean
        self.centred_ss = float(centred @ centred)
        self.xt_ones_all = np.append(self.xt_ones, 0.0)  # the duration's column is centred

    def _set_rate(self, rate: float) -> None:
        """Put the duration column for ``rate`` (centred log annuity) into the design, X'X
        and X'y."""
        f = _log_annuity(self.duration_values, rate)
        mean = float(f @ self.duration_trades) / self.n
        last = self.p - 1
        self.z[:, -1] = f[self.duration_code] - mean
        cross = self.xt_duration @ f - mean * self.xt_ones
        self.xtx[:last, last] = cross
        self.xtx[last, :last] = cross
        self.xtx[last, last] = float(self.duration_trades @ f**2) - self.n * mean**2
        self.xty[last] = float(f @ self.y_by_duration) - mean * self.y_sum

    def _xt(self, v: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                np.bincount(self.cell, weights=v, minlength=self.cells),
                np.bincount(self.region, weights=v, minlength=self.regions),
                self.z.T @ v,
            ]
        )

    def _x(self, theta: np.ndarray) -> np.ndarray:
        z0 = self.cells + self.regions
        return theta[self.cell] + theta[self.cells + self.region] + self.z @ theta[z0:]

    def _solve(
        self, variance: float, rate: float, base: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        """The posterior mode at this duration rate, and its objective (-2 log posterior,
        without the rate's own prior). ``base`` (``_rate_free_solutions``) makes the solve
        O(parameters x durations): the block of every coefficient but the duration's does
        not depend on the rate, so the duration's coefficient follows from the Schur
        complement of that block, already solved against everything the border is made of."""
        self._set_rate(rate)
        rhs = self.xty / variance + self.prior_term
        if base is None:
            theta = np.linalg.solve(self.xtx / variance + self.prior_precision, rhs)
        else:
            f = _log_annuity(self.duration_values, rate)
            mean = float(f @ self.duration_trades) / self.n
            durations = len(self.duration_values)
            # The duration's prior is its own: the border is X' column / variance alone.
            border = self.xtx[:-1, -1] / variance
            corner = self.xtx[-1, -1] / variance + self.prior_precision[-1, -1]
            along = base[:, :durations] @ f - mean * base[:, durations]
            partial = base[:, durations + 1]
            last = (rhs[-1] - border @ partial) / (corner - border @ along)
            theta = np.append(partial - along * last, last)
        # The residual sum of squares from the normal equations' sums, not the trades: every
        # trade has one cell, so y - X theta = (y - mean) - X (theta less the mean in cells).
        shifted = theta.copy()
        shifted[: self.cells] -= self.y_mean
        xty_centred = self.xty - self.y_mean * self.xt_ones_all
        residual_ss = self.centred_ss - 2 * shifted @ xty_centred + shifted @ self.xtx @ shifted
        deviation = theta - self.prior_mean
        objective = residual_ss / variance + deviation @ self.prior_precision @ deviation
        return theta, float(objective)

    def _rate_free_solutions(self, variance: float) -> np.ndarray:
        """The posterior precision's block without the duration solved against the parts of
        the duration's border (X' duration indicator, X' 1, over the variance) and against
        the right-hand side: one solve for the whole rate grid."""
        assert not self.prior_precision[:-1, -1].any(), "the duration's prior is its own"
        block = self.xtx[:-1, :-1] / variance + self.prior_precision[:-1, :-1]
        rhs = self.xty[:-1] / variance + self.prior_term[:-1]
        parts = np.column_stack([self.xt_duration / variance, self.xt_ones / variance, rhs])
        return np.linalg.solve(block, parts)

    def _profile(self, variance: float) -> tuple[np.ndarray, float, float, np.ndarray]:
        """Solve over the rate grid; the best rate (parabola-refined), its solution, the
        rate's data weight, and the inverse posterior precision at that rate."""
        u0 = math.log(self.defaults.duration_rate_per_year)
        grid_u = np.log(DURATION_RATE_GRID)
        base = self._rate_free_solutions(variance)
        data_objective = np.array([self._solve(variance, math.exp(u), base)[1] for u in grid_u])
        total = data_objective + (grid_u - u0) ** 2 / DURATION_RATE_PRIOR_SD**2
        best = int(np.argmin(total))
        u = float(grid_u[best])
        step = float(grid_u[1] - grid_u[0])
        prior_curvature = 2 / DURATION_RATE_PRIOR_SD**2
        # At the grid's edge the data push the rate outward: they say something, so the
        # curvature is taken one step inside.
        centre = min(max(best, 1), len(grid_u) - 2)
        d_left, d_middle, d_right = data_objective[centre - 1 : centre + 2]
        data_curvature = max((d_left - 2 * d_middle + d_right) / step**2, 0.0)
        if 0 < best < len(grid_u) - 1:
            left, middle, right = total[best - 1 : best + 2]
            curvature = left - 2 * middle + right
            if curvature > 0:
                u += step * (left - right) / (2 * curvature)
        rate = math.exp(u)
        theta, _ = self._solve(variance, rate)
        inverse = np.linalg.inv(self.xtx / variance + self.prior_precision)
        weight = float(data_curvature / (data_curvature + prior_curvature))
        return theta, rate, weight, inverse

    # ------------------------------------------------------------------ run

    def run(self) -> Calibration:
        variance = PRIOR_RESIDUAL_SD**2
        theta, rate, rate_weight, inverse = self._profile(variance)
        # The leverages' sum is trace(P^-1 X'X) / variance: no per-trade pass is needed.
        effective_parameters = float(np.einsum("ij,ji->", inverse, self.xtx)) / variance
        residual = self.y - self._x(theta)
        dof = max(self.n - effective_parameters, 1.0)
        variance = max(float(residual @ residual) / dof, VARIANCE_FLOOR)
        spread = self._estimate_spreads(variance, rate)
        theta, rate, rate_weight, inverse = self._profile(variance)
        leverage = self._leverage(inverse, variance)
        residual = self.y - self._x(theta)
        loo = residual / np.maximum(1 - leverage, 0.05)
        self.loo = loo

        z0 = self.cells + self.regions
        data_weight = 1 - np.diag(inverse) * np.diag(self.prior_precision)
        for positions in self.curve_columns.values():
            # Against the documented prior sd, not the one the data chose: a curve that the
            # trades flatten to a power law is their finding, not a default.
            data_weight[z0 + positions] = 1 - np.diag(inverse)[z0 + positions] / CURVE_PRIOR_SD**2
        for name, positions in self.slope_columns.items():
            # Against the spread the trades chose: how much a category's own trades say
            # beside what the other categories lend it.
            data_weight[z0 + positions] = 1 - np.diag(inverse)[z0 + positions] / spread[name] ** 2
        parameters, estimates = self._parameters(theta[z0:], data_weight[z0:], spread)
        region_theta = theta[self.cells : z0 - 1]
        region_weight = data_weight[self.cells : z0 - 1]
        parameters = replace(
            parameters,
            duration_rate_per_year=rate,
            region_effects={
                name: math.exp(float(effect))
                for name, effect in zip(self.region_names, region_theta, strict=True)
            },
        )
        category_parameters, category_estimates = self._category_parameters(
            theta[z0:], data_weight[z0:], spread, parameters
        )
        residuals = self.residual_stats(loo)
        alike = residuals.pooled_between_var / (
            residuals.pooled_between_var + residuals.within_var
        )  # the share of a trade's deviation its product's other trades share
        category_covariance, common_covariance = self._covariances(inverse[z0:, z0:], spread, alike)
        default_rate = self.defaults.duration_rate_per_year
        estimates.append(
            ParameterEstimate(
                "duration_rate_per_year", rate, default_rate, rate_weight, _source(rate_weight)
            )
        )
        if len(region_weight) > 1:
            estimated = region_weight[1:]  # the first is the reference, fixed at 1
            mean_weight = float(estimated.mean())
            estimates.append(
                ParameterEstimate(
                    "region_effects", float(np.exp(np.abs(region_theta[1:])).mean()), 1.0,
                    mean_weight, _source(mean_weight),
                    f"{len(estimated)} regions against {self.region_names[0]!r}; value is "
                    "the mean multiplier away from 1",
                )
            )  # fmt: skip
        note = (
            f"{self.n} trades, {len(self.category_names)} categories, "
            f"{self.periods} periods of {self.period_months} month(s); residual log sd "
            f"{math.sqrt(variance):.3f}"
        )
        return Calibration(
            parameters=parameters,
            estimates=tuple(estimates),
            index=self._index(theta),
            residuals=residuals,
            note=note,
            category_parameters=category_parameters,
            category_estimates=category_estimates,
            category_covariance=category_covariance,
            common_covariance=common_covariance,
        )

    def _estimate_spreads(self, variance: float, rate: float) -> dict[str, float]:
        """Each curve's smoothing and each category coefficient's spread between categories
        (the prior sd of its slope changes or deviations), by EM steps at this rate and
        variance; the prior precision keeps the result. ``tau^2 = (sum b_j^2 + sum var b_j) /
        count``, bounded."""
        z0 = self.cells + self.regions
        groups = [(name, positions, CURVE_SD_BOUNDS)
                  for name, positions in self.curve_columns.items()]  # fmt: skip
        groups += [(name, positions, CATEGORY_SD_BOUNDS)
                   for name, positions in self.slope_columns.items()]  # fmt: skip
        sd = {name: math.sqrt(1 / self.prior_precision[z0 + p[0], z0 + p[0]]) if len(p) else 0.0
              for name, p, _ in groups}  # fmt: skip
        for _ in range(CURVE_SMOOTHING_STEPS):
            theta, _ = self._solve(variance, rate)
            posterior_var = np.diag(np.linalg.inv(self.xtx / variance + self.prior_precision))
            for name, positions, (low, high) in groups:
                if len(positions) == 0:
                    continue
                at = z0 + positions
                tau2 = (float(theta[at] @ theta[at]) + float(posterior_var[at].sum())) / len(at)
                sd[name] = min(max(math.sqrt(tau2), low), high)
                self.prior_precision[at, at] = 1 / sd[name] ** 2
        # The curves' and the deviations' prior means are 0: the prior term needs no update.
        return sd

    def _leverage(self, inverse: np.ndarray, variance: float) -> np.ndarray:
        """``h_ii = x_i' P^-1 x_i / variance`` for every trade, from the sparse rows."""
        cell, region = self.cell, self.cells + self.region
        z0 = self.cells + self.regions
        z = self.z
        h = inverse[cell, cell] + inverse[region, region] + 2 * inverse[cell, region]
        h += 2 * np.einsum("ij,ij->i", z, inverse[cell, z0:] + inverse[region, z0:])
        h += ((z @ inverse[z0:, z0:]) * z).sum(axis=1)
        return h / variance

    def _parameters(
        self, theta: np.ndarray, weight: np.ndarray, spread: dict[str, float]
    ) -> tuple[FactorParameters, list[ParameterEstimate]]:
        estimates: list[ParameterEstimate] = []
        values: dict[str, float] = {}
        curves: dict[str, Curve] = {}
        curve_estimates: list[ParameterEstimate] = []
        in_curve = np.zeros(len(self.coefficients), dtype=bool)
        for positions in self.slope_columns.values():
            in_curve[positions] = True  # the category deviations: _category_parameters
        for name, positions in self.curve_columns.items():
            in_curve[positions] = True
            changes = tuple(float(b) for b in theta[positions])
            curve = Curve(tuple(float(k) for k in self.curve_knots[name]), changes)
            curves[name] = curve
            low, high = curve.slope_range()
            w = float(np.clip(weight[positions], 0.0, 1.0).mean()) if len(positions) else 0.0
            curve_estimates.append(
                ParameterEstimate(
                    name, max(abs(low), abs(high)), 0.0, w, _source(w),
                    f"{len(positions)} knots; value is the largest change of elasticity "
                    f"along the curve (from {low:+.3f} to {high:+.3f}); smoothing sd "
                    f"{spread[name]:.3f}",
                )
            )  # fmt: skip
        for coefficient, estimate, data_weight, skip in zip(
            self.coefficients, theta, weight, in_curve, strict=True
        ):
            if skip:
                continue
            value = float(estimate)
            note = ""
            if coefficient.name == "volume_elasticity" and not 0 <= value <= 1:
                note = f"estimate {value:.3f} bounded to [0, 1]"
                value = min(max(value, 0.0), 1.0)
            elif coefficient.name.startswith(("quality_", "duration_")) and value < 0:
                note = f"estimate {value:.3f} bounded to 0"
                value = 0.0
            default = coefficient.default
            if coefficient.log_scale:
                value, default = math.exp(value), math.exp(default)
            values[coefficient.name] = value
            w = float(min(max(data_weight, 0.0), 1.0))
            estimates.append(
                ParameterEstimate(coefficient.name, value, default, w, _source(w), note)
            )
        quality = tuple(values[f"quality_elasticity_{name}"] for name in QUALITY_DIMENSIONS)
        parameters = FactorParameters(
            volume_elasticity=values["volume_elasticity"],
            quality_elasticities=quality,  # type: ignore[arg-type]
            exclusivity_premium=values["exclusivity_premium"],
            commercial_premium=values["commercial_premium"],
            resale_premium=values["resale_premium"],
            cross_border_premium=values["cross_border_premium"],
            duration_rate_per_year=self.defaults.duration_rate_per_year,
            real_time_premium=values["real_time_premium"],
            daily_premium=values["daily_premium"],
            monthly_premium=values["monthly_premium"],
            coverage_elasticity=values["coverage_elasticity"],
            duration_elasticity=values["duration_elasticity"],
            volume_curve=curves["volume_curve"],
            coverage_curve=curves["coverage_curve"],
            quality_curve=curves["quality_curve"],
        )
        return parameters, estimates + curve_estimates

    def _covariances(
        self, inverse: np.ndarray, spread: dict[str, float], alike: float
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Each pooled category's covariance of its own coefficients (common + deviation),
        and that of a category without its own (common, plus the spread between categories).

        The regression counts every trade as independent evidence, but a category's
        coefficients are told by its *products* (trades of one product share its own
        deviation), so each covariance is multiplied by Kish's design effect for clustered
        samples, 1 + (trades per product - 1) x ``alike`` (the intra-product correlation of
        residuals), within ``DESIGN_EFFECT_BOUNDS``."""
        position = {c.name: j for j, c in enumerate(self.coefficients)}
        common = np.array([position[name] for name in CATEGORY_COEFFICIENTS])
        products, category_of_trade = np.unique(self.product, return_index=True)
        product_category = self.category[category_of_trade]
        trades = np.bincount(self.category, minlength=len(self.category_names))
        counted = np.bincount(product_category, minlength=len(self.category_names))

        def effect(trade_count: float, product_count: float) -> float:
            low, high = DESIGN_EFFECT_BOUNDS
            per_product = trade_count / max(product_count, 1.0)
            return min(max(1 + (per_product - 1) * alike, low), high)

        base = inverse[np.ix_(common, common)]
        overall = effect(float(trades.sum()), float(len(products)))
        deviation_var = np.array([spread.get(name, 0.0) ** 2 for name in CATEGORY_COEFFICIENTS])
        common_covariance = overall * (base + np.diag(deviation_var))
        covariances: dict[str, np.ndarray] = {}
        for k, category in enumerate(self.slope_categories):
            own = np.array([self.slope_columns[name][k] for name in CATEGORY_COEFFICIENTS])
            code = self.category_names.index(category)
            cross = inverse[np.ix_(common, own)]
            block = base + inverse[np.ix_(own, own)] + cross + cross.T
            covariances[category] = effect(float(trades[code]), float(counted[code])) * block
        return covariances, common_covariance

    def _category_parameters(
        self,
        theta: np.ndarray,
        weight: np.ndarray,
        spread: dict[str, float],
        common: FactorParameters,
    ) -> tuple[dict[str, FactorParameters], dict[str, tuple[ParameterEstimate, ...]]]:
        """Each pooled category's parameters (the common ones with its own
        ``CATEGORY_COEFFICIENTS``: common + deviation, bounded like the common) and their
        estimates, whose default is the common value they shrink toward."""
        position = {c.name: j for j, c in enumerate(self.coefficients)}
        parameters: dict[str, FactorParameters] = {}
        estimates: dict[str, tuple[ParameterEstimate, ...]] = {}
        for k, category in enumerate(self.slope_categories):
            own: dict[str, float] = {}
            rows: list[ParameterEstimate] = []
            for name in CATEGORY_COEFFICIENTS:
                coefficient = self.coefficients[position[name]]
                at = int(self.slope_columns[name][k])
                centre = _parameter(common, name)
                raw = float(theta[position[name]] + theta[at])
                value = math.exp(raw) if coefficient.log_scale else raw
                note = (
                    f"{category}'s own, pooled toward the common {centre:.3f}; spread between "
                    f"categories {spread[name]:.3f}"
                )
                # The common coefficient's bounds: alpha in [0, 1], quality elasticities >= 0.
                bounded_name = name == "volume_elasticity" or name.startswith("quality_")
                high = 1.0 if name == "volume_elasticity" else math.inf
                if bounded_name and not 0 <= value <= high:
                    bounded = min(max(value, 0.0), high)
                    note += f"; estimate {value:.3f} bounded to {bounded:g}"
                    value = bounded
                own[name] = value
                w = float(min(max(weight[at], 0.0), 1.0))
                rows.append(
                    ParameterEstimate(f"{name}[{category}]", value, centre, w, _source(w), note)
                )
            quality = tuple(
                own.pop(f"quality_elasticity_{name}", beta)
                for name, beta in zip(QUALITY_DIMENSIONS, common.quality_elasticities, strict=True)
            )
            parameters[category] = replace(common, quality_elasticities=quality, **own)
            estimates[category] = tuple(rows)
        return parameters, estimates

    def _index(self, theta: np.ndarray) -> PriceIndex:
        levels: dict[str, np.ndarray] = {}
        counts: dict[str, np.ndarray] = {}
        for c, name in enumerate(self.category_names):
            s = c * self.periods
            levels[name] = theta[s : s + self.periods].copy()
            counts[name] = self.cell_trades[s : s + self.periods].copy()
        return PriceIndex(self.first_month, self.period_months, levels, counts)

    def residual_stats(self, loo: np.ndarray, kept: np.ndarray | None = None) -> ResidualStats:
        """Between-product and within-product variances of the leave-one-out residuals (of
        the ``kept`` trades, a mask, when given)."""
        of_product = self.product
        if kept is not None:
            loo, of_product = loo[kept], of_product[kept]
        codes, product = np.unique(of_product, return_inverse=True)
        trades = np.bincount(product).astype(np.float64)
        mean = np.bincount(product, weights=loo) / trades
        within_ss = float(((loo - mean[product]) ** 2).sum())
        within_dof = float((trades - 1).sum())
        if within_dof >= 5:
            within = max(within_ss / within_dof, VARIANCE_FLOOR)
            between_each = mean**2 - within / trades
            # 1.4826 x the median absolute deviation is the sd of normal noise; the factor
            # n / (n - 1) undoes the shrinkage of deviations from a product's own mean.
            repeated = trades[product] > 1
            spread = np.abs(loo - mean[product])[repeated] * np.sqrt(
                trades[product][repeated] / (trades[product][repeated] - 1)
            )
            typical = min(max((1.4826 * float(np.median(spread))) ** 2, VARIANCE_FLOOR), within)
        else:
            # One trade per product: the two cannot be told apart, so the whole residual
            # counts as the product's own deviation (the wider, safer range).
            within = DEFAULT_WITHIN_SD**2
            between_each = mean**2
            typical = within
        pooled = max(float(between_each.mean()), VARIANCE_FLOOR)
        category_of_product = self.products.category[codes]
        between: dict[str, float] = {}
        for code in np.unique(category_of_product):
            mask = category_of_product == code
            count = int(mask.sum())
            estimate = float(between_each[mask].mean())
            shrunk = (count * estimate + BETWEEN_SHRINK_PRODUCTS * pooled) / (
                count + BETWEEN_SHRINK_PRODUCTS
            )
            between[self.products.categories[code]] = max(shrunk, VARIANCE_FLOOR)
        return ResidualStats(between, pooled, within, len(loo), len(codes), typical)
