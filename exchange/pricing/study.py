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
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from exchange.pricing.prepare import prepare_market
from exchange.pricing.synthetic import generate_market, synthetic_problem
from exchange.pricing.valuation import value

__all__ = [
    "APPROACHES",
    "DEFAULT_SHARES",
    "STUDY_COLUMNS",
    "StudyRow",
    "run_study",
    "study_problem",
    "write_chart",
    "write_csv",
]

APPROACHES = ("market", "cost", "income", "reconciled", "naive")
DEFAULT_SHARES = (0.02, 0.05, 0.10, 0.20, 0.40, 0.60)
# Limit: shares in one study.
MAX_SHARES = 50
STUDY_COLUMNS = (
    "seed", "products", "traded_share", "trades", "approach", "targets_valued",
    "median_abs_error_pct", "coverage_80_pct", "median_ratio", "cod",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class StudyRow:
    """One approach at one traded share. ``coverage_80_pct`` is NaN for an approach without a
    range; every figure is NaN when the approach valued no target."""

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

    def csv_row(self) -> list[str]:
        def number(x: float, digits: int) -> str:
            return "" if math.isnan(x) else f"{x:.{digits}f}"

        return [
            str(self.seed), str(self.products), f"{self.traded_share:g}", str(self.trades),
            self.approach, str(self.targets_valued), number(self.median_abs_error_pct, 2),
            number(self.coverage_80_pct, 1), number(self.median_ratio, 4), number(self.cod, 2),
        ]  # fmt: skip


def study_problem(products: int, shares: Sequence[float], targets: int) -> str | None:
    """What makes a study impossible, or None."""
    if not shares:
        return "no traded shares given"
    if len(shares) > MAX_SHARES:
        return f"at most {MAX_SHARES} traded shares"
    for share in shares:
        problem = synthetic_problem(products, share, targets)
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
) -> list[StudyRow]:
    """The study's rows, share by share in the order given, approaches in ``APPROACHES``
    order. Raises ValueError for impossible parameters (``study_problem``). O(shares x
    (prepare_market + targets valuations))."""
    share_list = list(shares)
    problem = study_problem(products, share_list, targets)
    if problem is not None:
        raise ValueError(problem)
    rows: list[StudyRow] = []
    for share in share_list:
        rows.extend(_study_share(seed, products, share, targets))
        if on_share is not None:
            on_share(share)
    return rows


def _study_share(seed: int, products: int, share: float, targets: int) -> list[StudyRow]:
    """Every approach's row at one traded share."""
    world = generate_market(seed, products, share, targets)
    market = prepare_market(world.products, world.trades, as_of=world.as_of)
    by_category: dict[str, list[float]] = {}
    category_of = {p.product_id: p.category for p in world.products}
    for trade in world.trades:
        by_category.setdefault(category_of[trade.product_id], []).append(trade.price)
    naive_of = {c: statistics.median(prices) for c, prices in by_category.items()}
    overall = statistics.median(t.price for t in world.trades)
    no_range = (math.nan, math.nan)
    collected: dict[str, list[tuple[float, float, tuple[float, float]]]] = {
        name: [] for name in APPROACHES
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
        for name, (estimate, bounds) in found.items():
            # A zero cost value still has a ratio to the truth.
            collected[name].append((max(estimate, 1e-9), truth, bounds))
    rows: list[StudyRow] = []
    for name in APPROACHES:
        cases = collected[name]
        mdape, _, ratio, cod = _score([e for e, _, _ in cases], [t for _, t, _ in cases], None)
        ranged = [case for case in cases if not math.isnan(case[2][0])]
        coverage = _score(
            [e for e, _, _ in ranged], [t for _, t, _ in ranged], [r for *_, r in ranged]
        )[1]
        rows.append(
            StudyRow(seed, products, share, len(world.trades), name, len(cases), mdape,
                     coverage, ratio, cod)
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
