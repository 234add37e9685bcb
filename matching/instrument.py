"""What an instrument's book needs to know about it: grid, band, limits and trading mode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from matching.enums import SealedBidPricing, TradingMode

MAX_ORDER_QUANTITY_DEFAULT = 1_000_000_000


@dataclass(init=False, slots=True, unsafe_hash=True)
class InstrumentSpec:
    """The trading parameters of one instrument.

    Prices are integers in minor currency units per licence unit and must be multiples of
    ``tick_size``; quantities are integer licence units and must be multiples of ``lot_size``.
    ``price_band_low``/``price_band_high`` (inclusive, optional) bound every limit and
    protection price; a market buy without its own protection price is bounded by the band.
    """

    symbol: Final[str]
    tick_size: Final[int]
    lot_size: Final[int]
    trading_mode: Final[TradingMode]
    price_band_low: Final[int | None]
    price_band_high: Final[int | None]
    max_order_quantity: Final[int]
    sealed_bid_pricing: Final[SealedBidPricing]

    def __init__(
        self,
        symbol: str,
        tick_size: int = 1,
        lot_size: int = 1,
        trading_mode: TradingMode = TradingMode.CONTINUOUS,
        price_band_low: int | None = None,
        price_band_high: int | None = None,
        max_order_quantity: int = MAX_ORDER_QUANTITY_DEFAULT,
        sealed_bid_pricing: SealedBidPricing = SealedBidPricing.FIRST_PRICE,
    ) -> None:
        self.symbol = symbol
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.trading_mode = trading_mode
        self.price_band_low = price_band_low
        self.price_band_high = price_band_high
        self.max_order_quantity = max_order_quantity
        self.sealed_bid_pricing = sealed_bid_pricing

    def problem(self) -> str | None:
        """Return what is wrong with this spec, or None when it is usable."""
        if not self.symbol:
            return "symbol is empty"
        if self.tick_size <= 0:
            return "tick_size must be positive"
        if self.lot_size <= 0:
            return "lot_size must be positive"
        if self.max_order_quantity < self.lot_size:
            return "max_order_quantity is below one lot"
        low, high = self.price_band_low, self.price_band_high
        if low is not None and (low <= 0 or low % self.tick_size):
            return "price_band_low must be a positive multiple of tick_size"
        if high is not None and (high <= 0 or high % self.tick_size):
            return "price_band_high must be a positive multiple of tick_size"
        if low is not None and high is not None and low > high:
            return "price_band_low is above price_band_high"
        return None
