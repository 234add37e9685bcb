"""Valuing one target on a prepared market: comparables, market approach, cost and income
approaches, reconciliation, and the report with its method notes.

A pure function of the market and the target (the market's per-date cache aside).
"""

from __future__ import annotations

from collections.abc import Iterable

from exchange.pricing.comparables import (
    MAX_COMPARABLES,
    MAX_INSTRUMENTS_PER_PRODUCT,
    MIN_COMPARABLES,
    MIN_SIMILARITY,
    find_comparables,
)
from exchange.pricing.cost_income import cost_approach, income_approach
from exchange.pricing.factors import FACTOR_FLAG_LIMIT, TOTAL_FLAG_LIMIT
from exchange.pricing.market import COMPARABLE_WINDOW_DAYS, Market
from exchange.pricing.market_approach import (
    RECENCY_HALF_LIFE_DAYS,
    MarketApproachResult,
    market_approach,
)
from exchange.pricing.prepare import prepare_market
from exchange.pricing.reconcile import reconcile
from exchange.pricing.records import ProductRecord, TargetSpec, TradeRecord
from exchange.pricing.report import ValuationReport

__all__ = ["value", "value_once"]

# Limit: comparables per valuation.
MAX_COMPARABLES_LIMIT = 100


def value(
    market: Market, target: TargetSpec, *, max_comparables: int = MAX_COMPARABLES
) -> ValuationReport:
    """Value ``target`` on ``market``. Raises ValueError for an invalid target.

    After ``prepare_market``, O(instruments of the target's category) plus O(comparables).
    """
    problem = target.problem()
    if problem is not None:
        raise ValueError(f"target {target.product.product_id!r}: {problem}")
    if not MIN_COMPARABLES <= max_comparables <= MAX_COMPARABLES_LIMIT:
        raise ValueError(f"max_comparables must be in {MIN_COMPARABLES}..{MAX_COMPARABLES_LIMIT}")
    calibration = market.calibration
    category = target.product.category
    parameters = calibration.parameters_for(category)
    comparables, candidates = find_comparables(market, target, max_comparables)
    comparable_products = [market.products.records[market.instruments.product[c.instrument_row]]
                           for c in comparables]  # fmt: skip
    comparison = market_approach(
        target,
        comparables,
        comparable_products,
        candidates,
        parameters,
        calibration.index,
        calibration.residuals.between(category),
        calibration.residuals.within_var,
        market.range.scale,
        calibration.covariance_for(category),
    )
    cost = cost_approach(target.product, target.terms, parameters, market.cost.log_sd_for(category))
    income = None if target.income is None else income_approach(target.income)
    reconciliation = reconcile(
        comparison,
        cost,
        income,
        market.cost.ratio_quartiles.get(category),
        market.cost.premium_for(category),
        cost_scale=market.range.cost_scale,
        reconciled_scale=market.range.reconciled_scale,
    )
    flags = tuple(
        f"#{row.rank} {row.comparable.product_id}: {flag}"
        for row in comparison.comparables
        for flag in row.flags
    )
    return ValuationReport(
        product=target.product,
        terms=target.terms,
        as_of=target.as_of,
        method=reconciliation.method,
        value=reconciliation.concluded_value,
        low=reconciliation.low,
        high=reconciliation.high,
        expected_error_pct=reconciliation.expected_error_pct,
        market_value=comparison.value,
        market_low=comparison.low,
        market_high=comparison.high,
        candidates=candidates,
        comparables=comparison.comparables,
        effective_comparables=comparison.effective_comparables,
        supply_demand_factor=comparison.supply_demand,
        parameters=calibration.estimates_for(category),
        cost=cost,
        income=income,
        reconciliation=reconciliation,
        notes=tuple(_notes(market, target, comparison, candidates)),
        flags=flags,
    )


def _notes(
    market: Market, target: TargetSpec, result: MarketApproachResult, candidates: int
) -> list[str]:
    calibration = market.calibration
    residuals = calibration.residuals
    index = calibration.index
    notes = [
        f"Comparables: instruments of category {target.product.category!r} traded on or before "
        f"{target.as_of.isoformat()} ({candidates} candidates), ranked by similarity of region, "
        "scale, coverage, freshness, quality and licence terms; at most "
        f"{MAX_INSTRUMENTS_PER_PRODUCT} per product, similarity at least {MIN_SIMILARITY}. A "
        f"comparable's price is its VWAP over the {COMPARABLE_WINDOW_DAYS} days to its last "
        "trade, dated at the window's volume-weighted mean day.",
        "Value = sum of weight x price x factors (date, volume, quality, exclusivity, duration, "
        "scope, territory, freshness, coverage, region, supply-demand); weight ~ similarity x "
        f"recency (half-life {RECENCY_HALF_LIFE_DAYS} days) x volume (trades / (trades + "
        "within/between residual variance)) x adjustment (exp(-gross adjustment), the sum of "
        "|log factor| over the factors but date and supply-demand), normalised. Volume, "
        "coverage and quality follow calibrated curves (power laws that may bend at quantile "
        "knots).",
        f"Flags: any single factor beyond +-{FACTOR_FLAG_LIMIT:.0%}, any total beyond "
        f"+-{TOTAL_FLAG_LIMIT:.0%}.",
        "Date factor: hedonic time-dummy index of the category (log price regressed on "
        "category x period levels with product and terms controls, random-walk smoothing "
        f"between periods), {index.period_months}-month periods, flat beyond the data.",
        f"Calibration: {calibration.note}. Parameters marked 'default' or 'shrunk' lean on "
        "the documented priors because the trades say little about them.",
        "Range: an 80% interval, value x exp(+-1.2816 se), se = scale x sqrt(the category's "
        "between-product variance of leave-one-out residuals "
        f"({residuals.between(target.product.category) ** 0.5:.3f} log sd) + the weighted "
        "dispersion of the adjusted prices / (effective comparables - 1)); "
        f"{market.range.note()}.",
    ]
    if result.value is None:
        found = ", ".join(
            f"{c.product_id} ({c.terms.label()}, {c.price:,.2f})" for c in result.found
        )
        notes.append(
            f"Fewer than {MIN_COMPARABLES} comparables: the cost approach is used instead"
            + (f"; found: {found}." if found else "; none found.")
        )
    if target.book is None:
        notes.append("No order book given: the supply-demand factor is neutral (1.0).")
    if market.as_of > target.as_of:
        notes.append(
            f"The market was prepared on {market.as_of.isoformat()}, after the valuation date: "
            "the comparables exclude later trades, but the index and calibration saw them."
        )
    if target.as_of > market.as_of:
        notes.append(
            f"The valuation date is after the market's last data ({market.as_of.isoformat()}): "
            "the index is held flat from there."
        )
    return notes


def value_once(
    products: Iterable[ProductRecord], trades: Iterable[TradeRecord], target: TargetSpec
) -> ValuationReport:
    """Prepare a market on ``target.as_of`` and value ``target`` on it: the convenient call
    for a single valuation (many valuations should share one ``prepare_market``)."""
    return value(prepare_market(products, trades, as_of=target.as_of), target)
