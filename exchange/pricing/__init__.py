"""Price discovery and valuation of data-product licences, over plain records.

Nothing here reads the exchange's state: the service (or a researcher's CSV files) hands in
records and gets values back. Money is a float in currency units (see ``records``).

Price discovery::

    last_price(tape), vwap(tape, start_ns, end_ns), vwap_windows(tape, now_ns, windows_ns)
    ohlcv_bars(tape, interval_ns, origin_ns=0, fill_empty=False) -> list[Bar]
    mid_price(bids, asks), book_imbalance(bids, asks, max_levels=5)

Valuation::

    market = prepare_market(products, trades, as_of=None)   # once; calibrates, indexes
    report = value(market, TargetSpec(product, terms, as_of, book=None, income=None))
    report.to_json(); render_report(report); report.check_invariants()
    find_comparables(market, target, limit=10) -> (list[Comparable], candidates)
    market.index_points(category) -> list[IndexPoint]     # the category's price index
    market.calibration.estimates                           # the parameters and their source

Adapters from the exchange: ``product_from_catalogue``, ``terms_from_catalogue``,
``trade_from_tape``.
"""

from exchange.pricing.bars import Bar, last_price, ohlcv_bars, vwap, vwap_windows
from exchange.pricing.book import book_imbalance, depth_units, mid_price
from exchange.pricing.calibration import Calibration, ParameterEstimate, ResidualStats
from exchange.pricing.comparables import (
    MAX_COMPARABLES,
    MIN_COMPARABLES,
    Comparable,
    find_comparables,
)
from exchange.pricing.cost_income import CostResult, IncomeResult, cost_approach, income_approach
from exchange.pricing.factors import DEFAULT_PARAMETERS, FACTOR_NAMES, FactorParameters
from exchange.pricing.index import IndexPoint, PriceIndex
from exchange.pricing.market import Market
from exchange.pricing.market_approach import AdjustedComparable, MarketApproachResult
from exchange.pricing.prepare import prepare_market
from exchange.pricing.reconcile import METHOD_COST_FALLBACK, METHOD_MARKET, Reconciliation
from exchange.pricing.records import (
    REFERENCE_TERMS,
    BookSnapshot,
    IncomeInputs,
    ProductRecord,
    TargetSpec,
    TermsRecord,
    TradeRecord,
    product_from_catalogue,
    terms_from_catalogue,
    trade_from_tape,
)
from exchange.pricing.report import ValuationReport
from exchange.pricing.report_html import render_report
from exchange.pricing.valuation import value, value_once

__all__ = [
    "DEFAULT_PARAMETERS",
    "FACTOR_NAMES",
    "MAX_COMPARABLES",
    "METHOD_COST_FALLBACK",
    "METHOD_MARKET",
    "MIN_COMPARABLES",
    "REFERENCE_TERMS",
    "AdjustedComparable",
    "Bar",
    "BookSnapshot",
    "Calibration",
    "Comparable",
    "CostResult",
    "FactorParameters",
    "IncomeInputs",
    "IncomeResult",
    "IndexPoint",
    "Market",
    "MarketApproachResult",
    "ParameterEstimate",
    "PriceIndex",
    "ProductRecord",
    "Reconciliation",
    "ResidualStats",
    "TargetSpec",
    "TermsRecord",
    "TradeRecord",
    "ValuationReport",
    "book_imbalance",
    "cost_approach",
    "depth_units",
    "find_comparables",
    "income_approach",
    "last_price",
    "mid_price",
    "ohlcv_bars",
    "prepare_market",
    "product_from_catalogue",
    "render_report",
    "terms_from_catalogue",
    "trade_from_tape",
    "value",
    "value_once",
    "vwap",
    "vwap_windows",
]
