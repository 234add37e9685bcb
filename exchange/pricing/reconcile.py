"""Reconciliation: one concluded value from the three approaches, and why they differ.

The market approach is concluded whenever it has at least three comparables: it rests on
prices buyers paid. Otherwise the cost approach is (``cost_fallback``). The income approach
is never concluded on its own, because it rests on the user's forecasts, but it is compared.

Explaining the gap between market and cost: across the category's traded instruments, the
market reports how prices relate to their own cost-approach values (median and quartiles of
price / cost value). If the target's market-to-cost ratio lies inside that interquartile
range, the gap is the category's usual premium (or discount) of use value over replacement
cost; outside it, something particular to the target (its comparables, or its cost basis)
drives it, and the reconciliation says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange.pricing.cost_income import CostResult, IncomeResult
from exchange.pricing.market_approach import MarketApproachResult

__all__ = ["METHOD_COST_FALLBACK", "METHOD_MARKET", "Reconciliation", "reconcile"]

METHOD_MARKET = "market"
METHOD_COST_FALLBACK = "cost_fallback"


@dataclass(frozen=True, slots=True)
class Reconciliation:
    method: str
    concluded_value: float
    market_value: float | None
    cost_value: float
    income_value: float | None
    market_to_cost: float | None
    category_market_to_cost: tuple[float, float, float, int] | None  # q1, median, q3, count
    explanation: tuple[str, ...]


def _pct(a: float, b: float) -> str:
    return f"{(a / b - 1):+.0%}" if b > 0 else "n/a"


def reconcile(
    comparison: MarketApproachResult,
    cost: CostResult,
    income: IncomeResult | None,
    category_ratio: tuple[float, float, float, int] | None,
) -> Reconciliation:
    """Conclude a value and explain, in sentences, how the approaches compare.
    ``comparison`` is the market approach's result (appraisal's sales comparison)."""
    lines: list[str] = []
    if comparison.value is not None:
        method, concluded = METHOD_MARKET, comparison.value
        lines.append(
            f"Concluded on the market approach: {len(comparison.comparables)} comparables "
            f"(effectively {comparison.effective_comparables:.1f} independent products) give "
            f"{comparison.value:,.2f}; it rests on prices buyers paid."
        )
    else:
        method, concluded = METHOD_COST_FALLBACK, cost.value
        lines.append(
            f"Only {len(comparison.found)} comparable(s) found (at least 3 are needed), so the "
            f"market approach is not applied and the cost approach ({cost.value:,.2f}) is "
            "concluded. Its range reflects how far this category's prices stray from their "
            f"cost values (log sd {cost.log_sd:.2f})."
        )
    ratio = None
    if comparison.value is not None and cost.value > 0:
        ratio = comparison.value / cost.value
        text = (
            f"The market approach is {_pct(comparison.value, cost.value)} against the cost "
            f"approach ({cost.value:,.2f} = cost basis {cost.cost_basis:,.2f} x quality "
            f"{cost.quality_factor:.2f} x (1 - obsolescence {cost.obsolescence:.0%}) x terms "
            f"{cost.terms_factor:.2f}): market / cost = {ratio:.2f}."
        )
        if category_ratio is not None:
            q1, median, q3, count = category_ratio
            where = (
                "inside that range: the usual gap in this category between what the data "
                "costs to rebuild and what its use is worth to buyers"
                if q1 <= ratio <= q3
                else "outside that range: the gap is particular to this target (its "
                "comparables' prices or its own cost basis), not the category's norm"
            )
            text += (
                f" Across {count} traded instruments of the category, prices run at a median "
                f"{median:.2f} x their cost values (interquartile {q1:.2f}-{q3:.2f}); this "
                f"ratio is {where}."
            )
        lines.append(text)
    elif cost.value <= 0:
        lines.append("The cost approach gives 0: the product's cost basis is 0.")
    if income is not None:
        reference = comparison.value if comparison.value is not None else cost.value
        name = "market" if comparison.value is not None else "cost"
        lines.append(
            f"The income approach gives {income.value:,.2f} ({_pct(income.value, reference)} "
            f"against the {name} approach) from {len(income.present_values)} years of "
            f"supplied cash flows at {income.discount_rate:.1%}, {income.attribution:.0%} "
            "attributed to the data; a gap means the forecast implies more (or less) than "
            "buyers currently pay. It is not concluded because it rests on forecasts."
        )
    else:
        lines.append("No cash-flow inputs were given, so the income approach was not applied.")
    return Reconciliation(
        method=method,
        concluded_value=concluded,
        market_value=comparison.value,
        cost_value=cost.value,
        income_value=None if income is None else income.value,
        market_to_cost=ratio,
        category_market_to_cost=category_ratio,
        explanation=tuple(lines),
    )
