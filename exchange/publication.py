"""The publication policy of confidential trades: when each is published, and what it shows.

A trade agreed by request for quote or reported by its parties is settled at once (the
ledger records it in full, hash-chained as any other entry) but reaches the public only
later, and then without its parties: the deferral protects those who would not trade in
public, the publication still tells the market what the licence was worth. The rules follow
the bond markets' (docs/confidential.md): MiFID II defers trades that are large in scale or
in instruments without a liquid market (RTS 2, Art. 8 and 11: until T+2, four weeks for the
largest), and FINRA's TRACE disseminates within fifteen minutes but caps the size it shows
(a trade above the cap is printed as "cap+").

Everything here is a pure function of integers: the exchange decides a trade's publication
time when it settles the trade, from the policy in force and the instrument's order-book
trades of the thirty days before, and never revisits it.

>>> policy = PublicationPolicy()
>>> deferral_ns(policy, notional_minor=1_000_000, liquid=True) // 60_000_000_000
15
>>> price_band(123_456, 2)
(120000, 130000)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from exchange.validation import integer, invalid

__all__ = [
    "DEFAULT_POLICY",
    "LIQUIDITY_WINDOW_NS",
    "Deferral",
    "PublicationPolicy",
    "deferral_class",
    "deferral_ns",
    "price_band",
]

SECOND_NS: Final = 1_000_000_000
MINUTE_NS: Final = 60 * SECOND_NS
DAY_NS: Final = 86_400 * SECOND_NS
# An instrument's liquidity is its order-book trades in the thirty days before a trade.
LIQUIDITY_WINDOW_NS: Final = 30 * DAY_NS
# No deferral may exceed a year: a trade the public never learns of feeds no price discovery.
MAX_DEFERRAL_S: Final = 366 * 86_400
MAX_NOTIONAL_MINOR: Final = 10**15


class Deferral(StrEnum):
    """Why a trade waits as long as it does."""

    STANDARD = "standard"  # a trade of normal size in a liquid instrument
    LARGE_OR_ILLIQUID = "large_or_illiquid"  # large in scale, or no liquid market
    LARGE_AND_ILLIQUID = "large_and_illiquid"  # both


@dataclass(frozen=True, slots=True)
class PublicationPolicy:
    """One instrument's publication rules; the defaults are the exchange's (documented in
    docs/confidential.md, where their reasons are given)."""

    # A trade whose notional reaches this is large in scale (500,000.00 CNY).
    large_in_scale_minor: int = 50_000_000
    # An instrument with at least this many order-book trades in the thirty days before a
    # trade has a liquid market.
    liquid_trades_30d: int = 10
    deferral_standard_s: int = 15 * 60  # TRACE's fifteen minutes
    deferral_large_or_illiquid_s: int = 2 * 86_400  # MiFID II: until T+2
    deferral_large_and_illiquid_s: int = 28 * 86_400  # MiFID II's supplementary four weeks
    # A published quantity above this is shown as the cap, flagged (TRACE's "5MM+").
    quantity_cap_units: int = 10
    # A large-in-scale trade's price is published as a band at two significant figures.
    band_large_in_scale: bool = True
    band_significant_figures: int = 2

    def checked(self) -> PublicationPolicy:
        """This policy, if each field is within its limits (else ``VALIDATION_INVALID``)."""
        integer(self.large_in_scale_minor, "large_in_scale", 1, MAX_NOTIONAL_MINOR)
        integer(self.liquid_trades_30d, "liquid_trades_30d", 0, 1_000_000)
        for name in ("deferral_standard_s", "deferral_large_or_illiquid_s",
                     "deferral_large_and_illiquid_s"):  # fmt: skip
            integer(getattr(self, name), name, 0, MAX_DEFERRAL_S)
        if not (self.deferral_standard_s <= self.deferral_large_or_illiquid_s
                <= self.deferral_large_and_illiquid_s):  # fmt: skip
            raise invalid(
                "deferrals must not shrink as trades grow or markets thin: standard <= "
                "large_or_illiquid <= large_and_illiquid"
            )
        integer(self.quantity_cap_units, "quantity_cap_units", 1, 10**12)
        if type(self.band_large_in_scale) is not bool:
            raise invalid("band_large_in_scale must be true or false")
        integer(self.band_significant_figures, "band_significant_figures", 1, 6)
        return self


DEFAULT_POLICY: Final = PublicationPolicy()


def deferral_class(policy: PublicationPolicy, notional_minor: int, liquid: bool) -> Deferral:
    large = notional_minor >= policy.large_in_scale_minor
    if large and not liquid:
        return Deferral.LARGE_AND_ILLIQUID
    if large or not liquid:
        return Deferral.LARGE_OR_ILLIQUID
    return Deferral.STANDARD


def deferral_ns(policy: PublicationPolicy, notional_minor: int, liquid: bool) -> int:
    """How long after its execution a trade of ``notional_minor`` is published."""
    seconds = {
        Deferral.STANDARD: policy.deferral_standard_s,
        Deferral.LARGE_OR_ILLIQUID: policy.deferral_large_or_illiquid_s,
        Deferral.LARGE_AND_ILLIQUID: policy.deferral_large_and_illiquid_s,
    }[deferral_class(policy, notional_minor, liquid)]
    return seconds * SECOND_NS


def price_band(price_minor: int, significant_figures: int) -> tuple[int, int]:
    """The band ``[low, high)`` holding ``price_minor`` on a grid of ``significant_figures``
    significant figures: the grid does not depend on the price within it, so the band
    tells nothing more than which cell the price lies in (a band centred on the price
    would publish it as its midpoint).

    >>> price_band(99, 2), price_band(100, 2), price_band(5_050, 1)
    ((99, 100), (100, 110), (5000, 6000))
    """
    assert price_minor > 0 and significant_figures > 0
    step = 10 ** max(0, len(str(price_minor)) - significant_figures)
    low = price_minor // step * step
    return low, low + step
