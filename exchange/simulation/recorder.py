"""Market data sampled during a run, for the report: the book's touch and depth, and the true
value, of every instrument every ``sample_every_ticks`` ticks. Trades need no sampling: the
exchange keeps every one (``exchange.market_data.history``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from exchange.simulation.scenario import Scenario

if TYPE_CHECKING:
    from exchange.simulation.agents import AgentContext

__all__ = ["DEPTH_LEVELS", "BookSeries", "MarketRecorder"]

# Depth is the units resting within the best five price levels of each side.
DEPTH_LEVELS = 5


@dataclass(slots=True)
class BookSeries:
    """One instrument's samples, aligned with :attr:`MarketRecorder.ticks`; prices in minor
    units, None where the side was empty."""

    bid_minor: list[int | None] = field(default_factory=list)
    ask_minor: list[int | None] = field(default_factory=list)
    bid_depth_units: list[int] = field(default_factory=list)
    ask_depth_units: list[int] = field(default_factory=list)
    true_value_minor: list[float] = field(default_factory=list)


class MarketRecorder:
    def __init__(self, symbols: list[str], scenario: Scenario) -> None:
        self.symbols = symbols
        self.ticks: list[int] = []
        self.series = {symbol: BookSeries() for symbol in symbols}
        self.ticks_per_day = scenario.ticks_per_day

    def sample(self, tick: int, context: AgentContext) -> None:
        """Record every instrument's book and true value now (between ticks)."""
        self.ticks.append(tick)
        depth, value = context.view.depth, context.truth.value_minor
        for symbol, series in self.series.items():
            bids, asks = depth(symbol, DEPTH_LEVELS)
            series.bid_minor.append(bids[0][0] if bids else None)
            series.ask_minor.append(asks[0][0] if asks else None)
            series.bid_depth_units.append(sum(units for _, units in bids))
            series.ask_depth_units.append(sum(units for _, units in asks))
            series.true_value_minor.append(value(symbol))
