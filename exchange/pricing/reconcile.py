"""Reconciliation: one concluded value from the three approaches, and why they differ.

The China Appraisal Society's guidance on data-asset appraisal (2023) allows an appraiser to
weigh the results of several approaches rather than pick one. The concluded value weighs, in
logs, the market approach (when it has at least three comparables, the subject's own trades
counted) and the *market-calibrated cost* (the cost approach times its category's premium of
price over cost value, partially pooled: ``Market.cost``) by their measured precisions
(1 / variance): the market approach's back-tested standard error, and the calibrated cost's
log sd measured on the category's traded instruments. The weights follow the evidence, so the
value moves smoothly as trades arrive: a market approach on three distant comparables counts
little against the cost, one on the subject's own trades almost entirely. The concluded
range is the combined one, ``exp(+-z / sqrt(sum of precisions))`` (``method = market``).
Without three comparables the calibrated cost alone is concluded (``cost_fallback``); with
too few priced instruments to calibrate it, the plain cost approach and its range.

The income approach is compared but not weighed: it rests on the user's forecasts, whose
error the market cannot measure.

Explaining the gap between market and cost: across the category's traded instruments, the
market reports how prices relate to their own cost-approach values (median and quartiles of
price / cost value). If the target's market-to-cost ratio lies inside that interquartile
range, the gap is the category's usual premium (or discount) of use value over replacement
cost; outside it, something particular to the target (its comparables, or its cost basis)
drives it, and the reconciliation says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from exchange.pricing.cost_income import CostResult, IncomeResult
from exchange.pricing.market_approach import Z_50, Z_80, MarketApproachResult

__all__ = ["METHOD_COST_FALLBACK", "METHOD_MARKET", "Reconciliation", "reconcile"]

METHOD_MARKET = "market"
METHOD_COST_FALLBACK = "cost_fallback"


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The concluded value and its 80% range (``low``, ``high``; ``log_se`` in logs), the
    approaches' weights (``weights``: approach -> share, summing to 1), the market-calibrated
    cost (None when it could not be calibrated), and the explanation in sentences."""

    method: str
    concluded_value: float
    low: float
    high: float
    log_se: float
    expected_error_pct: float
    weights: dict[str, float]
    calibrated_cost_value: float | None
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
    cost_premium: tuple[float, float] | None = None,
    *,
    cost_scale: float = 1.0,
    reconciled_scale: float = 1.0,
) -> Reconciliation:
    """Conclude a value and its range and explain, in sentences, how the approaches compare.
    ``comparison`` is the market approach's result (appraisal's sales comparison);
    ``cost_premium`` the category's (log premium of price over cost value, log sd of the
    calibrated cost), or None when the market cannot calibrate the cost; ``cost_scale`` and
    ``reconciled_scale`` are the back-test's (``exchange.pricing.interval``) for the
    calibrated cost's log sd and for the combined se."""
    lines: list[str] = []
    # (log value, log sd) of each approach the conclusion weighs.
    evidence: dict[str, tuple[float, float]] = {}
    calibrated = None
    if cost.value > 0 and cost_premium is not None:
        log_premium, log_sd = cost_premium
        calibrated = cost.value * math.exp(log_premium)
        evidence["cost"] = (math.log(calibrated), cost_scale * log_sd)
    if comparison.value is not None:
        assert comparison.log_se is not None
        evidence["market"] = (math.log(comparison.value), comparison.log_se)
    if evidence:
        precision = {name: sd**-2 for name, (_, sd) in evidence.items()}
        total = math.fsum(precision.values())
        weights = {name: p / total for name, p in precision.items()}
        log_value = math.fsum(weights[name] * x for name, (x, _) in evidence.items())
        concluded, log_se = math.exp(log_value), reconciled_scale * total**-0.5
        low, high = concluded * math.exp(-Z_80 * log_se), concluded * math.exp(Z_80 * log_se)
    else:
        weights = {"cost": 1.0}
        concluded, log_se, low, high = cost.value, cost.log_sd, cost.low, cost.high
    if comparison.value is not None:
        method = METHOD_MARKET
        lines.append(
            f"Market approach: {len(comparison.comparables)} comparables (effectively "
            f"{comparison.effective_comparables:.1f} independent products) give "
            f"{comparison.value:,.2f}; it rests on prices buyers paid."
        )
    else:
        method = METHOD_COST_FALLBACK
        lines.append(
            f"Only {len(comparison.found)} comparable(s) found (at least 3 are needed, the "
            "subject's own instruments counted), so the market approach is not applied and "
            "the cost approach is concluded."
        )
    if calibrated is not None:
        lines.append(
            f"Market-calibrated cost: the cost approach's {cost.value:,.2f} x the category's "
            f"premium of traded prices over their cost values ({calibrated / cost.value:.2f}, "
            f"partially pooled with the other categories) = {calibrated:,.2f}, log sd "
            f"{evidence['cost'][1]:.2f}."
        )
    if len(weights) > 1:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in weights.items())
        lines.append(
            f"Concluded {concluded:,.2f} by weighing the approaches by their measured "
            f"precision ({shares}), as the CAS guidance on data-asset appraisal (2023) allows: "
            "each weight is 1 / variance, the market approach's from its back-tested standard "
            "error, the calibrated cost's from how far this category's prices lie from their "
            "calibrated cost values."
        )
    elif calibrated is None and comparison.value is None:
        lines.append(
            f"Too few priced instruments to calibrate the cost to the market: the plain cost "
            f"approach ({cost.value:,.2f}) is concluded, its range from the default or measured "
            f"dispersion of prices around cost values (log sd {cost.log_sd:.2f})."
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
        low=low,
        high=high,
        log_se=log_se,
        expected_error_pct=100 * math.expm1(Z_50 * log_se),
        weights=weights,
        calibrated_cost_value=calibrated,
        market_value=comparison.value,
        cost_value=cost.value,
        income_value=None if income is None else income.value,
        market_to_cost=ratio,
        category_market_to_cost=category_ratio,
        explanation=tuple(lines),
    )
