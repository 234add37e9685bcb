"""Settlement: what the engine's events do to orders, holds, holdings and the ledger.

The exchange applies a checked command to the engine and hands its events here. A trade
becomes one ledger entry of balanced postings (cash from buyer to seller less the fee,
licence units from the seller's account to a holding of the buyer's that expires with the
licence), shrinks both orders' holds and records both fills; a cancellation frees what the
order held. Holds change in memory only: the ledger records movements of value, never holds.
"""

from __future__ import annotations

import heapq
from collections import defaultdict

from exchange.catalogue import Instrument
from exchange.marketdata import MarketData
from exchange.orders import Fill, FillReport, OrderRecord, OrderStatus
from exchange.risk import Risk
from ledger import Entry, accounts, entries
from matching import Amended, Cancelled, Event, Rejected, Side, Trade

__all__ = ["Settlement"]

# Enum members bound once: each lookup on its class costs ~60 ns, several times a trade.
_BUY = Side.BUY
_SELL = Side.SELL
_OPEN = OrderStatus.OPEN
_PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED
_FILLED = OrderStatus.FILLED
_CANCELLED = OrderStatus.CANCELLED


class Settlement:
    """Turns engine events into order updates, hold changes, fills and ledger entries.

    It shares the exchange's order records, instruments, risk and market data, and owns the
    fills and the heap of licence expiries that settlement creates.
    """

    def __init__(
        self,
        orders: dict[int, OrderRecord],
        instruments: dict[str, Instrument],
        risk: Risk,
        market_data: MarketData,
        open_orders: defaultdict[str, int],
    ) -> None:
        self.orders = orders
        self.instruments = instruments
        self.risk = risk
        self.market_data = market_data
        self.open_orders = open_orders
        self.fills: defaultdict[str, list[Fill]] = defaultdict(list)
        # (expires_ns, account, holder, symbol) of every holding, earliest first
        self.licence_expiries: list[tuple[int, str, str, str]] = []
        # Symbols with licences pledged as collateral, and those of them that traded in the
        # command being applied: the collateral desk re-marks their facilities after it.
        self.collateral_symbols: set[str] = set()
        self.collateral_touched: set[str] = set()

    def apply(
        self, events: list[Event], settled: list[Entry], ts_ns: int,
        reports: list[FillReport] | None = None,
    ) -> None:
        """Settle ``events`` of a command applied at ``ts_ns``; append entries to ``settled``
        and, if given, each fill as its order stood after it to ``reports``."""
        for event in events:
            kind = type(event)
            if kind is Trade:
                self._trade(event, settled, ts_ns, reports)  # type: ignore[arg-type]
            elif kind is Cancelled:
                self._cancelled(event, ts_ns)  # type: ignore[arg-type]
            elif kind is Amended:
                self.orders[event.order_id].updated_ns = ts_ns  # type: ignore[attr-defined]
            elif kind is Rejected:
                raise AssertionError(f"checked command rejected by the engine: {event}")

    def _trade(
        self, trade: Trade, settled: list[Entry], ts: int, reports: list[FillReport] | None
    ) -> None:
        # The hot path of every trade, written for speed: attributes read once into locals,
        # both sides spelled out rather than looped over, and enum members bound at import.
        orders = self.orders
        buy, sell = orders[trade.buy_order_id], orders[trade.sell_order_id]
        symbol, trade_id = trade.symbol, trade.trade_id
        buyer, seller = buy.participant, sell.participant
        instrument = self.instruments[symbol]
        risk = self.risk
        price, quantity = trade.price, trade.quantity
        notional = price * quantity
        fee = instrument.fee_minor(notional)
        source = sell.licence_account
        primary = source == accounts.issuance(symbol)
        expires = instrument.expiry_ns(ts) if primary else sell.licence_expires_ns
        assert expires is not None and source is not None
        entry = entries.trade_settlement(
            trade_id=trade_id, symbol=symbol, buyer=buyer, seller=seller,
            price_minor_per_unit=price, quantity_units=quantity, fee_minor=fee,
            expires_at_ns=expires, primary=primary, ts_ns=ts,
        )  # fmt: skip
        risk.post(entry)
        settled.append(entry)
        if expires not in risk.holdings[(buyer, symbol)]:
            account = risk.add_holding(buyer, symbol, expires)
            heapq.heappush(self.licence_expiries, (expires, account, buyer, symbol))
        # The buy held its own limit for these units; the trade paid ``price`` of it.
        freed = buy.hold_price_minor * quantity
        buy.held_minor -= freed
        risk.cash_held[buyer] -= freed
        risk.licences_held[source] -= quantity
        aggressor = trade.aggressor
        if aggressor is None:
            buy_liquidity = sell_liquidity = "auction"
        elif aggressor is _BUY:
            buy_liquidity, sell_liquidity = "taker", "maker"
        else:
            buy_liquidity, sell_liquidity = "maker", "taker"
        buy_fill = Fill(trade_id, buy.order_id, buy.client_order_id, symbol, _BUY, price,
                        quantity, 0, buy_liquidity, ts)  # fmt: skip
        sell_fill = Fill(trade_id, sell.order_id, sell.client_order_id, symbol, _SELL, price,
                         quantity, fee, sell_liquidity, ts)  # fmt: skip
        fills = self.fills
        fills[buyer].append(buy_fill)
        fills[seller].append(sell_fill)
        for order in (buy, sell):
            order.filled_units += quantity
            order.filled_notional_minor += notional
            order.updated_ns = ts
        if reports is not None:
            reports.append(FillReport(buyer, buy_fill, buy.remaining_units))
            reports.append(FillReport(seller, sell_fill, sell.remaining_units))
        self.update_status(buy)
        self.update_status(sell)
        self.market_data.on_trade(trade, ts)
        if symbol in self.collateral_symbols:
            self.collateral_touched.add(symbol)

    def _cancelled(self, event: Cancelled, ts: int) -> None:
        order = self.orders[event.order_id]
        quantity = event.quantity
        order.cancelled_units += quantity
        order.cancel_reason = str(event.reason)
        order.updated_ns = ts
        if order.side is _BUY:
            freed = order.hold_price_minor * quantity
            order.held_minor -= freed
            self.risk.cash_held[order.participant] -= freed
        else:
            self.risk.licences_held[order.licence_account] -= quantity  # type: ignore[index]
        self.update_status(order)

    def update_status(self, order: OrderRecord) -> None:
        """Set ``order``'s status from its units; count it out of its participant's open
        orders when this closes it."""
        status = order.status
        was_open = status is _OPEN or status is _PARTIALLY_FILLED
        remaining = order.quantity_units - order.filled_units - order.cancelled_units
        if remaining > 0:
            order.status = _PARTIALLY_FILLED if order.filled_units else _OPEN
        else:
            order.status = _CANCELLED if order.cancelled_units else _FILLED
            if was_open:
                self.open_orders[order.participant] -= 1
                assert order.side is _SELL or order.held_minor == 0, order
