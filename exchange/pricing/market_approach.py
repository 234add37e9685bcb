"""The market approach: each comparable's price adjusted by the factors, then weighted.

For comparable i::

    adjusted_i = price_i x prod_k factor_ik            (exchange.pricing.factors)
    weight_i   ~ similarity_i x recency_i x volume_i x adjustment_i, normalised to sum 1
    value      = sum_i weight_i x adjusted_i           (so the table adds up to the value)

- recency    = 0.5 ** (age in days / 365), age from the comparable's price date;
- volume     = n / (n + kappa), n the trades in its window, kappa = within-product over
               between-product residual variance (calibration): the share of a comparable's
               price that is signal rather than trade-to-trade noise;
- adjustment = exp(-sum_k |log factor_k|) over every factor but date (recency weighs age) and
               supply-demand (the same for every comparable): the gross adjustment of
               appraisal practice, since every adjustment is itself an estimate and
               adjustments that cancel in the total still each add their error.

The range is ``value x exp(+-z se)`` with z = 1.2816 (a central 80% interval) and, in logs::

    se^2 = between_c + dispersion^2 / (n_eff - 1)

``between_c`` is the variance of a product's own deviation from what its features predict
(the calibration's leave-one-out residuals, between products, for the category): the part of
the subject's value no comparable can reveal. ``dispersion^2`` is the weighted variance of
the comparables' log adjusted prices and ``n_eff = 1 / sum_p (sum of weights of product p)^2``
their effective number, counted by product (instruments of one product are not independent);
``n_eff - 1`` is floored at 0.5. To each block's variance (the subject's own instruments, the
others) is added what its adjustments may be off by together, ``d' S d``: ``d`` the block's
weighted mean difference from the subject in the calibration's columns (log records, the terms'
and frequencies' indicators, log coverage, log quality) and ``S`` the posterior covariance of
the category's coefficients (``Calibration.covariance_for``), so the range widens with larger
adjustments and with how little the category's trades say. This model standard error is
then multiplied by the market's back-tested scale (``exchange.pricing.interval``), which
corrects it by how the approach actually erred on held-out traded products. The expected
error is the median absolute error the scaled standard error implies: ``exp(0.6745 se) - 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from exchange.pricing.calibration import adjustment_covariates
from exchange.pricing.comparables import MIN_COMPARABLES, Comparable
from exchange.pricing.factors import (
    FACTOR_NAMES,
    FactorParameters,
    coverage_factor,
    date_factor,
    duration_factor,
    exclusivity_factor,
    flag_factor,
    flag_total,
    freshness_factor,
    quality_factor,
    region_factor,
    scope_factor,
    supply_demand_factor,
    territory_factor,
    volume_factor,
)
from exchange.pricing.features import (
    FREQUENCY_RANK,
    QUALITY_FLOOR,
    SCOPE_RANK,
    is_cross_border,
    is_exclusive,
)
from exchange.pricing.index import PriceIndex
from exchange.pricing.records import ProductRecord, TargetSpec, TermsRecord

__all__ = [
    "RECENCY_HALF_LIFE_DAYS",
    "Z_80",
    "AdjustedComparable",
    "MarketApproachResult",
    "adjust",
    "adjustment_weight",
    "market_approach",
]

RECENCY_HALF_LIFE_DAYS = 365
Z_80 = 1.2815515655446004
Z_50 = 0.6744897501960817
MIN_EXTRA_COMPARABLES = 0.5  # floor of n_eff - 1
# Volume weight's kappa stays within [0.1, 10]: between "one trade is the whole story" and
# "ten trades are needed to see through the noise".
KAPPA_BOUNDS = (0.1, 10.0)
_NOT_IN_GROSS_ADJUSTMENT = frozenset({"date", "supply_demand"})


@dataclass(frozen=True, slots=True)
class AdjustedComparable:
    """One row of the comparables table: the comparable, every factor, the weight and its
    parts, the contribution to the value, and the flags raised."""

    rank: int
    comparable: Comparable
    product: ProductRecord
    factors: dict[str, float]
    total_factor: float
    adjusted_price: float
    weight_parts: dict[str, float]
    weight: float
    contribution: float
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MarketApproachResult:
    """The market approach's value and range, or ``value`` None when fewer than
    ``MIN_COMPARABLES`` comparables were found (``found`` then lists them)."""

    value: float | None
    low: float | None
    high: float | None
    log_se: float | None
    expected_error_pct: float | None
    comparables: tuple[AdjustedComparable, ...]
    found: tuple[Comparable, ...]
    candidates: int
    effective_comparables: float | None
    supply_demand: float


def adjust(
    subject: ProductRecord,
    terms: TermsRecord,
    comparable: Comparable,
    comparable_product: ProductRecord,
    parameters: FactorParameters,
    index: PriceIndex,
    target: TargetSpec,
    supply_demand: float,
) -> dict[str, float]:
    """Every factor (in ``FACTOR_NAMES`` order) that takes the comparable to the subject."""
    c_terms = comparable.terms
    return {
        "date": date_factor(
            math.exp(index.log_level(subject.category, target.as_of)),
            math.exp(index.log_level(subject.category, comparable.price_date)),
        ),
        "volume": volume_factor(
            subject.record_count,
            comparable_product.record_count,
            parameters.volume_elasticity,
            parameters.volume_curve,
        ),
        "quality": quality_factor(
            subject.quality(),
            comparable_product.quality(),
            parameters.quality_elasticities,
            parameters.quality_curve,
        ),
        "exclusivity": exclusivity_factor(
            bool(is_exclusive(terms.exclusivity)),
            bool(is_exclusive(c_terms.exclusivity)),
            parameters.exclusivity_premium,
        ),
        "duration": duration_factor(
            terms.duration_months,
            c_terms.duration_months,
            parameters.duration_rate_per_year,
            parameters.duration_elasticity,
        ),
        "scope": scope_factor(terms.scope, c_terms.scope, parameters),
        "territory": territory_factor(
            bool(is_cross_border(terms.territory)),
            bool(is_cross_border(c_terms.territory)),
            parameters.cross_border_premium,
        ),
        "freshness": freshness_factor(
            subject.update_frequency, comparable_product.update_frequency, parameters
        ),
        "coverage": coverage_factor(
            subject.coverage_months,
            comparable_product.coverage_months,
            parameters.coverage_elasticity,
            parameters.coverage_curve,
        ),
        "region": region_factor(subject.region, comparable_product.region, parameters),
        "supply_demand": supply_demand,
    }


def _covariates(product: ProductRecord, terms: TermsRecord) -> np.ndarray:
    return np.array(
        adjustment_covariates(
            math.log(product.record_count),
            [math.log(max(q, QUALITY_FLOOR)) for q in product.quality()],
            bool(is_exclusive(terms.exclusivity)),
            SCOPE_RANK[terms.scope],
            bool(is_cross_border(terms.territory)),
            FREQUENCY_RANK[product.update_frequency],
            math.log(product.coverage_months),
        )
    )


def adjustment_weight(factors: dict[str, float]) -> float:
    """``exp(-gross adjustment)``, the gross adjustment being ``sum |log factor|`` over the
    factors that describe the comparable's differences from the subject.

    Appraisal practice judges a comparable by its *gross* adjustment, not its net: two
    adjustments of x2 and /2 cancel in the total but are two estimates, each with its own
    error, so the comparable is a poorer one than an identical sale. The date factor is left
    out because recency already weighs a comparable's age, and supply-demand because it is the
    same for every comparable.

    >>> round(adjustment_weight({"date": 1.5, "volume": 2.0, "quality": 0.5}), 6)
    0.25
    """
    gross = math.fsum(
        abs(math.log(factor))
        for name, factor in factors.items()
        if name not in _NOT_IN_GROSS_ADJUSTMENT
    )
    return math.exp(-gross)


def market_approach(
    target: TargetSpec,
    comparables: list[Comparable],
    comparable_products: list[ProductRecord],
    candidates: int,
    parameters: FactorParameters,
    index: PriceIndex,
    between_var: float,
    within_var: float,
    interval_scale: float = 1.0,
    coefficient_covariance: np.ndarray | None = None,
) -> MarketApproachResult:
    """Adjust and weight ``comparables`` (best first) into a value and a range.

    ``between_var`` and ``within_var`` are the calibration's residual variances for the
    target's category; ``interval_scale`` widens (>1) or narrows the range's z;
    ``coefficient_covariance`` (``Calibration.covariance_for``) is how uncertain the
    category's adjustment coefficients are, which widens the range by the adjustments made.
    """
    supply_demand = supply_demand_factor(target.book)
    if len(comparables) < MIN_COMPARABLES:
        return MarketApproachResult(
            None, None, None, None, None, (), tuple(comparables), candidates, None, supply_demand
        )  # fmt: skip
    kappa = min(max(within_var / between_var, KAPPA_BOUNDS[0]), KAPPA_BOUNDS[1])
    rows: list[tuple[Comparable, ProductRecord, dict[str, float], float, dict[str, float]]] = []
    for comparable, product in zip(comparables, comparable_products, strict=True):
        factors = adjust(
            target.product, target.terms, comparable, product, parameters, index, target,
            supply_demand,
        )  # fmt: skip
        total = math.prod(factors[name] for name in FACTOR_NAMES)
        age_days = max((target.as_of - comparable.price_date).days, 0)
        parts = {
            "similarity": comparable.similarity,
            "recency": 0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS),
            "volume": comparable.trades / (comparable.trades + kappa),
            "adjustment": adjustment_weight(factors),
        }
        rows.append((comparable, product, factors, total, parts))
    own_rows = [row for row in rows if row[0].own]
    other_rows = [row for row in rows if not row[0].own]
    variances: dict[bool, float] = {}
    within_weights: dict[int, float] = {}
    subject = None if coefficient_covariance is None else _covariates(target.product, target.terms)
    for is_own, block in ((True, own_rows), (False, other_rows)):
        if not block:
            continue
        raw = [math.prod(parts.values()) for *_, parts in block]
        total_raw = math.fsum(raw)
        assert total_raw > 0, "every weight part is positive"
        weights = [w / total_raw for w in raw]
        for (comparable, *_), weight in zip(block, weights, strict=True):
            within_weights[id(comparable)] = weight
        log_prices = [math.log(c.price * total) for c, _, _, total, _ in block]
        if is_own:
            trades = sum(c.trades for c, *_ in block)
            alike = math.fsum(
                w * p["adjustment"] for w, (*_, p) in zip(weights, block, strict=True)
            )
            variances[True] = within_var / max(trades, 1) + between_var * (1 - alike) ** 2
        else:
            log_mean = math.fsum(w * x for w, x in zip(weights, log_prices, strict=True))
            dispersion = math.fsum(
                w * (x - log_mean) ** 2 for w, x in zip(weights, log_prices, strict=True)
            )
            by_product: dict[str, float] = {}
            for (comparable, *_), weight in zip(block, weights, strict=True):
                by_product[comparable.product_id] = by_product.get(comparable.product_id, 0.0) + (
                    weight
                )
            effective = 1 / math.fsum(w * w for w in by_product.values())
            # Each comparable carries its own product's deviation, so their mean errs by at
            # least between / n_eff however close they happen to lie.
            variances[False] = between_var + max(dispersion, between_var) / max(
                effective - 1, MIN_EXTRA_COMPARABLES
            )
        if subject is not None:
            # The block's weighted mean difference from the subject in the calibration's
            # columns: its variance through the coefficients is what the block's adjustments
            # may be off by together (they share the coefficients: it does not average away).
            difference = np.zeros(len(subject))
            for (comparable, product, *_), weight in zip(block, weights, strict=True):
                difference += weight * (subject - _covariates(product, comparable.terms))
            variances[is_own] += float(difference @ coefficient_covariance @ difference)
    precision = math.fsum(1 / v for v in variances.values())
    evidence = {is_own: (1 / v) / precision for is_own, v in variances.items()}
    adjusted: list[AdjustedComparable] = []
    for rank, (comparable, product, factors, total, parts) in enumerate(rows, start=1):
        parts["evidence"] = evidence[comparable.own]
        weight = evidence[comparable.own] * within_weights[id(comparable)]
        adjusted_price = comparable.price * total
        flags = [flag for name in FACTOR_NAMES if (flag := flag_factor(name, factors[name]))]
        if (flag := flag_total(total)) is not None:
            flags.append(flag)
        adjusted.append(
            AdjustedComparable(
                rank, comparable, product, factors, total, adjusted_price, parts, weight,
                weight * adjusted_price, tuple(flags),
            )
        )  # fmt: skip
    value = math.fsum(row.contribution for row in adjusted)
    by_product_all: dict[str, float] = {}
    for row in adjusted:
        key = row.comparable.product_id
        by_product_all[key] = by_product_all.get(key, 0.0) + row.weight
    effective = 1 / math.fsum(w * w for w in by_product_all.values())
    log_se = interval_scale * math.sqrt(1 / precision)
    spread = math.exp(Z_80 * log_se)
    return MarketApproachResult(
        value=value,
        low=value / spread,
        high=value * spread,
        log_se=log_se,
        expected_error_pct=100 * math.expm1(Z_50 * log_se),
        comparables=tuple(adjusted),
        found=tuple(comparables),
        candidates=candidates,
        effective_comparables=effective,
        supply_demand=supply_demand,
    )
