"""The valuation report: the value, its range and expected error, the comparables table with
every factor, weight and flag, the parameters used, the three approaches and the method notes;
as a dataclass and as JSON (``to_json``); ``exchange.pricing.report_html.render_report`` makes
it a self-contained HTML page.

Invariant (``check_invariants``): with the market approach, the comparables' contributions
add up to the market value and the weights to 1; the range contains the value; the
reconciliation's weights sum to 1.

The subject's own trades are comparables like any other in the table (marked ``own``) and
have their own section (``own_trades``: their instruments, prices, adjustments and their
share of the market approach's weight).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from exchange.pricing.calibration import ParameterEstimate
from exchange.pricing.cost_income import CostResult, IncomeResult
from exchange.pricing.market_approach import AdjustedComparable
from exchange.pricing.reconcile import METHOD_MARKET, Reconciliation
from exchange.pricing.records import ProductRecord, TermsRecord

__all__ = ["ValuationReport"]


@dataclass(frozen=True, slots=True)
class ValuationReport:
    """One valuation. Money is in currency units per licence (floats; see ``records``).

    ``method`` is ``market`` or ``cost_fallback``; ``value``, ``low``, ``high`` and
    ``expected_error_pct`` are the reconciliation's (the approaches weighed by precision).
    ``market_value`` and the market approach's own range (``market_low``, ``market_high``)
    are None under the fallback. ``comparables`` is the table the market
    value is the sum of (empty under the fallback, when ``notes`` name the comparables that
    were found).
    """

    product: ProductRecord
    terms: TermsRecord
    as_of: dt.date
    method: str
    value: float
    low: float
    high: float
    expected_error_pct: float
    market_value: float | None
    market_low: float | None
    market_high: float | None
    candidates: int
    comparables: tuple[AdjustedComparable, ...]
    effective_comparables: float | None
    supply_demand_factor: float
    parameters: tuple[ParameterEstimate, ...]
    cost: CostResult
    income: IncomeResult | None
    reconciliation: Reconciliation
    notes: tuple[str, ...]
    flags: tuple[str, ...]

    @property
    def n_comparables(self) -> int:
        return len(self.comparables)

    def check_invariants(self) -> None:
        """Assert that the table adds up and the range contains the value."""
        assert self.low <= self.value <= self.high, (self.low, self.value, self.high)
        if self.method == METHOD_MARKET:
            assert self.market_value is not None
            total = math.fsum(row.contribution for row in self.comparables)
            assert math.isclose(total, self.market_value, rel_tol=1e-9), total
            weights = math.fsum(row.weight for row in self.comparables)
            assert math.isclose(weights, 1.0, rel_tol=1e-9), weights
            for row in self.comparables:
                product = math.prod(row.factors.values())
                assert math.isclose(product, row.total_factor, rel_tol=1e-9)
                assert math.isclose(row.comparable.price * row.total_factor, row.adjusted_price)
        else:
            assert not self.comparables
        assert math.isclose(math.fsum(self.reconciliation.weights.values()), 1.0, rel_tol=1e-9)

    @property
    def own_trades(self) -> tuple[AdjustedComparable, ...]:
        """The rows of the comparables table that are the subject's own instruments."""
        return tuple(row for row in self.comparables if row.comparable.own)

    def own_trades_dict(self) -> dict[str, Any]:
        """The own-trades section: the subject's instruments, their trades in the window and
        their share of the market approach's weight."""
        rows = self.own_trades
        return {
            "instruments": len(rows),
            "trades": sum(row.comparable.trades for row in rows),
            "weight": math.fsum(row.weight for row in rows),
            "comparables": [_comparable_dict(row) for row in rows],
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values: dates as ISO strings, enums as their values."""
        return {
            "product": _plain(self.product),
            "terms": _plain(self.terms),
            "as_of": self.as_of.isoformat(),
            "method": self.method,
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "expected_error_pct": self.expected_error_pct,
            "market_value": self.market_value,
            "market_low": self.market_low,
            "market_high": self.market_high,
            "n_comparables": self.n_comparables,
            "candidates": self.candidates,
            "effective_comparables": self.effective_comparables,
            "supply_demand_factor": self.supply_demand_factor,
            "comparables": [_comparable_dict(row) for row in self.comparables],
            "own_trades": self.own_trades_dict(),
            "parameters": [_plain(estimate) for estimate in self.parameters],
            "cost_approach": _plain(self.cost),
            "income_approach": None if self.income is None else _plain(self.income),
            "reconciliation": _plain(self.reconciliation),
            "notes": list(self.notes),
            "flags": list(self.flags),
        }

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode()


def _comparable_dict(row: AdjustedComparable) -> dict[str, Any]:
    comparable = row.comparable
    return {
        "rank": row.rank,
        "product_id": comparable.product_id,
        "own": comparable.own,
        "terms": _plain(comparable.terms),
        "region": row.product.region,
        "record_count": row.product.record_count,
        "price": comparable.price,
        "price_date": comparable.price_date.isoformat(),
        "last_trade_date": comparable.last_trade_date.isoformat(),
        "trades": comparable.trades,
        "units": comparable.units,
        "similarity": comparable.similarity,
        "similarity_parts": comparable.similarity_parts,
        "factors": row.factors,
        "total_factor": row.total_factor,
        "adjusted_price": row.adjusted_price,
        "weight_parts": row.weight_parts,
        "weight": row.weight,
        "contribution": row.contribution,
        "flags": list(row.flags),
    }


def _plain(value: Any) -> Any:
    """A dataclass, tuple, enum or date as plain JSON values, recursively."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
