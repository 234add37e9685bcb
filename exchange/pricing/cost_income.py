"""The cost approach and the income approach, beside the market approach.

Cost approach (replacement cost less obsolescence, as the guidance's cost method)::

    value = cost_basis x quality x (1 - obsolescence) x terms

- ``cost_basis``: the replacement cost of supplying one licence under the reference terms
  (non-exclusive, 12 months, internal use, domestic), as the product record gives it;
- ``quality``: the mean of the four quality scores, in [0, 1] (the guidance's quality
  coefficient: a dataset half complete delivers half of what it cost to build);
- ``obsolescence`` by update frequency: real-time 0, daily 5%, monthly 15%, static 30% (data
  that is no longer refreshed loses currency: economic obsolescence);
- ``terms``: the licence-terms factors (exclusivity, duration, scope, territory) from the
  reference terms to the target's, with the same parameters as the market approach, so that
  the two approaches differ only in where the value comes from.

Its range uses the dispersion, in the market at hand, of traded prices around their own cost
approach values (``cost_log_sd``): how far costs are from prices in this category.

Income approach: the present value of the yearly cash flows attributable to the data,
discounted at the given rate, end of year::

    value = sum_t attribution x cash_flow_t / (1 + rate) ** t
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from exchange.catalogue import UpdateFrequency
from exchange.pricing.factors import (
    FactorParameters,
    duration_factor,
    exclusivity_factor,
    scope_factor,
    territory_factor,
)
from exchange.pricing.features import is_cross_border, is_exclusive
from exchange.pricing.records import REFERENCE_TERMS, IncomeInputs, ProductRecord, TermsRecord

__all__ = [
    "OBSOLESCENCE_BY_FREQUENCY",
    "CostResult",
    "IncomeResult",
    "cost_approach",
    "income_approach",
    "terms_multiplier",
]

OBSOLESCENCE_BY_FREQUENCY = {
    UpdateFrequency.REAL_TIME: 0.0,
    UpdateFrequency.DAILY: 0.05,
    UpdateFrequency.MONTHLY: 0.15,
    UpdateFrequency.STATIC: 0.30,
}
# z for a central 80% interval of a normal distribution.
Z_80 = 1.2815515655446004


@dataclass(frozen=True, slots=True)
class CostResult:
    """The cost approach's value and its parts; ``low``/``high`` span ``value x exp(+-z
    log_sd)`` with ``log_sd`` the market's dispersion of prices around cost values."""

    value: float
    low: float
    high: float
    cost_basis: float
    quality_factor: float
    obsolescence: float
    terms_factor: float
    log_sd: float


@dataclass(frozen=True, slots=True)
class IncomeResult:
    value: float
    present_values: tuple[float, ...]
    discount_rate: float
    attribution: float


def terms_multiplier(terms: TermsRecord, parameters: FactorParameters) -> float:
    """The licence-terms factors from ``REFERENCE_TERMS`` to ``terms``.

    >>> terms_multiplier(REFERENCE_TERMS, FactorParameters())
    1.0
    """
    reference = REFERENCE_TERMS
    return (
        exclusivity_factor(
            bool(is_exclusive(terms.exclusivity)),
            bool(is_exclusive(reference.exclusivity)),
            parameters.exclusivity_premium,
        )
        * duration_factor(
            terms.duration_months,
            reference.duration_months,
            parameters.duration_rate_per_year,
            parameters.duration_elasticity,
        )
        * scope_factor(terms.scope, reference.scope, parameters)
        * territory_factor(
            bool(is_cross_border(terms.territory)),
            bool(is_cross_border(reference.territory)),
            parameters.cross_border_premium,
        )
    )


def cost_approach(
    product: ProductRecord, terms: TermsRecord, parameters: FactorParameters, log_sd: float
) -> CostResult:
    """Replacement cost x quality x (1 - obsolescence) x terms, with its range."""
    quality = sum(product.quality()) / 4
    obsolescence = OBSOLESCENCE_BY_FREQUENCY[product.update_frequency]
    terms_factor = terms_multiplier(terms, parameters)
    value = product.cost_basis * quality * (1 - obsolescence) * terms_factor
    spread = math.exp(Z_80 * log_sd)
    return CostResult(
        value=value,
        low=value / spread,
        high=value * spread,
        cost_basis=product.cost_basis,
        quality_factor=quality,
        obsolescence=obsolescence,
        terms_factor=terms_factor,
        log_sd=log_sd,
    )


def income_approach(inputs: IncomeInputs) -> IncomeResult:
    """Discounted attributable cash flows, end-of-year convention.

    >>> round(income_approach(IncomeInputs((110.0, 121.0), 0.10)).value, 6)
    200.0
    """
    present = tuple(
        inputs.attribution * flow / (1 + inputs.discount_rate) ** year
        for year, flow in enumerate(inputs.annual_cash_flows, start=1)
    )
    return IncomeResult(
        value=sum(present),
        present_values=present,
        discount_rate=inputs.discount_rate,
        attribution=inputs.attribution,
    )
