"""Instruments: listing (behind the compliance gate), reading, and trading sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from exchange import commands as cmd
from exchange.money import parse_minor, parse_price
from exchange.participants import Participant, Role
from exchange.service import Exchange

from ..bodies import StrictJsonRoute
from ..deps import RuntimeDep, requires
from ..errors import ApiError
from ..schemas import (
    AuctionPublic,
    InstrumentCreate,
    InstrumentPublic,
    PhaseChange,
    SymbolPath,
    error_responses,
)
from ..views import instrument_view, money

router = APIRouter(
    prefix="/instruments", tags=["instruments and sessions"], route_class=StrictJsonRoute
)
Lister = Annotated[Participant, Depends(requires(Role.PROVIDER, Role.ADMIN))]
Admin = Annotated[Participant, Depends(requires(Role.ADMIN))]


def _view(exchange: Exchange, symbol: str) -> InstrumentPublic:
    instrument = exchange.instruments.get(symbol)
    if instrument is None:
        raise ApiError(404, f"no instrument {symbol}", "NOT_FOUND")
    return instrument_view(instrument, exchange.engine.phase(symbol))


@router.post("", status_code=201, response_model=InstrumentPublic,
             responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def list_instrument(
    body: InstrumentCreate, me: Lister, runtime: RuntimeDep
) -> InstrumentPublic:
    """List an approved product under one set of licence terms. It opens in pre-open; the
    provider's whole issuance cap is issued into its unsold account at listing."""
    tick = parse_minor(body.tick_size, "tick_size")
    band = [None if v is None else parse_price(v, tick, name)
            for v, name in ((body.price_band_low, "price_band_low"),
                            (body.price_band_high, "price_band_high"))]  # fmt: skip
    await runtime.execute(cmd.ListInstrument(
        me.participant_id, body.symbol, body.product_id, str(body.exclusivity),
        body.duration_months, str(body.scope), str(body.territory), body.transferable, tick,
        body.lot_size, str(body.trading_mode), body.issuance_cap, body.fee_rate_bp, band[0],
        band[1], str(body.sealed_bid_pricing),
    ))  # fmt: skip
    return runtime.read(lambda exchange: _view(exchange, body.symbol))


@router.get("", response_model=list[InstrumentPublic])
async def list_instruments(runtime: RuntimeDep) -> list[InstrumentPublic]:
    """Every listed instrument with its current phase (public)."""
    return runtime.read(
        lambda exchange: [_view(exchange, symbol) for symbol in sorted(exchange.instruments)]
    )


@router.get("/{symbol}", response_model=InstrumentPublic, responses=error_responses(404, 422))
async def read_instrument(symbol: SymbolPath, runtime: RuntimeDep) -> InstrumentPublic:
    return runtime.read(lambda exchange: _view(exchange, symbol))


@router.post("/{symbol}/phase", response_model=InstrumentPublic,
             responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def set_phase(
    symbol: SymbolPath, body: PhaseChange, me: Admin, runtime: RuntimeDep
) -> InstrumentPublic:
    """Move the instrument to another phase. Leaving pre-open or the auction for continuous
    trading or the close runs the uncross; closing expires DAY orders."""
    await runtime.execute(cmd.SetPhase(me.participant_id, symbol, str(body.phase)))
    return runtime.read(lambda exchange: _view(exchange, symbol))


@router.post("/{symbol}/uncross", response_model=AuctionPublic,
             responses=error_responses(401, 403, 404, 409, 422, 429, 503))
async def uncross(symbol: SymbolPath, me: Admin, runtime: RuntimeDep) -> AuctionPublic:
    """Run the call auction (or close the sealed-bid round) now."""
    outcome = await runtime.execute(cmd.Uncross(me.participant_id, symbol))
    result = outcome.result
    if result is None:
        return AuctionPublic(symbol=symbol, price=None, volume=0, imbalance=0)
    return AuctionPublic(
        symbol=symbol, price=money(result.price), volume=result.volume,
        imbalance=result.imbalance,
    )  # fmt: skip
