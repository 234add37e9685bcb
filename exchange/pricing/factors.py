"""The market approach's adjustment factors, one pure function each, and their parameters.

Each factor turns a comparable's price into what the same trade would have cost for the
subject: a factor above 1 means the subject is worth more on that count. The structure
follows the China Appraisal Society's guidance on data-asset appraisal (2023): value =
comparable price x quality factor x supply-demand factor x date factor x volume factor x
other factors (here the licence terms, freshness, coverage and region).

Formulas (s = subject, c = comparable):

- date          I(valuation date) / I(trade date), I the category price index
- volume        (records_s / records_c) ** alpha x exp(C_v(log records_s) - C_v(log records_c)),
                the elasticity this implies between s and c kept within [0, 1]
- quality       prod_k (q_s,k / q_c,k) ** beta_k x exp(C_q(g_s) - C_q(g_c)), k over the four
                quality scores, g = mean_k log q_k (the log geometric-mean quality)
- exclusivity   premium ** (exclusive_s - exclusive_c)
- duration      (A(T_s) / A(T_c)) ** theta,  A(T) = (1 - exp(-k T)) / (1 - exp(-k)),
                k = rate / 12 (an annuity of T monthly instalments whose worth decays at
                ``rate`` a year: discounting plus the ageing of the data; A(12) / A(1) < 12);
                theta = 1 is the plain annuity ratio, and the calibration may bend it
- scope         premium(scope_s) / premium(scope_c),          internal = 1
- territory     premium ** (cross_border_s - cross_border_c)
- freshness     premium(frequency_s) / premium(frequency_c),  static = 1
- coverage      (coverage_months_s / coverage_months_c) ** gamma
                x exp(C_c(log coverage_s) - C_c(log coverage_c))
- region        effect(region_s) / effect(region_c),          unknown regions = 1
- supply-demand 1 + sensitivity x imbalance x depth / (depth + half_depth), within
                1 +- bound; exactly 1 without a book

C_v, C_c and C_q are the calibrated curves of ``exchange.pricing.curves`` (how far each effect
bends away from its power law); empty, hence 0, by default.

>>> round(volume_factor(4_000_000, 1_000_000, alpha=0.5), 6)
2.0
>>> round(duration_factor(12, 12, rate_per_year=0.3), 6)
1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from exchange.catalogue import Scope, UpdateFrequency
from exchange.pricing.book import book_imbalance, depth_units
from exchange.pricing.curves import Curve
from exchange.pricing.features import QUALITY_FLOOR
from exchange.pricing.records import BookSnapshot

__all__ = [
    "DEFAULT_PARAMETERS",
    "FACTOR_FLAG_LIMIT",
    "FACTOR_NAMES",
    "TOTAL_FLAG_LIMIT",
    "FactorParameters",
    "annuity_months",
    "coverage_factor",
    "date_factor",
    "duration_factor",
    "exclusivity_factor",
    "flag_factor",
    "flag_total",
    "freshness_factor",
    "log_mean_quality",
    "quality_factor",
    "region_factor",
    "scope_factor",
    "supply_demand_factor",
    "territory_factor",
    "volume_factor",
]

# The order in which factors appear in reports.
FACTOR_NAMES = (
    "date",
    "volume",
    "quality",
    "exclusivity",
    "duration",
    "scope",
    "territory",
    "freshness",
    "coverage",
    "region",
    "supply_demand",
)
# An appraiser looks twice at a single factor beyond +-20% and at a total beyond +-30%.
FACTOR_FLAG_LIMIT = 0.20
TOTAL_FLAG_LIMIT = 0.30
# Exactly +-20% or +-30% is within the limit, whatever the floating-point rounding.
_FLAG_TOLERANCE = 1e-12

# Supply-demand: a full-depth, all-bid book lifts the price by 10% at most, and the factor
# never leaves [0.9, 1.1]: the book is a live signal, not evidence of value.
SUPPLY_DEMAND_SENSITIVITY = 0.10
SUPPLY_DEMAND_BOUND = 0.10
SUPPLY_DEMAND_HALF_DEPTH_UNITS = 10


@dataclass(frozen=True, slots=True)
class FactorParameters:
    """Elasticities and premia of the factors. The defaults are the documented priors that
    the calibration shrinks toward (docs/valuation.md says why each)."""

    volume_elasticity: float = 0.5
    quality_elasticities: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)
    exclusivity_premium: float = 2.0
    commercial_premium: float = 1.5
    resale_premium: float = 2.5
    cross_border_premium: float = 1.2
    duration_rate_per_year: float = 0.30
    duration_elasticity: float = 1.0
    real_time_premium: float = 1.5
    daily_premium: float = 1.3
    monthly_premium: float = 1.1
    coverage_elasticity: float = 0.2
    region_effects: Mapping[str, float] = field(default_factory=dict)
    volume_curve: Curve = field(default_factory=Curve)
    coverage_curve: Curve = field(default_factory=Curve)
    quality_curve: Curve = field(default_factory=Curve)

    def scope_premium(self, scope: Scope) -> float:
        if scope is Scope.COMMERCIAL:
            return self.commercial_premium
        if scope is Scope.RESALE:
            return self.resale_premium
        return 1.0

    def freshness_premium(self, frequency: UpdateFrequency) -> float:
        if frequency is UpdateFrequency.REAL_TIME:
            return self.real_time_premium
        if frequency is UpdateFrequency.DAILY:
            return self.daily_premium
        if frequency is UpdateFrequency.MONTHLY:
            return self.monthly_premium
        return 1.0

    def region_effect(self, region: str) -> float:
        return self.region_effects.get(region, 1.0)


DEFAULT_PARAMETERS = FactorParameters()


def date_factor(index_at_valuation: float, index_at_trade: float) -> float:
    """Brings a price from its trade date to the valuation date along the category index."""
    assert index_at_valuation > 0 and index_at_trade > 0
    return index_at_valuation / index_at_trade


def volume_factor(
    subject_records: int, comparable_records: int, alpha: float, curve: Curve | None = None
) -> float:
    """``(subject / comparable) ** alpha`` bent by ``curve`` (of log records): value grows
    with scale, less than in proportion. The guidance's bound 0 <= alpha <= 1 holds for the
    elasticity the curve implies between the two (its log factor over the log ratio).

    >>> round(volume_factor(100, 10, 0.5, Curve((math.log(10),), (0.2,))), 6)  # 10 ** 0.7
    5.011872
    """
    assert subject_records > 0 and comparable_records > 0 and 0 <= alpha <= 1
    log_ratio = math.log(subject_records / comparable_records)
    if curve is None or not curve.knots or log_ratio == 0:
        return (subject_records / comparable_records) ** alpha
    bend = curve(math.log(subject_records)) - curve(math.log(comparable_records))
    elasticity = min(max(alpha + bend / log_ratio, 0.0), 1.0)
    return math.exp(elasticity * log_ratio)


def log_mean_quality(scores: Sequence[float]) -> float:
    """``mean_k log q_k`` (scores floored at 1%): the log of the geometric-mean quality, the
    quality curve's argument.

    >>> round(math.exp(log_mean_quality((0.5, 0.5, 1.0, 1.0))), 6)
    0.707107
    """
    return sum(math.log(max(score, QUALITY_FLOOR)) for score in scores) / len(scores)


def quality_factor(
    subject_quality: Sequence[float],
    comparable_quality: Sequence[float],
    elasticities: Sequence[float],
    curve: Curve | None = None,
) -> float:
    """``prod_k (s_k / c_k) ** beta_k`` over the quality scores (each floored at 1%), times
    ``exp(curve(g_s) - curve(g_c))`` with g the log geometric-mean quality.

    >>> round(quality_factor((0.9, 0.8, 1, 1), (0.6, 0.8, 1, 1), (0.5, 0.5, 0, 0)), 6)
    1.224745
    """
    log_factor = 0.0
    for s, c, beta in zip(subject_quality, comparable_quality, elasticities, strict=True):
        log_factor += beta * math.log(max(s, QUALITY_FLOOR) / max(c, QUALITY_FLOOR))
    if curve is not None and curve.knots:
        log_factor += curve(log_mean_quality(subject_quality)) - curve(
            log_mean_quality(comparable_quality)
        )
    return math.exp(log_factor)


def exclusivity_factor(
    subject_exclusive: bool, comparable_exclusive: bool, premium: float
) -> float:
    """``premium`` for an exclusive subject priced from a non-exclusive comparable, its
    inverse the other way round, 1 when both agree."""
    return premium ** (int(subject_exclusive) - int(comparable_exclusive))


def annuity_months(duration_months: int, rate_per_year: float) -> float:
    """``A(T) = (1 - exp(-k T)) / (1 - exp(-k))`` with ``k = rate / 12``: the worth of T
    monthly instalments, the first undiscounted, each later one worth ``exp(-k)`` of the one
    before. Tends to T as the rate tends to 0.

    >>> annuity_months(12, 0.0)
    12.0
    """
    k = rate_per_year / 12
    if k < 1e-9:
        return float(duration_months)
    return -math.expm1(-k * duration_months) / -math.expm1(-k)


def duration_factor(
    subject_months: int, comparable_months: int, rate_per_year: float, elasticity: float = 1.0
) -> float:
    """``(A(T_s) / A(T_c)) ** elasticity``: a longer licence is worth more, less than in
    proportion.

    >>> round(duration_factor(24, 12, rate_per_year=0.0, elasticity=0.5), 6)
    1.414214
    """
    ratio = annuity_months(subject_months, rate_per_year) / annuity_months(
        comparable_months, rate_per_year
    )
    return ratio**elasticity


def scope_factor(subject: Scope, comparable: Scope, parameters: FactorParameters) -> float:
    return parameters.scope_premium(subject) / parameters.scope_premium(comparable)


def territory_factor(
    subject_cross_border: bool, comparable_cross_border: bool, premium: float
) -> float:
    return premium ** (int(subject_cross_border) - int(comparable_cross_border))


def freshness_factor(
    subject: UpdateFrequency, comparable: UpdateFrequency, parameters: FactorParameters
) -> float:
    return parameters.freshness_premium(subject) / parameters.freshness_premium(comparable)


def coverage_factor(
    subject_months: float, comparable_months: float, gamma: float, curve: Curve | None = None
) -> float:
    """``(subject / comparable) ** gamma`` bent by ``curve`` (of log coverage months)."""
    assert subject_months > 0 and comparable_months > 0
    log_factor = gamma * math.log(subject_months / comparable_months)
    if curve is not None and curve.knots:
        log_factor += curve(math.log(subject_months)) - curve(math.log(comparable_months))
    return math.exp(log_factor)


def region_factor(subject: str, comparable: str, parameters: FactorParameters) -> float:
    return parameters.region_effect(subject) / parameters.region_effect(comparable)


def supply_demand_factor(
    book: BookSnapshot | None,
    sensitivity: float = SUPPLY_DEMAND_SENSITIVITY,
    bound: float = SUPPLY_DEMAND_BOUND,
    half_depth_units: int = SUPPLY_DEMAND_HALF_DEPTH_UNITS,
) -> float:
    """The subject's own book, if it has one: more bids than offers lift the value, more
    offers lower it, and a thin book counts for less. 1.0 (neutral) without a book or with an
    empty one; always within ``1 +- bound``.

    >>> supply_demand_factor(None)
    1.0
    >>> round(supply_demand_factor(BookSnapshot(bids=((10.0, 30),), asks=((11.0, 10),))), 4)
    1.04
    """
    if book is None:
        return 1.0
    imbalance = book_imbalance(book.bids, book.asks)
    if imbalance is None:
        return 1.0
    depth = depth_units(book.bids) + depth_units(book.asks)
    confidence = depth / (depth + half_depth_units)
    raw = 1.0 + sensitivity * imbalance * confidence
    return min(max(raw, 1.0 - bound), 1.0 + bound)


def flag_factor(name: str, value: float) -> str | None:
    """A flag when one factor moves the price by more than ``FACTOR_FLAG_LIMIT``."""
    if abs(value - 1.0) > FACTOR_FLAG_LIMIT + _FLAG_TOLERANCE:
        return f"{name} factor {value:.3f} is beyond +-{FACTOR_FLAG_LIMIT:.0%}"
    return None


def flag_total(value: float) -> str | None:
    """A flag when all factors together move the price by more than ``TOTAL_FLAG_LIMIT``."""
    if abs(value - 1.0) > TOTAL_FLAG_LIMIT + _FLAG_TOLERANCE:
        return f"total adjustment {value:.3f} is beyond +-{TOTAL_FLAG_LIMIT:.0%}"
    return None
