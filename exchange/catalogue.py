"""The catalogue: data products and the instruments that license them.

A :class:`DataProduct` is what is licensed (a provider's dataset, described for buyers and
for the compliance gate). An :class:`Instrument` is what trades: one product under one set
of :class:`LicenceTerms`, with its trading parameters. Quality scores are integers in basis
points (0..10,000 = 0..1) so that every journalled value is an integer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from matching import InstrumentSpec, SealedBidPricing, TradingMode

__all__ = [
    "MONTH_NS",
    "Category",
    "Classification",
    "DataProduct",
    "Exclusivity",
    "Instrument",
    "LicenceTerms",
    "ProductStatus",
    "Quality",
    "Scope",
    "Territory",
    "UpdateFrequency",
]

# A licence month is the mean Gregorian month (365.2425 / 12 days), so a licence's expiry
# is a pure function of its start and its duration, with no calendar or time zone involved.
MONTH_NS = 2_629_746 * 1_000_000_000
DAY_NS = 86_400 * 1_000_000_000
BASIS_POINTS = 10_000


class Category(StrEnum):
    TRANSPORT = "transport"
    FINANCE = "finance"
    HEALTH = "health"
    ENERGY = "energy"
    RETAIL = "retail"
    GEOSPATIAL = "geospatial"
    PUBLIC_SERVICES = "public_services"
    OTHER = "other"


class UpdateFrequency(StrEnum):
    REAL_TIME = "real_time"
    DAILY = "daily"
    MONTHLY = "monthly"
    STATIC = "static"


class Classification(StrEnum):
    """The data-security class of the data (general, important, core)."""

    GENERAL = "general"
    IMPORTANT = "important"  # lists only with a regulator's approval as well
    CORE = "core"  # never lists


class ProductStatus(StrEnum):
    PENDING_REVIEW = "pending_review"
    CHANGES_REQUESTED = "changes_requested"
    AWAITING_REGULATOR = "awaiting_regulator"  # important data, approved by a reviewer
    APPROVED = "approved"  # may list instruments
    REJECTED = "rejected"
    SUSPENDED = "suspended"  # its instruments are halted and their orders cancelled


class Exclusivity(StrEnum):
    EXCLUSIVE = "exclusive"
    NON_EXCLUSIVE = "non_exclusive"


class Scope(StrEnum):
    INTERNAL = "internal"
    COMMERCIAL = "commercial"
    RESALE = "resale"


class Territory(StrEnum):
    DOMESTIC = "domestic"
    CROSS_BORDER = "cross_border"


@dataclass(frozen=True, slots=True)
class Quality:
    """Quality scores in basis points (10,000 = perfect)."""

    completeness_bp: int
    accuracy_bp: int
    timeliness_bp: int
    consistency_bp: int


@dataclass(slots=True)
class DataProduct:
    product_id: str
    provider: str
    title: str
    description: str
    category: Category
    region: str
    record_count: int
    coverage_start: str  # ISO dates: the period the records describe
    coverage_end: str
    update_frequency: UpdateFrequency
    quality: Quality
    personal_information: bool
    classification: Classification
    desensitised: bool
    lawful_source_attestation: str
    cost_basis_minor: int  # replacement cost of one licence under the reference terms
    created_ns: int
    status: ProductStatus = ProductStatus.PENDING_REVIEW
    status_before_suspension: ProductStatus | None = None
    instruments: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LicenceTerms:
    exclusivity: Exclusivity
    duration_months: int
    scope: Scope
    territory: Territory
    transferable: bool


@dataclass(slots=True)
class Instrument:
    symbol: str
    product_id: str
    provider: str
    terms: LicenceTerms
    tick_size_minor: int
    lot_size_units: int
    trading_mode: TradingMode
    issuance_cap_units: int
    fee_rate_bp: int  # charged to the seller, in basis points of the notional
    price_band_low_minor: int | None
    price_band_high_minor: int | None
    sealed_bid_pricing: SealedBidPricing
    listed_ns: int

    def spec(self) -> InstrumentSpec:
        """What the matching engine needs to know about this instrument."""
        return InstrumentSpec(
            symbol=self.symbol,
            tick_size=self.tick_size_minor,
            lot_size=self.lot_size_units,
            trading_mode=self.trading_mode,
            price_band_low=self.price_band_low_minor,
            price_band_high=self.price_band_high_minor,
            max_order_quantity=self.issuance_cap_units,
            sealed_bid_pricing=self.sealed_bid_pricing,
        )

    def expiry_ns(self, acquired_ns: int) -> int:
        """When a licence acquired at ``acquired_ns`` expires: ``duration_months`` later,
        at the end of that UTC day. Licences bought on one day share one expiry, so a
        holder has one holding (and one ledger account) per day of purchase, not per trade."""
        end = acquired_ns + self.terms.duration_months * MONTH_NS
        return -(-end // DAY_NS) * DAY_NS

    def fee_minor(self, notional_minor: int) -> int:
        """The exchange's fee on a trade, rounded down to the minor unit."""
        return notional_minor * self.fee_rate_bp // BASIS_POINTS
