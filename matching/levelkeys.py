"""The sorted level keys of one side of a book, greatest (best) last, kept in chunks.

A plain sorted list serves the few dozen levels a data-licence book holds, but adding or
removing a key far from its end moves every key after it, and ``list.remove`` scans from the
front: at 100,000 levels a side, dropping a deep level took 425 µs (``docs/benchmarks.md``).
Here the keys sit in sorted chunks of at most ``CHUNK_MAX_KEYS`` keys, with each chunk's
greatest key in ``maxes``, as ``sortedcontainers.SortedList`` keeps them: a key is found by
bisecting ``maxes`` and then its chunk, and a change moves keys within one chunk only. Up to
``CHUNK_MAX_KEYS`` levels there is one chunk, and this is the plain list it replaces.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from itertools import pairwise
from typing import Final

# Large enough that a book of a few hundred levels is one chunk; small enough that moving
# the keys of a chunk (8 bytes each) stays well under a microsecond.
CHUNK_MAX_KEYS: Final = 1024


class LevelKeys:
    """A set of int keys in ascending order. Add O(log n + CHUNK_MAX_KEYS), remove likewise,
    the greatest key O(1).

    >>> keys = LevelKeys()
    >>> for key in (5, -3, 9):
    ...     keys.add(key)
    >>> keys.best(), list(keys.descending())
    (9, [9, 5, -3])
    >>> keys.remove(9); keys.best(), keys.size
    (5, 2)
    """

    __slots__ = ("chunks", "maxes", "size")

    def __init__(self) -> None:
        self.chunks: list[list[int]] = []  # sorted, none empty
        self.maxes: list[int] = []  # maxes[i] == chunks[i][-1]
        self.size = 0

    def best(self) -> int:
        """The greatest key. The set must not be empty."""
        return self.maxes[-1]

    def add(self, key: int) -> None:
        """Insert ``key``, which must not be in the set."""
        maxes = self.maxes
        self.size += 1
        if not maxes:
            self.chunks.append([key])
            maxes.append(key)
            return
        if key > maxes[-1]:  # a new best level: the usual case, near the touch
            i = len(maxes) - 1
            chunk = self.chunks[i]
            chunk.append(key)
            maxes[i] = key
        else:
            i = bisect_left(maxes, key)
            chunk = self.chunks[i]
            insort(chunk, key)
        if len(chunk) > CHUNK_MAX_KEYS:
            half = len(chunk) // 2
            self.chunks.insert(i + 1, chunk[half:])
            del chunk[half:]
            maxes.insert(i, chunk[-1])

    def remove(self, key: int) -> None:
        """Remove ``key``, which must be in the set."""
        maxes = self.maxes
        self.size -= 1
        i = len(maxes) - 1
        if key == maxes[i]:  # the best level: the usual case, taken or cancelled at the touch
            chunk = self.chunks[i]
            chunk.pop()
        else:
            i = bisect_left(maxes, key)
            chunk = self.chunks[i]
            del chunk[bisect_left(chunk, key)]
        if chunk:
            maxes[i] = chunk[-1]
        else:
            del self.chunks[i]
            del maxes[i]

    def descending(self) -> Iterator[int]:
        """The keys, greatest first."""
        for chunk in reversed(self.chunks):
            yield from reversed(chunk)

    def ascending(self) -> list[int]:
        return [key for chunk in self.chunks for key in chunk]

    def check_invariants(self) -> None:
        keys = self.ascending()
        assert all(a < b for a, b in pairwise(keys)), "level keys not strictly sorted"
        assert self.size == len(keys), "level key count drifted"
        assert all(self.chunks), "empty chunk kept"
        assert self.maxes == [chunk[-1] for chunk in self.chunks], "chunk maxima drifted"
        assert all(len(chunk) <= CHUNK_MAX_KEYS for chunk in self.chunks), "chunk not split"
