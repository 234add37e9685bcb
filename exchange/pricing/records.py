"""Plain records the valuation maths works on: products, licence terms, trades, targets, books.

They carry no behaviour beyond validation and come from anywhere: the exchange's catalogue and
tape (through the adapters at the end of this module), or a researcher's CSV files
(``exchange.pricing.csvio``). Nothing here reads the exchange's state.

Money in this package is a ``float`` in currency units (yuan, not fen). The exchange keeps
integer minor units because it does bookkeeping; valuation is statistics (logarithms, least
squares, weighted means), so it works in floats and the exchange converts at its edge
(``product_from_catalogue``, ``trade_from_tape``). Quality scores are floats in [0, 1] here,
where the catalogue keeps basis points.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from exchange.catalogue import (
    DataProduct,
    Exclusivity,
    LicenceTerms,
    Scope,
    Territory,
    UpdateFrequency,
)
from exchange.money import MINOR_DIGITS

__all__ = [
    "QUALITY_DIMENSIONS",
    "REFERENCE_TERMS",
    "BookSnapshot",
    "IncomeInputs",
    "ProductRecord",
    "TargetSpec",
    "TermsRecord",
    "TradeRecord",
    "product_from_catalogue",
    "terms_from_catalogue",
    "trade_from_tape",
]

QUALITY_DIMENSIONS = ("completeness", "accuracy", "timeliness", "consistency")
# Limits: a licence is at most 50 years, a product at most 10^15 records.
MAX_DURATION_MONTHS = 600
MAX_RECORD_COUNT = 10**15
MAX_COVERAGE_MONTHS = 12_000
MAX_BOOK_LEVELS = 1_000
MAX_INCOME_YEARS = 100
# The catalogue's units: basis points for quality, minor units (fen) for money.
_BASIS_POINTS = 10_000
_MINOR_PER_UNIT = 10**MINOR_DIGITS
_DAYS_PER_MONTH = 365.2425 / 12


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """A data product as the valuation sees it: category, region, scale, coverage, freshness,
    quality and cost. It need not be listed or traded: a target may be described only by
    these attributes.

    ``cost_basis`` is in currency units: the replacement cost of supplying one licence under
    the reference terms (``REFERENCE_TERMS``), which the cost approach starts from.
    """

    product_id: str
    category: str
    region: str
    record_count: int
    coverage_months: float
    update_frequency: UpdateFrequency
    completeness: float
    accuracy: float
    timeliness: float
    consistency: float
    cost_basis: float

    def quality(self) -> tuple[float, float, float, float]:
        """The four quality scores in ``QUALITY_DIMENSIONS`` order."""
        return (self.completeness, self.accuracy, self.timeliness, self.consistency)

    def problem(self) -> str | None:
        """What makes this record unusable, or None. The CSV reader and the public entry
        points call it, so the maths may assume valid records."""
        if not self.product_id:
            return "product_id is empty"
        if not self.category:
            return "category is empty"
        if not 1 <= self.record_count <= MAX_RECORD_COUNT:
            return f"record_count {self.record_count} is not in 1..{MAX_RECORD_COUNT}"
        if not (0 < self.coverage_months <= MAX_COVERAGE_MONTHS):
            return f"coverage_months {self.coverage_months} is not in (0, {MAX_COVERAGE_MONTHS}]"
        for name, score in zip(QUALITY_DIMENSIONS, self.quality(), strict=True):
            if not 0.0 <= score <= 1.0:
                return f"{name} {score} is not in [0, 1]"
        if not (math.isfinite(self.cost_basis) and self.cost_basis >= 0):
            return f"cost_basis {self.cost_basis} is not a non-negative number"
        return None


@dataclass(frozen=True, slots=True)
class TermsRecord:
    """Licence terms without ``transferable``, which the valuation does not price."""

    exclusivity: Exclusivity
    duration_months: int
    scope: Scope
    territory: Territory

    def problem(self) -> str | None:
        if not 1 <= self.duration_months <= MAX_DURATION_MONTHS:
            return f"duration_months {self.duration_months} is not in 1..{MAX_DURATION_MONTHS}"
        return None

    def label(self) -> str:
        """A short human label, e.g. ``non_exclusive 12m commercial domestic``."""
        return (
            f"{self.exclusivity.value} {self.duration_months}m {self.scope.value} "
            f"{self.territory.value}"
        )


# The terms the cost approach's ``cost_basis`` refers to, and the index's price level.
REFERENCE_TERMS = TermsRecord(Exclusivity.NON_EXCLUSIVE, 12, Scope.INTERNAL, Territory.DOMESTIC)


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One trade of a licence: ``price`` in currency units per licence, ``quantity`` in
    licences, on the day ``traded_at``."""

    trade_id: str
    product_id: str
    terms: TermsRecord
    price: float
    quantity: int
    traded_at: dt.date

    def problem(self) -> str | None:
        if not (math.isfinite(self.price) and self.price > 0):
            return f"price {self.price} is not a positive number"
        if self.quantity < 1:
            return f"quantity {self.quantity} is not a positive whole number"
        return self.terms.problem()


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """An order book's depth: ``(price, quantity)`` levels, best first, price in currency
    units per licence and quantity in licences."""

    bids: tuple[tuple[float, int], ...] = ()
    asks: tuple[tuple[float, int], ...] = ()

    def problem(self) -> str | None:
        if len(self.bids) > MAX_BOOK_LEVELS or len(self.asks) > MAX_BOOK_LEVELS:
            return f"a book side has more than {MAX_BOOK_LEVELS} levels"
        for side in (self.bids, self.asks):
            for price, quantity in side:
                if not (math.isfinite(price) and price > 0) or quantity < 0:
                    return f"book level ({price}, {quantity}) is not a positive price and size"
        return None


