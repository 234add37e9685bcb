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
        buy, sell = self.orders[trade.buy_order_id], self.orders[trade.sell_order_id]
        instrument = self.instruments[trade.symbol]
        risk = self.risk
        price, quantity = trade.price, trade.quantity
        notional = price * quantity
        fee = instrument.fee_minor(notional)
        primary = sell.licence_account == accounts.issuance(trade.symbol)
        expires = instrument.expiry_ns(ts) if primary else sell.licence_expires_ns
        assert expires is not None
        entry = entries.trade_settlement(
            trade_id=trade.trade_id, symbol=trade.symbol, buyer=buy.participant,
            seller=sell.participant, price_minor_per_unit=price, quantity_units=quantity,
            fee_minor=fee, expires_at_ns=expires, primary=primary, ts_ns=ts,
        )  # fmt: skip
        risk.post(entry)
        settled.append(entry)
        if expires not in risk.holdings[(buy.participant, trade.symbol)]:
            account = risk.add_holding(buy.participant, trade.symbol, expires)
            heapq.heappush(self.licence_expiries,
                           (expires, account, buy.participant, trade.symbol))  # fmt: skip
        # The buy held its own limit for these units; the trade paid ``price`` of it.
        freed = buy.hold_price_minor * quantity
        buy.held_minor -= freed
        risk.cash_held[buy.participant] -= freed
        risk.licences_held[sell.licence_account] -= quantity  # type: ignore[index]
        fills = self.fills
        for order, side in ((buy, Side.BUY), (sell, Side.SELL)):
            order.filled_units += quantity
            order.filled_notional_minor += notional
            order.updated_ns = ts
            if trade.aggressor is None:
                liquidity = "auction"
            else:
                liquidity = "taker" if trade.aggressor is side else "maker"
            fill = Fill(
                trade.trade_id, order.order_id, order.client_order_id, trade.symbol, side,
                price, quantity, fee if side is Side.SELL else 0, liquidity, ts,
            )  # fmt: skip
            fills[order.participant].append(fill)
            if reports is not None:
                reports.append(FillReport(order.participant, fill, order.remaining_units))
            self.update_status(order)
        self.market_data.on_trade(trade, ts)
        if trade.symbol in self.collateral_symbols:
            self.collateral_touched.add(trade.symbol)

    def _cancelled(self, event: Cancelled, ts: int) -> None:
        order = self.orders[event.order_id]
        order.cancelled_units += event.quantity
        order.cancel_reason = str(event.reason)
        order.updated_ns = ts
        if order.side is Side.BUY:
            freed = order.hold_price_minor * event.quantity
            order.held_minor -= freed
            self.risk.cash_held[order.participant] -= freed
        else:
            self.risk.licences_held[order.licence_account] -= event.quantity  # type: ignore[index]
        self.update_status(order)

    def update_status(self, order: OrderRecord) -> None:
        was_open = order.is_open
        if order.remaining_units > 0:
            order.status = OrderStatus.PARTIALLY_FILLED if order.filled_units else OrderStatus.OPEN
        elif order.cancelled_units:
            order.status = OrderStatus.CANCELLED
        else:
            order.status = OrderStatus.FILLED
        if was_open and not order.is_open:
            self.open_orders[order.participant] -= 1
            assert order.side is Side.SELL or order.held_minor == 0, order
