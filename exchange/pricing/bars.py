"""Tape statistics: last price, VWAP over windows, OHLCV bars at any interval.

A tape is a sequence of prints ``(ts_ns, price, quantity)`` in time order: nanoseconds since
the epoch, a price (integer minor units from the exchange, or float currency units from a
file: the functions keep whichever they are given), and a quantity in licences. Sums of
integer prices stay exact integers; only a VWAP, a ratio, is a float.

>>> tape = [(0, 100, 2), (5, 110, 1), (12, 90, 1)]
>>> last_price(tape)
90
>>> vwap(tape, start_ns=0, end_ns=10)
103.33333333333333
>>> [(bar.start_ns, bar.open, bar.high, bar.low, bar.close, bar.volume)
...  for bar in ohlcv_bars(tape, interval_ns=10)]
[(0, 100, 110, 100, 110, 3), (10, 90, 90, 90, 90, 1)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["MAX_BARS", "Bar", "Print", "last_price", "ohlcv_bars", "vwap", "vwap_windows"]

# A print: (ts_ns, price, quantity). Price is int (minor units) or float (currency units).
Print = tuple[int, int | float, int]

# Limit: one call returns at most this many bars (an interval too fine for the span is refused).
MAX_BARS = 100_000


@dataclass(frozen=True, slots=True)
class Bar:
    """Trades in ``[start_ns, start_ns + interval_ns)``: ``notional`` is Σ price x quantity
    (exact when prices are integers). A filled empty bar has ``volume`` 0 and the previous
    close as its four prices."""

    start_ns: int
    interval_ns: int
    open: int | float
    high: int | float
    low: int | float
    close: int | float
    volume: int
    notional: int | float
    trade_count: int

    @property
    def vwap(self) -> float | None:
        """The bar's volume-weighted average price, None for an empty bar."""
        return self.notional / self.volume if self.volume else None


def last_price(tape: Sequence[Print]) -> int | float | None:
    """The price of the last print, None for an empty tape. O(1)."""
    return tape[-1][1] if tape else None


def vwap(
    tape: Iterable[Print], start_ns: int | None = None, end_ns: int | None = None
) -> float | None:
    """Volume-weighted average price of the prints in ``[start_ns, end_ns)`` (either bound
    None means open), None when no volume traded there. O(len(tape))."""
    notional: int | float = 0
    volume = 0
    for ts_ns, price, quantity in tape:
        if (start_ns is None or ts_ns >= start_ns) and (end_ns is None or ts_ns < end_ns):
            notional += price * quantity
            volume += quantity
    return notional / volume if volume else None


def vwap_windows(
    tape: Iterable[Print], now_ns: int, windows_ns: Mapping[str, int]
) -> dict[str, float | None]:
    """VWAP over each trailing window ``[now_ns - window, now_ns]``, by window name.

    >>> vwap_windows([(0, 10, 1), (90, 20, 1)], now_ns=100, windows_ns={"50ns": 50, "all": 200})
    {'50ns': 20.0, 'all': 15.0}
    """
    prints = list(tape)
    return {
        name: vwap(prints, start_ns=now_ns - window_ns, end_ns=now_ns + 1)
        for name, window_ns in windows_ns.items()
    }


def ohlcv_bars(
    tape: Iterable[Print],
    interval_ns: int,
    *,
    origin_ns: int = 0,
    fill_empty: bool = False,
) -> list[Bar]:
    """Open, high, low, close and volume per interval, aligned on ``origin_ns``.

    Bars come in time order; intervals without trades are skipped, or, with ``fill_empty``,
    given as flat bars at the previous close (never before the first trade). Raises
    ValueError for a non-positive interval, prints out of time order, or more than
    ``MAX_BARS`` bars. O(len(tape) + bars).
    """
    if interval_ns <= 0:
        raise ValueError(f"interval_ns {interval_ns} must be positive")
    bars: list[Bar] = []
    current: list | None = None  # [start, open, high, low, close, volume, notional, count]
    previous_ts: int | None = None

    def close_current() -> None:
        assert current is not None
        bars.append(Bar(current[0], interval_ns, *current[1:]))

    for ts_ns, price, quantity in tape:
        if previous_ts is not None and ts_ns < previous_ts:
            raise ValueError(f"print at {ts_ns} comes after one at {previous_ts}")
        previous_ts = ts_ns
        start = origin_ns + (ts_ns - origin_ns) // interval_ns * interval_ns
        if current is not None and start == current[0]:
            current[2] = max(current[2], price)
            current[3] = min(current[3], price)
            current[4] = price
            current[5] += quantity
            current[6] += price * quantity
            current[7] += 1
            continue
        if current is not None:
            close_current()
            if fill_empty:
                close = current[4]
                for empty_start in range(current[0] + interval_ns, start, interval_ns):
                    bars.append(Bar(empty_start, interval_ns, close, close, close, close, 0, 0, 0))
                    if len(bars) > MAX_BARS:
                        raise ValueError(f"more than {MAX_BARS} bars; use a longer interval")
        current = [start, price, price, price, price, quantity, price * quantity, 1]
        if len(bars) >= MAX_BARS:
            raise ValueError(f"more than {MAX_BARS} bars; use a longer interval")
    if current is not None:
        close_current()
    return bars