@dataclass(frozen=True, slots=True)
class IncomeInputs:
    """The income approach's inputs: the cash flows the licence is expected to bring, in
    currency units per year (year 1 first), the yearly discount rate, and the share of those
    cash flows attributable to the data (the guidance's profit-split ratio)."""

    annual_cash_flows: tuple[float, ...]
    discount_rate: float
    attribution: float = 1.0

    def problem(self) -> str | None:
        if not 1 <= len(self.annual_cash_flows) <= MAX_INCOME_YEARS:
            return f"income needs 1..{MAX_INCOME_YEARS} yearly cash flows"
        if not all(math.isfinite(flow) for flow in self.annual_cash_flows):
            return "income cash flows must be finite numbers"
        if not (math.isfinite(self.discount_rate) and -1 < self.discount_rate <= 10):
            return f"discount_rate {self.discount_rate} is not in (-1, 10]"
        if not 0 <= self.attribution <= 1:
            return f"attribution {self.attribution} is not in [0, 1]"
        return None


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """What to value: a product (listed or not) under licence terms on a date.

    ``book`` is the product's current order book under these terms when it is listed (it
    drives the supply-demand factor; None means neutral). ``income`` enables the income
    approach. ``exclude_own_trades`` leaves the product's own instruments out of the
    comparables (for back-tests; by default a listed product's own trades are its best
    evidence).
    """

    product: ProductRecord
    terms: TermsRecord
    as_of: dt.date
    book: BookSnapshot | None = None
    income: IncomeInputs | None = None
    exclude_own_trades: bool = False

    def problem(self) -> str | None:
        for part in (self.product, self.terms, self.book, self.income):
            problem = None if part is None else part.problem()
            if problem is not None:
                return problem
        return None


# ------------------------------------------------------------------ catalogue adapters


def terms_from_catalogue(terms: LicenceTerms) -> TermsRecord:
    """The catalogue's licence terms as a record (``transferable`` is not priced)."""
    return TermsRecord(terms.exclusivity, terms.duration_months, terms.scope, terms.territory)


def product_from_catalogue(product: DataProduct) -> ProductRecord:
    """A catalogue product as a record: quality from basis points to [0, 1], the cost basis
    from minor units to currency units, coverage months from the coverage dates (mean
    Gregorian months, at least one day's worth)."""
    start = dt.date.fromisoformat(product.coverage_start[:10])
    end = dt.date.fromisoformat(product.coverage_end[:10])
    coverage_months = max((end - start).days, 1) / _DAYS_PER_MONTH
    quality = product.quality
    return ProductRecord(
        product_id=product.product_id,
        category=product.category.value,
        region=product.region,
        record_count=max(product.record_count, 1),
        coverage_months=coverage_months,
        update_frequency=product.update_frequency,
        completeness=quality.completeness_bp / _BASIS_POINTS,
        accuracy=quality.accuracy_bp / _BASIS_POINTS,
        timeliness=quality.timeliness_bp / _BASIS_POINTS,
        consistency=quality.consistency_bp / _BASIS_POINTS,
        cost_basis=product.cost_basis_minor / _MINOR_PER_UNIT,
    )


def trade_from_tape(
    trade_id: int | str,
    product_id: str,
    terms: LicenceTerms | TermsRecord,
    price_minor: int,
    quantity_units: int,
    ts_ns: int,
) -> TradeRecord:
    """A trade from the exchange's tape (minor units, nanoseconds since the epoch, UTC) as a
    record in currency units on its UTC day."""
    record_terms = terms if isinstance(terms, TermsRecord) else terms_from_catalogue(terms)
    day = dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).date()
    return TradeRecord(
        str(trade_id), product_id, record_terms, price_minor / _MINOR_PER_UNIT, quantity_units, day
    )
