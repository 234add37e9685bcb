"""Calibrated curves: how far a continuous attribute's price effect bends away from a power law.

The volume, coverage and quality factors are power laws (constant elasticities). Real prices
need not be: a scale effect can flatten, a quality effect can rise steeply past some level.
Each of the three attributes therefore also carries a **penalised linear spline** of its log,
the semiparametric hedonic form (Pace 1998, "Appraisal using generalized additive models";
Ruppert, Wand and Carroll 2003, "Semiparametric Regression")::

    curve(x) = sum_j b_j x max(x - knot_j, 0)

``b_j`` is the change of elasticity at ``knot_j``: the local elasticity is the factor's own
elasticity plus the sum of the ``b_j`` of the knots below x. The knots sit at quantiles of the
attribute over the traded products (``KNOTS`` of them), so they follow the data; the ``b_j``
have a normal prior centred on 0 whose standard deviation (the smoothing) is estimated from
the trades (``exchange.pricing.calibration``), so trades whose effects are power laws get
curves that stay near zero. A factor multiplies by ``exp(curve(x_s) - curve(x_c))``; without
a calibration the curve is empty and the factor is the plain power law.

>>> curve = Curve(knots=(0.0, 1.0), slope_changes=(0.5, -0.25))
>>> curve(2.0)  # 0.5 x 2 - 0.25 x 1
0.75
>>> curve(-1.0)
0.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KNOTS", "Curve", "hinge_columns", "quantile_knots"]

# Knots per curve: at the 1/9 ... 8/9 quantiles of the traded products' values. With the
# smoothing estimated from the data, the count matters little once there are enough knots.
KNOTS = 8


@dataclass(frozen=True, slots=True)
class Curve:
    """A linear spline of an attribute's log: zero up to the first knot, its slope changing by
    ``slope_changes[j]`` at ``knots[j]`` (ascending). The empty curve is zero everywhere."""

    knots: tuple[float, ...] = ()
    slope_changes: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        assert len(self.knots) == len(self.slope_changes)
        assert all(a < b for a, b in zip(self.knots, self.knots[1:], strict=False))

    def __call__(self, x: float) -> float:
        total = 0.0
        for knot, change in zip(self.knots, self.slope_changes, strict=True):
            if x <= knot:
                break  # knots ascend: no later hinge is active either
            total += change * (x - knot)
        return total

    def slope_range(self) -> tuple[float, float]:
        """The least and greatest change of elasticity over the attribute's range (0 is the
        power law's own, below the first knot)."""
        cumulative = np.concatenate([[0.0], np.cumsum(self.slope_changes)])
        return float(cumulative.min()), float(cumulative.max())


def quantile_knots(values: np.ndarray, count: int = KNOTS) -> np.ndarray:
    """``count`` knots at the ``1/(count+1) ... count/(count+1)`` quantiles of ``values``,
    duplicates dropped (an attribute with few distinct values gets fewer knots)."""
    if len(values) == 0:
        return np.empty(0)
    return np.unique(np.quantile(values, np.arange(1, count + 1) / (count + 1)))


def hinge_columns(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """The spline's design, ``max(x - knot_j, 0)`` for every value (rows) and knot (columns).

    >>> hinge_columns(np.array([0.0, 2.0]), np.array([1.0])).tolist()
    [[0.0], [1.0]]
    """
    return np.maximum(x[:, None] - knots[None, :], 0.0)
