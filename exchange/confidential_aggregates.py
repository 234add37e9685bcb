"""k-anonymous aggregates of confidential trades, for price discovery before publication.

A confidential trade not yet published (or published only as a price band) never enters the
valuation or the category index on its own. It enters only through an aggregate: the trades
of one cell (category, region, licence terms, calendar month of the trade) pooled into one
synthetic trade of a synthetic product, and only once the month has ended and when the cell
holds at least :data:`MIN_TRADES` trades from at least :data:`MIN_SELLERS` distinct
sellers; a smaller cell is suppressed whole. The synthetic trade's price is the cell's
volume-weighted mean, its quantity the cell's units (each trade's capped as its publication
would cap it), its day the first of the month (no trade's own day); the synthetic product's
features are the trade-weighted means of the traded products' (the most frequent update
frequency). Its id,
``confidential-aggregate:<category>:<region>:<terms>:<month>``, names the aggregate
wherever it appears (a comparables table, the index's trades).

No noise is added: the rule protects by pooling alone (docs/confidential.md says what an
aggregate still tells).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Final

from exchange.catalogue import DataProduct, LicenceTerms
from exchange.confidential import ConfidentialTrade
from exchange.pricing import ProductRecord, TermsRecord, product_from_catalogue
from exchange.pricing.records import terms_from_catalogue

__all__ = [
    "AGGREGATE_PREFIX",
    "MIN_SELLERS",
    "MIN_TRADES",
    "Aggregate",
    "aggregates",
    "report_section",
]

# The rule: at least five trades from at least three sellers in a cell. Three sellers so
# that no seller learns another's price from the mean and its own (two would suffice for that
# against one rival); five trades so that one trade moves the mean by a fifth at most.
MIN_TRADES: Final = 5
MIN_SELLERS: Final = 3
AGGREGATE_PREFIX: Final = "confidential-aggregate:"


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One cell that meets the rule: a synthetic product and its one synthetic trade."""

    product: ProductRecord
    terms: TermsRecord
    month: dt.date  # its first day
    trades: int
    units: int
    price_minor: int  # volume-weighted mean, rounded down

    @property
    def aggregate_id(self) -> str:
        return self.product.product_id


def aggregates(
    trades: list[ConfidentialTrade],
    product_of: dict[str, DataProduct],
    terms_of: dict[str, LicenceTerms],
    now_ns: int,
) -> list[Aggregate]:
    """The cells of ``trades`` (confidential trades withheld from price discovery; their
    products and terms by symbol in ``product_of`` and ``terms_of``) that meet the rule, in
    cell order, of the months ended by ``now_ns``.

    Only ended months: a cell still open to new trades would let anyone who compares its
    mean and units before and after a trade work out that trade's price. An ended cell can
    only lose a trade, when it is published at its exact price, which is then public anyway.
    """
    this_month = _month(now_ns)
    cells: defaultdict[tuple[str, str, str, str], list[ConfidentialTrade]] = defaultdict(list)
    for trade in trades:
        product, terms = product_of[trade.symbol], terms_of[trade.symbol]
        month = _month(trade.ts_ns)
        if month >= this_month:
            continue
        label = terms_from_catalogue(terms).label().replace(" ", "-")
        key = (product.category.value, product.region, label, month.isoformat()[:7])
        cells[key].append(trade)
    found = []
    for key in sorted(cells):
        members = cells[key]
        if len(members) < MIN_TRADES or len({t.seller for t in members}) < MIN_SELLERS:
            continue
        # Each trade weighs its quantity as it would be published (capped): a trade that
        # leaves the cell when published at its exact price then shows in the difference
        # nothing its publication does not.
        shown = [min(t.quantity_units, t.quantity_cap_units) for t in members]
        units = sum(shown)
        notional = sum(t.price_minor * q for t, q in zip(members, shown, strict=True))
        records = [product_from_catalogue(product_of[t.symbol]) for t in members]
        log_scale = _mean([math.log(r.record_count) for r in records])
        category, region, label, month = key
        product = ProductRecord(
            product_id=f"{AGGREGATE_PREFIX}{category}:{region}:{label}:{month}",
            category=category,
            region=region,
            record_count=max(1, round(math.exp(log_scale))),
            coverage_months=_mean([r.coverage_months for r in records]),
            update_frequency=Counter(r.update_frequency for r in records).most_common(1)[0][0],
            completeness=_mean([r.completeness for r in records]),
            accuracy=_mean([r.accuracy for r in records]),
            timeliness=_mean([r.timeliness for r in records]),
            consistency=_mean([r.consistency for r in records]),
            cost_basis=_mean([r.cost_basis for r in records]),
        )
        terms = terms_from_catalogue(terms_of[members[0].symbol])
        found.append(Aggregate(product, terms, _month(members[0].ts_ns), len(members), units,
                               notional // units))  # fmt: skip
    return found


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _month(ts_ns: int) -> dt.date:
    day = dt.datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=dt.UTC).date()
    return day.replace(day=1)


def report_section(
    found: list[Aggregate], comparable_ids: list[str], category: str
) -> dict[str, Any]:
    """What a valuation report says of confidential trades: the rule, the aggregates among
    its comparables and the confidential trades they pool, and the aggregates of the
    target's category that the category index was fitted on."""
    by_id = {aggregate.aggregate_id: aggregate for aggregate in found}
    used = [by_id[product_id] for product_id in comparable_ids if product_id in by_id]
    in_index = [aggregate for aggregate in found if aggregate.product.category == category]
    return {
        "rule": {"min_trades": MIN_TRADES, "min_sellers": MIN_SELLERS},
        "comparables": [{"aggregate": a.aggregate_id, "trades": a.trades} for a in used],
        "trades_in_comparables": sum(a.trades for a in used),
        "index_aggregates": len(in_index),
        "trades_in_index": sum(a.trades for a in in_index),
    }
