"""How alike a target and a traded instrument are: a kernel over product features and terms.

Only instruments of the target's category are comparable at all (a category's prices move on
its own index, and the guidance asks for comparables of the same kind of data). Among them,
each difference adds to a distance, and similarity = exp(-distance), in (0, 1]:

==============  =====================================================  ==========
part            difference d                                           weight
==============  =====================================================  ==========
region          1 if the regions differ, else 0                        0.5
scale           |log10 records_s - log10 records_c| (orders of magnitude) 0.7
coverage        |log2 coverage_s - log2 coverage_c| (doublings)       0.3
freshness       |rank_s - rank_c|, real-time 0 ... static 3            0.4
quality         mean over the four scores of |q_s - q_c|               5.0
exclusivity     1 if they differ                                       0.7
duration        |log2 T_s - log2 T_c| (doublings)                      0.3
scope           |rank_s - rank_c|, internal 0, commercial 1, resale 2  0.4
territory       1 if they differ                                       0.4
==============  =====================================================  ==========

Each part's own similarity exp(-weight x d) is reported; their product is the similarity.
The weights say what an appraiser would give up first: a comparable ten times larger is
worth about a region away (e^-0.7 vs e^-0.5), and quality scores 0.1 apart on average cost as
much as a region. The search is vectorised over a category's instruments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SIMILARITY_PARTS", "SIMILARITY_WEIGHTS", "FeatureArrays", "similarity"]

SIMILARITY_WEIGHTS = {
    "region": 0.5,
    "scale": 0.7,
    "coverage": 0.3,
    "freshness": 0.4,
    "quality": 5.0,
    "exclusivity": 0.7,
    "duration": 0.3,
    "scope": 0.4,
    "territory": 0.4,
}
SIMILARITY_PARTS = tuple(SIMILARITY_WEIGHTS)
_LOG2_10 = np.log2(10.0)


@dataclass(frozen=True, slots=True)
class FeatureArrays:
    """Similarity features of one or many instruments (arrays of equal length), or of one
    target (arrays of length 1)."""

    region: np.ndarray  # region code in the market's vocabulary (-1: unknown region)
    log2_records: np.ndarray
    log2_coverage: np.ndarray
    frequency_rank: np.ndarray
    quality: np.ndarray  # (n, 4)
    exclusive: np.ndarray
    log2_duration: np.ndarray
    scope_rank: np.ndarray
    cross_border: np.ndarray

    def take(self, rows: np.ndarray) -> FeatureArrays:
        return FeatureArrays(*(getattr(self, name)[rows] for name in self.__slots__))


def distances(target: FeatureArrays, candidates: FeatureArrays) -> dict[str, np.ndarray]:
    """Each part's difference between the target (length 1) and every candidate."""
    return {
        "region": (candidates.region != target.region[0]).astype(np.float64),
        "scale": np.abs(candidates.log2_records - target.log2_records[0]) / _LOG2_10,
        "coverage": np.abs(candidates.log2_coverage - target.log2_coverage[0]),
        "freshness": np.abs(candidates.frequency_rank - target.frequency_rank[0]).astype(float),
        "quality": np.abs(candidates.quality - target.quality[0]).mean(axis=1),
        "exclusivity": (candidates.exclusive != target.exclusive[0]).astype(np.float64),
        "duration": np.abs(candidates.log2_duration - target.log2_duration[0]),
        "scope": np.abs(candidates.scope_rank - target.scope_rank[0]).astype(np.float64),
        "territory": (candidates.cross_border != target.cross_border[0]).astype(np.float64),
    }


def similarity(target: FeatureArrays, candidates: FeatureArrays) -> np.ndarray:
    """exp(-sum of weighted differences) for every candidate, in (0, 1]. O(candidates)."""
    total = np.zeros(len(candidates.region))
    for part, difference in distances(target, candidates).items():
        total += SIMILARITY_WEIGHTS[part] * difference
    return np.exp(-total)


def similarity_parts(target: FeatureArrays, candidates: FeatureArrays) -> dict[str, np.ndarray]:
    """Each part's own similarity exp(-weight x difference) for every candidate; their
    product is ``similarity``. O(candidates)."""
    return {
        part: np.exp(-SIMILARITY_WEIGHTS[part] * difference)
        for part, difference in distances(target, candidates).items()
    }
