"""The virtual clock: the time the sequencer stamps on every command of a simulation.

The sequencer calls its clock for each command it applies (``Sequencer(ledger, clock=...)``)
and makes times strictly increasing, so the commands of one tick, which all read the same
time, are stamped ``t``, ``t + 1 ns``, ``t + 2 ns`` ... The simulation's loop alone moves the
clock, and only between ticks, when every command of the tick has been answered; so no
wall-clock reading ever reaches the journal.
"""

from __future__ import annotations

__all__ = ["VirtualClock"]


class VirtualClock:
    """A callable returning ``now_ns``; :meth:`set` moves it forward, never back.

    >>> clock = VirtualClock(10)
    >>> clock.set(25)
    >>> clock()
    25
    """

    __slots__ = ("now_ns",)

    def __init__(self, start_ns: int) -> None:
        self.now_ns = start_ns

    def __call__(self) -> int:
        return self.now_ns

    def set(self, now_ns: int) -> None:
        assert now_ns >= self.now_ns, f"the virtual clock went back to {now_ns}"
        self.now_ns = now_ns
