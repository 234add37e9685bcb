"""The accuracy-versus-liquidity study: how well each approach recovers known true values as
the share of products that trade grows.

For each traded share, ``run_study`` generates a synthetic market (``synthetic.py``; the same
products at every share, seeded), prepares it on its last day, values every target with
``exchange.pricing.value`` and scores, against the true values:

- ``market``: the market approach's value and its own range, where it was applied;
- ``cost``: the cost approach, with its range;
- ``income``: the income approach, for the targets with cash-flow inputs (no range);
- ``reconciled``: the concluded value and its 80% range, what a user is given;
- ``naive``: the median trade price of the target's category, whatever the product and terms
  (the baseline any method must beat).

Per approach and share: the targets it valued, the median absolute error (in %), the share of
true values inside its 80% range, the median ratio value / true, and the coefficient of
dispersion (IAAO: the mean absolute deviation of the ratios from their median, in % of the
median). ``write_csv`` and ``write_chart`` (matplotlib, optional) record them.

**What confidential trading buys** (``confidential_share`` > 0): the generator then makes at
least that share of the trades confidential, the most valuable products' (``synthetic.py``),
and every share is valued once per use of them (``USES``), each a market of its own:

- ``public``: every confidential trade as if it had traded in public (the bound: what the
  market would know if owners traded their valuable data openly);
- ``none``: no confidential trade (a market that withholds them for good);
- ``published``: those published by the valuation date at an exact price, with their
  quantity capped as published; banded ones are left out, as the exchange leaves them out;
- ``aggregates``: none individually, all through the k-anonymous aggregates of
  ``exchange.confidential_aggregates`` (its rule and cells, rebuilt here on records);
- ``published_and_aggregates``: the exchange's own policy, the published exact ones
  individually and the rest (unpublished, or banded) through aggregates.

Each use is scored on every target (``subset`` ``all``) and on the targets of the products
that trade only in confidence (``confidential``), whose own trades are what is at stake.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from exchange.confidential_aggregates import AGGREGATE_PREFIX, MIN_SELLERS, MIN_TRADES
from exchange.pricing.prepare import prepare_market
from exchange.pricing.records import ProductRecord, TradeRecord
from exchange.pricing.synthetic import (
    ConfidentialRecord,
    SyntheticMarket,
    generate_market,
    synthetic_problem,
)
from exchange.pricing.valuation import value
from exchange.publication import DEFAULT_POLICY

__all__ = [
    "APPROACHES",
    "DEFAULT_SHARES",
    "STUDY_COLUMNS",
    "USES",
    "StudyRow",
    "run_study",
    "study_problem",
    "write_chart",
    "write_confidential_chart",
    "write_csv",
]

APPROACHES = ("market", "cost", "income", "reconciled", "naive")
DEFAULT_SHARES = (0.02, 0.05, 0.10, 0.20, 0.40, 0.60)
# Limit: shares in one study.
MAX_SHARES = 50
STUDY_COLUMNS = (
    "seed", "products", "traded_share", "trades", "approach", "targets_valued",
    "median_abs_error_pct", "coverage_80_pct", "median_ratio", "cod",
    "confidential_share", "confidential_use", "subset", "confidential_trades",
    "confidential_used",
)  # fmt: skip
USES = ("public", "none", "published", "aggregates", "published_and_aggregates")
SUBSETS = ("all", "confidential")


@dataclass(frozen=True, slots=True)
class StudyRow:
    """One approach at one traded share (and, with confidential trading, one use of the
    confidential trades and one subset of the targets: ``confidential_used`` of the market's
    ``confidential_trades`` entered it, individually or pooled). ``coverage_80_pct`` is NaN
    for an approach without a range; every figure is NaN when the approach valued no target."""

    seed: int
    products: int
    traded_share: float
    trades: int
    approach: str
    targets_valued: int
    median_abs_error_pct: float
    coverage_80_pct: float
    median_ratio: float
    cod: float
    confidential_share: float = 0.0
    confidential_use: str = ""
    subset: str = "all"
    confidential_trades: int = 0
    confidential_used: int = 0

    def csv_row(self) -> list[str]:
        def number(x: float, digits: int) -> str:
            return "" if math.isnan(x) else f"{x:.{digits}f}"

        return [
            str(self.seed), str(self.products), f"{self.traded_share:g}", str(self.trades),
            self.approach, str(self.targets_valued), number(self.median_abs_error_pct, 2),
            number(self.coverage_80_pct, 1), number(self.median_ratio, 4), number(self.cod, 2),
            f"{self.confidential_share:g}", self.confidential_use, self.subset,
            str(self.confidential_trades), str(self.confidential_used),
        ]  # fmt: skip


def study_problem(
    products: int, shares: Sequence[float], targets: int, confidential_share: float = 0.0
) -> str | None:
    """What makes a study impossible, or None."""
    if not shares:
        return "no traded shares given"
    if len(shares) > MAX_SHARES:
        return f"at most {MAX_SHARES} traded shares"
    for share in shares:
        problem = synthetic_problem(products, share, targets, confidential_share)
        if problem is not None:
            return problem
    return None


def _score(
    estimates: list[float],
    truths: list[float],
    ranges: list[tuple[float, float]] | None,
) -> tuple[float, float, float, float]:
    """Median absolute error %, coverage %, median ratio, COD; NaN when empty."""
    if not estimates:
        return (math.nan, math.nan, math.nan, math.nan)
    ratio = np.array(estimates) / np.array(truths)
    median_ratio = float(np.median(ratio))
    cod = 100 * float(np.mean(np.abs(ratio - median_ratio))) / median_ratio
    coverage = math.nan
    if ranges is not None:
        inside = [low <= t <= high for (low, high), t in zip(ranges, truths, strict=True)]
        coverage = 100 * float(np.mean(inside))
    return (100 * float(np.median(np.abs(ratio - 1))), coverage, median_ratio, cod)


def run_study(
    seed: int,
    products: int,
    shares: Iterable[float],
    targets: int,
    on_share: Callable[[float], None] | None = None,
    confidential_share: float = 0.0,
) -> list[StudyRow]:
    """The study's rows, share by share in the order given, then (with a
    ``confidential_share``) use by use in ``USES`` order and subset by subset, approaches in
    ``APPROACHES`` order. Raises ValueError for impossible parameters (``study_problem``).
    O(shares x uses x (prepare_market + targets valuations))."""
    share_list = list(shares)
    problem = study_problem(products, share_list, targets, confidential_share)
    if problem is not None:
        raise ValueError(problem)
    rows: list[StudyRow] = []
    for share in share_list:
        world = generate_market(seed, products, share, targets, confidential_share)
        if confidential_share == 0:
            rows.extend(_study_market(seed, share, world, list(world.products),
                                      list(world.trades), _Use("", 0, 0), ("all",)))  # fmt: skip
        for use in USES if confidential_share > 0 else ():
            extra, trades, used = _market_for(world, use)
            rows.extend(_study_market(
                seed, share, world, [*world.products, *extra], trades,
                _Use(use, len(world.confidential), used, confidential_share), SUBSETS,
            ))  # fmt: skip
        if on_share is not None:
            on_share(share)
    return rows


@dataclass(frozen=True, slots=True)
class _Use:
    """How a market used its confidential trades, for the rows."""

    name: str
    trades: int
    used: int
    share: float = 0.0


def _market_for(
    world: SyntheticMarket, use: str
) -> tuple[list[ProductRecord], list[TradeRecord], int]:
    """The synthetic aggregate products, the trades and the number of confidential trades
    entering them, for one use of the confidential trades (``USES``)."""
    public = list(world.trades)
    secret = world.confidential
    if use == "public":
        return [], public + [c.trade for c in secret], len(secret)
    if use == "none":
        return [], public, 0
    published = [c for c in secret if c.band is None and c.published_on <= world.as_of]
    shown = [_as_published(c.trade) for c in published]
    if use == "published":
        return [], public + shown, len(shown)
    product_of = {product.product_id: product for product in world.products}
    if use == "aggregates":
        extra, pooled, count = _aggregate(secret, product_of, world.as_of)
        return extra, public + pooled, count
    assert use == "published_and_aggregates", use
    shown_ids = {c.trade.trade_id for c in published}
    rest = [c for c in secret if c.trade.trade_id not in shown_ids]
    extra, pooled, count = _aggregate(rest, product_of, world.as_of)
    return extra, public + shown + pooled, len(shown) + count


def _as_published(trade: TradeRecord) -> TradeRecord:
    """The trade as its publication shows it: its quantity capped."""
    cap = DEFAULT_POLICY.quantity_cap_units
    return TradeRecord(trade.trade_id, trade.product_id, trade.terms, trade.price,
                       min(trade.quantity, cap), trade.traded_at)  # fmt: skip


def _aggregate(
    secret: Sequence[ConfidentialRecord], product_of: dict[str, ProductRecord], as_of: dt.date
) -> tuple[list[ProductRecord], list[TradeRecord], int]:
    """The k-anonymous aggregates of ``secret`` as ``exchange.confidential_aggregates``
    forms them, on records: cells (category, region, terms, month) of months ended by
    ``as_of`` with at least ``MIN_TRADES`` trades from ``MIN_SELLERS`` sellers, each one
    synthetic product (features averaged, scale geometrically) and one trade at the
    volume-weighted mean price of capped quantities, dated the first of the month. Returns
    the products, the trades and the confidential trades pooled."""
    this_month = as_of.replace(day=1)
    cells: dict[tuple[str, str, str, dt.date], list[ConfidentialRecord]] = {}
    for record in secret:
        month = record.trade.traded_at.replace(day=1)
        if month >= this_month:
            continue
        product = product_of[record.trade.product_id]
        key = (product.category, product.region, record.trade.terms.label(), month)
        cells.setdefault(key, []).append(record)
    products: list[ProductRecord] = []
    trades: list[TradeRecord] = []
    pooled = 0
    cap = DEFAULT_POLICY.quantity_cap_units
    for key in sorted(cells):
        members = cells[key]
        if len(members) < MIN_TRADES or len({m.seller for m in members}) < MIN_SELLERS:
            continue
        category, region, label, month = key
        records = [product_of[m.trade.product_id] for m in members]
        shown = [min(m.trade.quantity, cap) for m in members]
        units = sum(shown)
        price = math.fsum(m.trade.price * q for m, q in zip(members, shown, strict=True)) / units
        product_id = (
            f"{AGGREGATE_PREFIX}{category}:{region}:{label.replace(' ', '-')}:{month:%Y-%m}"
        )
        products.append(ProductRecord(
            product_id, category, region,
            max(1, round(math.exp(statistics.fmean(math.log(r.record_count) for r in records)))),
            statistics.fmean(r.coverage_months for r in records),
            Counter(r.update_frequency for r in records).most_common(1)[0][0],
            statistics.fmean(r.completeness for r in records),
            statistics.fmean(r.accuracy for r in records),
            statistics.fmean(r.timeliness for r in records),
            statistics.fmean(r.consistency for r in records),
            statistics.fmean(r.cost_basis for r in records),
        ))  # fmt: skip
        trades.append(TradeRecord(f"A{len(trades):07d}", product_id, members[0].trade.terms,
                                  price, units, month))  # fmt: skip
        pooled += len(members)
    return products, trades, pooled


def _study_market(
    seed: int,
    share: float,
    world: SyntheticMarket,
    products: list[ProductRecord],
    trades: list[TradeRecord],
    use: _Use,
    subsets: Sequence[str],
) -> list[StudyRow]:
    """Every approach's row at one traded share, on a market of ``products`` and
    ``trades``, for each subset of the targets."""
    market = prepare_market(products, trades, as_of=world.as_of)
    by_category: dict[str, list[float]] = {}
    category_of = {p.product_id: p.category for p in products}
    for trade in trades:
        by_category.setdefault(category_of[trade.product_id], []).append(trade.price)
    naive_of = {c: statistics.median(prices) for c, prices in by_category.items()}
    overall = statistics.median(t.price for t in trades)
    no_range = (math.nan, math.nan)
    collected: dict[tuple[str, str], list[tuple[float, float, tuple[float, float]]]] = {
        (subset, name): [] for subset in subsets for name in APPROACHES
    }
    for case in world.targets:
        report = value(market, case.target)
        truth = case.true_value
        found: dict[str, tuple[float, tuple[float, float]]] = {
            "cost": (report.cost.value, (report.cost.low, report.cost.high)),
            "reconciled": (report.value, (report.low, report.high)),
            "naive": (naive_of.get(case.target.product.category, overall), no_range),
        }
        if report.market_value is not None:
            assert report.market_low is not None and report.market_high is not None
            found["market"] = (report.market_value, (report.market_low, report.market_high))
        if report.income is not None:
            found["income"] = (report.income.value, no_range)
        secret = case.target.product.product_id in world.confidential_products
        for subset in subsets:
            if subset == "confidential" and not secret:
                continue
            for name, (estimate, bounds) in found.items():
                # A zero cost value still has a ratio to the truth.
                collected[subset, name].append((max(estimate, 1e-9), truth, bounds))
    rows: list[StudyRow] = []
    for subset, name in collected:
        cases = collected[subset, name]
        mdape, _, ratio, cod = _score([e for e, _, _ in cases], [t for _, t, _ in cases], None)
        ranged = [case for case in cases if not math.isnan(case[2][0])]
        coverage = _score(
            [e for e, _, _ in ranged], [t for _, t, _ in ranged], [r for *_, r in ranged]
        )[1]
        rows.append(
            StudyRow(seed, len(world.products), share, len(trades), name, len(cases), mdape,
                     coverage, ratio, cod, use.share, use.name, subset, use.trades, use.used)
        )  # fmt: skip
    return rows


def write_csv(rows: Sequence[StudyRow], file: IO[str]) -> None:
    """The rows as CSV with the ``STUDY_COLUMNS`` header, to a text file opened with
    ``newline=""``."""
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(STUDY_COLUMNS)
    writer.writerows(row.csv_row() for row in rows)


def write_chart(rows: Sequence[StudyRow], path: Path) -> None:
    """A PNG of the four measures against the traded share, one line per approach. Raises
    ImportError when matplotlib is not installed (it is optional: ``pip install
    matplotlib``)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the chart goes to a file
    import matplotlib.pyplot as plt

    panels = (
        ("median_abs_error_pct", "median absolute error (%)"),
        ("coverage_80_pct", "80% range covers the truth (%)"),
        ("median_ratio", "median value / true"),
        ("cod", "COD (%)"),
    )
    figure, axes = plt.subplots(2, 2, figsize=(11, 7.5), constrained_layout=True)
    for axis, (field, title) in zip(axes.flat, panels, strict=True):
        for number, name in enumerate(APPROACHES):
            points = [(100 * r.traded_share, getattr(r, field)) for r in rows
                      if r.approach == name and not math.isnan(getattr(r, field))]  # fmt: skip
            if points:
                # One colour per approach in every panel, whichever approaches it shows.
                axis.plot(*zip(*points, strict=True), marker="o", label=name, color=f"C{number}")
        if field == "coverage_80_pct":
            axis.axhspan(75, 88, color="0.9", label="target 75-88%")
        if field == "median_ratio":
            axis.axhspan(0.95, 1.05, color="0.9", label="target 0.95-1.05")
        axis.set_xscale("log")
        shares = sorted({100 * r.traded_share for r in rows})
        axis.set_xticks(shares, [f"{share:g}" for share in shares])
        axis.minorticks_off()
        axis.set_xlabel("share of products traded (%)")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    axes.flat[0].set_yscale("log")
    axes.flat[0].legend(fontsize=8)
    seed = rows[0].seed if rows else 0
    figure.suptitle(f"dataex value study: accuracy against liquidity (seed {seed})")
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_confidential_chart(rows: Sequence[StudyRow], path: Path) -> None:
    """A PNG of the concluded (``reconciled``) value's median absolute error and 80% range
    coverage against the traded share, one line per use of the confidential trades, on every
    target and on the targets that trade only in confidence. Raises ImportError without
    matplotlib."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the chart goes to a file
    import matplotlib.pyplot as plt

    panels = (
        ("all", "median_abs_error_pct", "median absolute error (%), every target"),
        ("all", "coverage_80_pct", "80% range covers the truth (%), every target"),
        ("confidential", "median_abs_error_pct",
         "median absolute error (%), products traded in confidence"),
        ("confidential", "coverage_80_pct",
         "80% range covers the truth (%), products traded in confidence"),
    )  # fmt: skip
    figure, axes = plt.subplots(2, 2, figsize=(11, 7.5), constrained_layout=True)
    for axis, (subset, field, title) in zip(axes.flat, panels, strict=True):
        for number, use in enumerate(USES):
            points = [(100 * r.traded_share, getattr(r, field)) for r in rows
                      if (r.approach, r.subset, r.confidential_use) == ("reconciled", subset, use)
                      and not math.isnan(getattr(r, field))]  # fmt: skip
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", label=use, color=f"C{number}")
        if field == "coverage_80_pct":
            axis.axhspan(75, 88, color="0.9", label="target 75-88%")
        axis.set_xscale("log")
        shares = sorted({100 * r.traded_share for r in rows})
        axis.set_xticks(shares, [f"{share:g}" for share in shares])
        axis.minorticks_off()
        axis.set_xlabel("share of products traded (%)")
        axis.set_title(title, fontsize=10)
        axis.grid(True, which="both", alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    seed = rows[0].seed if rows else 0
    confidential = rows[0].confidential_share if rows else 0.0
    figure.suptitle(f"dataex value study: {confidential:.0%} of trades confidential, the "
                    f"concluded value by use of them (seed {seed})")  # fmt: skip
    figure.savefig(path, dpi=110)
    plt.close(figure)
