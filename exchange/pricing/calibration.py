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
from dataclasses import dataclass, replace

import numpy as np

from exchange.pricing.curves import Curve, hinge_columns, quantile_knots
from exchange.pricing.factors import DEFAULT_PARAMETERS, FactorParameters
from exchange.pricing.features import month_number
from exchange.pricing.index import PriceIndex
from exchange.pricing.records import QUALITY_DIMENSIONS
from exchange.pricing.tables import InstrumentTable, ProductTable, TradeTable

__all__ = [
    "MIN_TRADES",
    "Calibration",
    "ParameterEstimate",
    "ResidualStats",
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

    def between(self, category: str) -> float:
        return self.between_var.get(category, self.pooled_between_var)


@dataclass(frozen=True, slots=True)
class Calibration:
    parameters: FactorParameters
    estimates: tuple[ParameterEstimate, ...]
    index: PriceIndex
    residuals: ResidualStats
    note: str


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
    return _Fit(products, instruments, trades, as_of, defaults).run()


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
        columns.append(np.zeros(n))  # the duration's log annuity: set per rate by _set_rate
        self.coefficients.append(duration)
        z = np.column_stack(columns)
        self.z = z - z.mean(axis=0)
        self.q = len(self.coefficients)
        assert self.z.shape == (n, self.q)
        self.p = self.cells + self.regions + self.q
        self._build_normal_equations()

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
        for j in range(q - 1):
            column = self.z[:, j]
            xtx[c0:r0, z0 + j] = np.bincount(self.cell, weights=column, minlength=cells)
            xtx[r0:z0, z0 + j] = np.bincount(self.region, weights=column, minlength=regions)
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

    def _set_rate(self, rate: float) -> None:
        """Put the duration column for ``rate`` (centred log annuity) into the design."""
        column = _log_annuity(self.duration, rate)
        column -= column.mean()
        last = self.p - 1
        z0 = self.cells + self.regions
        self.z[:, -1] = column
        self.xtx[: self.cells, last] = np.bincount(self.cell, weights=column, minlength=self.cells)
        self.xtx[self.cells : z0, last] = np.bincount(
            self.region, weights=column, minlength=self.regions
        )
        self.xtx[z0:, last] = self.z.T @ column
        self.xtx[last, :] = self.xtx[:, last]

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

    def _solve(self, variance: float, rate: float) -> tuple[np.ndarray, float]:
        """The posterior mode at this duration rate, and its objective (-2 log posterior,
        without the rate's own prior)."""
        self._set_rate(rate)
        precision = self.xtx / variance + self.prior_precision
        theta = np.linalg.solve(precision, self._xt(self.y) / variance + self.prior_term)
        residual = self.y - self._x(theta)
        deviation = theta - self.prior_mean
        objective = residual @ residual / variance + deviation @ self.prior_precision @ deviation
        return theta, float(objective)

    def _profile(self, variance: float) -> tuple[np.ndarray, float, float, np.ndarray]:
        """Solve over the rate grid; the best rate (parabola-refined), its solution, the
        rate's data weight, and the inverse posterior precision at that rate."""
        u0 = math.log(self.defaults.duration_rate_per_year)
        grid_u = np.log(DURATION_RATE_GRID)
        data_objective = np.array([self._solve(variance, math.exp(u))[1] for u in grid_u])
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
        leverage = self._leverage(inverse, variance)
        residual = self.y - self._x(theta)
        dof = max(self.n - float(leverage.sum()), 1.0)
        variance = max(float(residual @ residual) / dof, VARIANCE_FLOOR)
        curve_sd = self._estimate_smoothing(variance, rate)
        theta, rate, rate_weight, inverse = self._profile(variance)
        leverage = self._leverage(inverse, variance)
        residual = self.y - self._x(theta)
        loo = residual / np.maximum(1 - leverage, 0.05)

        z0 = self.cells + self.regions
        data_weight = 1 - np.diag(inverse) * np.diag(self.prior_precision)
        for positions in self.curve_columns.values():
            # Against the documented prior sd, not the one the data chose: a curve that the
            # trades flatten to a power law is their finding, not a default.
            data_weight[z0 + positions] = 1 - np.diag(inverse)[z0 + positions] / CURVE_PRIOR_SD**2
        parameters, estimates = self._parameters(theta[z0:], data_weight[z0:], curve_sd)
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
            residuals=self._residual_stats(loo),
            note=note,
        )

    def _estimate_smoothing(self, variance: float, rate: float) -> dict[str, float]:
        """Each curve's prior sd, by EM steps at this rate and variance; the prior precision
        keeps the result. ``tau^2 = (sum b_j^2 + sum var b_j) / knots``, bounded."""
        z0 = self.cells + self.regions
        sd = {name: CURVE_PRIOR_SD for name in self.curve_columns}
        for _ in range(CURVE_SMOOTHING_STEPS):
            theta, _ = self._solve(variance, rate)
            posterior_var = np.diag(np.linalg.inv(self.xtx / variance + self.prior_precision))
            for name, positions in self.curve_columns.items():
                if len(positions) == 0:
                    continue
                at = z0 + positions
                tau2 = (float(theta[at] @ theta[at]) + float(posterior_var[at].sum())) / len(at)
                sd[name] = min(max(math.sqrt(tau2), CURVE_SD_BOUNDS[0]), CURVE_SD_BOUNDS[1])
                self.prior_precision[at, at] = 1 / sd[name] ** 2
        # The curves' prior means are 0, so the prior term needs no update.
        return sd

    def _leverage(self, inverse: np.ndarray, variance: float) -> np.ndarray:
        """``h_ii = x_i' P^-1 x_i / variance`` for every trade, from the sparse rows."""
        cell, region = self.cell, self.cells + self.region
        z0 = self.cells + self.regions
        z = self.z
        h = inverse[cell, cell] + inverse[region, region] + 2 * inverse[cell, region]
        h += 2 * np.einsum("ij,ij->i", z, inverse[cell, z0:] + inverse[region, z0:])
        h += np.einsum("ij,jk,ik->i", z, inverse[z0:, z0:], z)
        return h / variance

    def _parameters(
        self, theta: np.ndarray, weight: np.ndarray, curve_sd: dict[str, float]
    ) -> tuple[FactorParameters, list[ParameterEstimate]]:
        estimates: list[ParameterEstimate] = []
        values: dict[str, float] = {}
        curves: dict[str, Curve] = {}
        curve_estimates: list[ParameterEstimate] = []
        in_curve = np.zeros(len(self.coefficients), dtype=bool)
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
                    f"{curve_sd[name]:.3f}",
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

    def _index(self, theta: np.ndarray) -> PriceIndex:
        levels: dict[str, np.ndarray] = {}
        counts: dict[str, np.ndarray] = {}
        for c, name in enumerate(self.category_names):
            s = c * self.periods
            levels[name] = theta[s : s + self.periods].copy()
            counts[name] = self.cell_trades[s : s + self.periods].copy()
        return PriceIndex(self.first_month, self.period_months, levels, counts)

    def _residual_stats(self, loo: np.ndarray) -> ResidualStats:
        """Between-product and within-product variances of the leave-one-out residuals."""
        codes, product = np.unique(self.product, return_inverse=True)
        trades = np.bincount(product).astype(np.float64)
        mean = np.bincount(product, weights=loo) / trades
        within_ss = float(((loo - mean[product]) ** 2).sum())
        within_dof = float((trades - 1).sum())
        if within_dof >= 5:
            within = max(within_ss / within_dof, VARIANCE_FLOOR)
            between_each = mean**2 - within / trades
        else:
            # One trade per product: the two cannot be told apart, so the whole residual
            # counts as the product's own deviation (the wider, safer range).
            within = DEFAULT_WITHIN_SD**2
            between_each = mean**2
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
        return ResidualStats(between, pooled, within, self.n, len(codes))
