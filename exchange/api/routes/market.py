"""Public market data: book, trade tape, ticker. No API key needed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from exchange.service import Exchange

from ..bodies import StrictJsonRoute
from ..deps import RuntimeDep
from ..errors import ApiError
from ..schemas import BookLevel, BookPublic, SymbolPath, TickerPublic, TradePublic, error_responses
from ..views import money, trade_view

router = APIRouter(prefix="/market", tags=["market data"], route_class=StrictJsonRoute)


def book_view(exchange: Exchange, symbol: str, depth: int) -> BookPublic:
    """The book of ``symbol`` as it stands after journal entry ``exchange.head_seq``, at most
    ``depth`` levels a side (every level if negative). Read under the sequencer's lock."""
    bids, asks = exchange.engine.depth(symbol, depth)
    clearing = exchange.engine.indicative_auction(symbol)
    return BookPublic(
        seq=exchange.head_seq,
        symbol=symbol,
        phase=exchange.engine.phase(symbol),
        bids=[BookLevel(price=money(p), quantity=q) for p, q in bids],
        asks=[BookLevel(price=money(p), quantity=q) for p, q in asks],
        indicative_price=money(clearing.price) if clearing else None,
        indicative_volume=clearing.volume if clearing else 0,
    )


def _known(exchange: Exchange, symbol: str) -> None:
    if symbol not in exchange.instruments:
        raise ApiError(404, f"no instrument {symbol}", "NOT_FOUND")


@router.get("/{symbol}/book", response_model=BookPublic, responses=error_responses(404, 422))
async def order_book(
    symbol: SymbolPath,
    runtime: RuntimeDep,
    depth: Annotated[int, Query(ge=1, le=50, description="Levels per side")] = 10,
) -> BookPublic:
    """Aggregated depth, best first, and ``seq``: the journal sequence number it reflects (see
    the market stream for keeping a book in sync). A sealed-bid book shows nothing until its
    close."""

    def read(exchange: Exchange) -> BookPublic:
        _known(exchange, symbol)
        return book_view(exchange, symbol, depth)

    return runtime.read(read)


@router.get("/{symbol}/trades", response_model=list[TradePublic],
            responses=error_responses(404, 422))
async def trade_tape(
    symbol: SymbolPath,
    runtime: RuntimeDep,
    before: Annotated[int | None, Query(
        ge=1, description="Trades with a lower id: the last trade_id of the previous page"
    )] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[TradePublic]:
    """The most recent trades, newest first, a page at a time: pass the last ``trade_id``
    of a page as ``before`` for the next (older) one. The tape keeps each instrument's
    latest 10,000 trades; an empty page is its end."""

    def read(exchange: Exchange) -> list[TradePublic]:
        _known(exchange, symbol)
        tape = exchange.market_data.tape(symbol, limit, before_trade_id=before)
        return [trade_view(trade) for trade in tape]

    return runtime.read(read)


@router.get("/{symbol}/ticker", response_model=TickerPublic, responses=error_responses(404, 422))
async def ticker(symbol: SymbolPath, runtime: RuntimeDep) -> TickerPublic:
    """Last, open, high, low, VWAP and volume since listing, and the touch."""

    def read(exchange: Exchange) -> TickerPublic:
        _known(exchange, symbol)
        t = exchange.market_data.tickers[symbol]
        bids, asks = exchange.engine.depth(symbol, 1)
        bid = bids[0][0] if bids else None
        ask = asks[0][0] if asks else None
        mid = (bid + ask) // 2 if bid is not None and ask is not None else None
        return TickerPublic(
            symbol=symbol, phase=exchange.engine.phase(symbol), last=money(t.last_price_minor),
            open=money(t.open_price_minor), high=money(t.high_price_minor),
            low=money(t.low_price_minor), vwap=money(t.vwap_minor()), volume=t.volume_units,
            trades=t.trade_count, best_bid=money(bid), best_ask=money(ask), mid=money(mid),
        )  # fmt: skip

    return runtime.read(read)
