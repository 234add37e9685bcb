"""What agents may read of the exchange: books, tickers, their own orders, fills, cash and
licences, straight from the exchange's in-memory state.

The runner lets agents read only between ticks, while the sequencer is idle (every command of
the previous tick answered), so every read sees one committed state. Reads do not copy (the
exchange's public ``order`` and ``holdings_of`` copy records, or scan every holder, which
thousands of reads a tick cannot afford) and never write: ``.get`` rather than indexing the
exchange's ``defaultdict`` balances, which would insert zeros into its state.
"""

from __future__ import annotations

from bisect import bisect_right

from exchange.orders import Fill, OrderRecord
from exchange.service import Exchange
from ledger import accounts

__all__ = ["MarketView"]


def _trade_time(trade: tuple[int, int, int, int]) -> int:
    return trade[3]


FILL_PAGE = 10_000
# The deepest book an agent or the recorder reads.
MAX_LEVELS = 10


class MarketView:
    """Reads for agents. The book is read once per instrument per tick (the engine builds
    every level for a depth read), so :meth:`refresh` must be called when the state moves."""

    __slots__ = ("_depth", "exchange")

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self._depth: dict[str, tuple[list[tuple[int, int]], ...]] = {}

    def refresh(self) -> None:
        """Forget the books read: the runner calls it after each round of commands."""
        self._depth.clear()

    # -- the market ----------------------------------------------------------------------

    def depth(self, symbol: str, levels: int) -> tuple[list[tuple[int, int]], ...]:
        """(bids, asks) as (price, units), best first, at most ``levels`` (up to
        ``MAX_LEVELS``) each."""
        assert levels <= MAX_LEVELS
        book = self._depth.get(symbol)
        if book is None:
            book = self._depth[symbol] = self.exchange.engine.depth(symbol, MAX_LEVELS)
        bids, asks = book
        return bids[:levels], asks[:levels]

    def best(self, symbol: str) -> tuple[int | None, int | None]:
        """(best bid, best ask) in minor units; None for an empty side."""
        book = self._depth.get(symbol)
        if book is None:
            book = self._depth[symbol] = self.exchange.engine.depth(symbol, MAX_LEVELS)
        bids, asks = book
        return (bids[0][0] if bids else None, asks[0][0] if asks else None)

    def last_price(self, symbol: str) -> int | None:
        return self.exchange.market_data.tickers[symbol].last_price_minor

    def trade_count(self, symbol: str) -> int:
        return self.exchange.market_data.tickers[symbol].trade_count

    def price_at(self, symbol: str, ts_ns: int) -> int | None:
        """The last trade price at or before ``ts_ns`` (None before the first trade)."""
        history = self.exchange.market_data.history[symbol]
        index = bisect_right(history, ts_ns, key=_trade_time)
        return history[index - 1][1] if index else None

    def reference(self, symbol: str) -> int | None:
        """The mid of a two-sided book, else the last trade price, else None."""
        bid, ask = self.best(symbol)
        if bid is not None and ask is not None:
            return (bid + ask) // 2
        return self.last_price(symbol)

    # -- a participant's own ---------------------------------------------------------------

    def order(self, order_id: int) -> OrderRecord | None:
        """The exchange's record of an order the caller placed (read only, not a copy)."""
        return self.exchange.orders.get(order_id)

    def is_open(self, order_id: int) -> bool:
        order = self.exchange.orders.get(order_id)
        return order is not None and order.is_open

    def fills_since(self, participant: str, after_trade_id: int) -> list[Fill]:
        return self.exchange.fills_of(participant, after_trade_id=after_trade_id, limit=FILL_PAGE)

    def cash(self, participant: str) -> tuple[int, int]:
        """(available, held by open buy orders) cash in minor units."""
        return self.exchange.cash_of(participant)

    def licences(self, participant: str, symbol: str, now_ns: int) -> tuple[int, int]:
        """(units held, unexpired; the most units one sell order may deliver now).

        A resale delivers from one holding (one expiry), so the second figure is the largest
        holding's units not already promised to the participant's open sells.
        """
        risk = self.exchange.risk
        held = free_max = 0
        balances, promised = risk.balances, risk.licences_held
        for expires_ns, account in risk.holdings.get((participant, symbol), {}).items():
            if expires_ns <= now_ns:
                continue
            units = balances.get(account, 0)
            held += units
            free_max = max(free_max, units - promised.get(account, 0))
        return held, free_max

    def unsold(self, symbol: str) -> int:
        """The provider's licences of ``symbol`` not yet sold nor promised to an open sell."""
        account = accounts.issuance(symbol)
        risk = self.exchange.risk
        return risk.balances.get(account, 0) - risk.licences_held.get(account, 0)
