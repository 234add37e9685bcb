"""Stylized facts across the seeds of a sweep: each fact's mean and 95% confidence interval
per grid point, so that scenarios can be compared.

Each run of a sweep measures the stylized facts of one path (its row's columns, from the
report's summary: ``metrics.stylized_facts`` and the book's spread and depth); one seed is
one draw of a scenario's randomness, so the facts vary from seed to seed and a difference
between two scenarios means something only beside that variation. :func:`facts_table`
gives, per grid point and fact, the seeds that measured it, their mean, standard deviation
and a 95% interval for the mean.

The interval is Student's t interval, ``mean ± t(0.975, n-1) · sd / √n``. Sweeps have a
few seeds to a few dozen, and there the t interval is the honest one: a bootstrap percentile
interval of n = 3 seeds draws its means from at most 10 distinct values, is never wider than
the seeds' range, and covers the mean about 76% of the time for normal draws (84% at n = 5,
90% at n = 10), where the t interval keeps its 95% by widening as n falls (12.7 standard
errors at n = 2). It assumes the seeds' values are about normal, or enough seeds for their
mean to be; a skewed fact (excess kurtosis) needs more seeds before its interval is to be
trusted. It is exact and deterministic, so the same seeds always give the same table. A
fact measured by one seed has a mean and no interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from exchange.simulation.grid import Setting

__all__ = [
    "FACTS",
    "FACT_COLUMNS",
    "MeanInterval",
    "fact_columns",
    "facts_table",
    "mean_interval",
    "t_quantile_975",
]

# The sweep row's columns that are stylized facts, with what each measures.
FACTS: Final = (
    ("acf1_returns", "lag-1 autocorrelation of bar returns (near 0: no linear predictability)"),
    ("excess_kurtosis", "excess kurtosis of bar returns (above 0: fat tails)"),
    ("acf1_abs_returns", "lag-1 autocorrelation of absolute returns (volatility clustering)"),
    ("acf10_abs_returns", "lag-10 autocorrelation of absolute returns (its persistence)"),
    ("return_sd", "standard deviation of bar returns"),
    ("mean_spread_bp", "mean relative spread, basis points of the mid"),
    ("two_sided_share", "share of book samples quoted on both sides"),
    ("mean_depth_units", "mean depth, units within five levels a side"),
)
FACT_COLUMNS: Final = ("fact", "runs", "mean", "sd", "ci95_low", "ci95_high")

# t(0.975, df) for df = 1..30, to six decimals; checked in the tests against the integral of
# the t density. Numpy has no t distribution and the project takes no dependency for one.
_T_975: Final = (
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
    2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
    2.109816, 2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
    2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)  # fmt: skip
_Z_975: Final = 1.959963984540054


@dataclass(frozen=True, slots=True)
class MeanInterval:
    """The mean of ``n`` values, their sample standard deviation and the 95% t interval of
    the mean; ``sd`` and the interval are None when ``n`` < 2, everything when ``n`` is 0."""

    n: int
    mean: float | None
    sd: float | None
    low: float | None
    high: float | None


def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom: a table to 30, then
    the Cornish-Fisher expansion in 1/df (Abramowitz and Stegun 26.7.5), within 2e-6 there.

    >>> t_quantile_975(2)
    4.302653
    >>> round(t_quantile_975(120), 4)
    1.9799
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, not {df}")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = _Z_975
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * df**4)
    )


def mean_interval(values: Sequence[float]) -> MeanInterval:
    """The mean of ``values`` with a 95% t interval.

    >>> m = mean_interval([1.0, 2.0, 3.0])
    >>> m.mean, m.sd, round(m.low, 4), round(m.high, 4)
    (2.0, 1.0, -0.4841, 4.4841)
    """
    n = len(values)
    if n == 0:
        return MeanInterval(0, None, None, None, None)
    assert all(math.isfinite(value) for value in values), "a fact that is not a number"
    mean = math.fsum(values) / n
    if n == 1:
        return MeanInterval(1, mean, None, None, None)
    sd = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / (n - 1))
    half = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return MeanInterval(n, mean, sd, mean - half, mean + half)


def fact_columns(settings: Sequence[Setting]) -> tuple[str, ...]:
    """The facts table's columns: the grid's keys, then :data:`FACT_COLUMNS`."""
    return tuple(setting.key for setting in settings) + FACT_COLUMNS


def facts_table(rows: Sequence[dict[str, Any]], settings: Sequence[Setting]) -> list[dict]:
    """One row per grid point and fact of :data:`FACTS` (grid points in the order of
    ``rows``, facts in their order): the point's settings, the fact, how many runs measured
    it (``runs``), their mean, sd and 95% interval. Failed runs (an ``error``) and runs that
    could not measure a fact (None: no instrument traded often enough) are left out."""
    keys = [setting.key for setting in settings]
    points: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        # repr keys the grouping, so a list value (``[0.8, 0.9]``) groups like any other.
        points.setdefault(tuple(repr(row[key]) for key in keys), []).append(row)
    table = []
    for runs in points.values():
        settled = [row for row in runs if row.get("error") is None]
        for fact, _ in FACTS:
            summary = mean_interval([row[fact] for row in settled if row[fact] is not None])
            table.append(
                {key: runs[0][key] for key in keys}
                | {
                    "fact": fact,
                    "runs": summary.n,
                    "mean": summary.mean,
                    "sd": summary.sd,
                    "ci95_low": summary.low,
                    "ci95_high": summary.high,
                }
            )
    return table
