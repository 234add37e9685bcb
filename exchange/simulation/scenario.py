"""A scenario: the market that a simulation runs, as plain frozen values.

Two stages of one scenario: :class:`ScenarioSpec` is what the file says, read without a seed
(``scenario_reader``), its products given as :class:`ProductDraw` ranges and choices;
:class:`Scenario` is the spec with its catalogue drawn from a seed (``scenario_catalogue``),
each product a :class:`ProductSpec`. Money is in integer minor units (fen), except the draws'
cost basis, which is drawn in yuan as the file gives it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_CATEGORY_BASE",
    "DEFAULT_FRESHNESS_PREMIUM",
    "DEFAULT_LENDER_LIMIT_MINOR",
    "DEFAULT_SCOPE_PREMIUM",
    "AgentParams",
    "AgentSpec",
    "BuyerParams",
    "LenderParams",
    "ListingSpec",
    "MarketMakerParams",
    "MarketSpec",
    "NoiseParams",
    "ParticipantSpec",
    "Pledge",
    "ProductDraw",
    "ProductSpec",
    "ProviderParams",
    "Scenario",
    "ScenarioSpec",
    "Shock",
    "TermsSpec",
    "TruthSpec",
]

# The generating process's defaults (docs/simulation.md, "True values"): yuan per licence of
# a product of one million records, perfect quality, static, twelve months of coverage,
# under the reference terms (non-exclusive, 12 months, internal use, domestic).
DEFAULT_CATEGORY_BASE = {
    "transport": 300.0,
    "finance": 800.0,
    "health": 600.0,
    "energy": 500.0,
    "retail": 250.0,
    "geospatial": 400.0,
    "public_services": 150.0,
    "other": 200.0,
}
DEFAULT_FRESHNESS_PREMIUM = {"real_time": 0.35, "daily": 0.20, "monthly": 0.08, "static": 0.0}
DEFAULT_SCOPE_PREMIUM = {"internal": 0.0, "commercial": 0.35, "resale": 0.80}
# A facility's limit unless the scenario sets one: high enough that the collateral, through
# the initial LTV, bounds what is drawn.
DEFAULT_LENDER_LIMIT_MINOR = 100_000_000 * 100


@dataclass(frozen=True, slots=True)
class TruthSpec:
    """The generating process of true values (docs/simulation.md): log-linear in the
    product's attributes and the licence terms, plus product noise and a fundamental path."""

    category_base: dict[str, float]
    record_elasticity: float = 0.35
    quality_elasticity: float = 1.0
    coverage_elasticity: float = 0.15
    freshness_premium: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_FRESHNESS_PREMIUM)
    )
    region_premium: dict[str, float] = field(default_factory=dict)
    exclusivity_premium: float = 0.8
    duration_elasticity: float = 0.7
    scope_premium: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SCOPE_PREMIUM))
    cross_border_premium: float = 0.15
    noise_sd: float = 0.25
    cost_bias: float = -0.1
    cost_sd: float = 0.35
    volatility_per_day: float = 0.0
    volatility_persistence: float = 0.98
    volatility_of_volatility: float = 0.0


@dataclass(frozen=True, slots=True)
class ParticipantSpec:
    participant_id: str
    name: str
    roles: tuple[str, ...]
    cash_minor: int
    group: str  # the scenario entry's id: the participant itself, or its group


@dataclass(frozen=True, slots=True)
class ProductDraw:
    """One product as the file describes it, before the catalogue's stream draws it: a text
    attribute is a tuple of choices and a number a ``(low, high)`` range (one choice, or
    ``low == high``, for a fixed value); quality is one range per ``QUALITY_DIMENSIONS``."""

    key: str  # scenario id (lower case), the symbol's first part
    group: str
    provider: str
    title: str
    category: tuple[str, ...]
    region: tuple[str, ...]
    update_frequency: tuple[str, ...]
    record_count: tuple[float, float]  # drawn log-uniformly
    coverage_months: tuple[float, float]
    quality: tuple[tuple[float, float], ...]
    classification: str
    personal_information: bool
    desensitised: bool
    lawful_source: bool
    cost_basis: tuple[float, float] | None  # yuan, log-uniform; None: the generating process's


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """One product as drawn: attributes in the catalogue's units (quality in basis points)."""

    key: str  # scenario id (lower case), the symbol's first part
    group: str
    provider: str
    title: str
    category: str
    region: str
    record_count: int
    coverage_months: int
    update_frequency: str
    quality_bp: tuple[int, int, int, int]
    classification: str
    personal_information: bool
    desensitised: bool
    lawful_source: bool
    cost_basis_minor: int | None  # None: drawn by the generating process
    noise_z: float  # the product's standard-normal latent deviation
    cost_z: float  # the standard-normal draw of its cost basis


@dataclass(frozen=True, slots=True)
class TermsSpec:
    key: str
    exclusivity: str
    duration_months: int
    scope: str
    territory: str
    transferable: bool


@dataclass(frozen=True, slots=True)
class ListingSpec:
    symbol: str
    product: str  # ProductSpec.key
    terms: str  # TermsSpec.key
    trading_mode: str
    auction_every_ticks: int
    tick_size_minor: int
    lot_size_units: int
    issuance_cap_units: int
    fee_rate_bp: int
    # Trades only by request for quote (exchange.simulation.rfq_agents): no book agent
    # touches it.
    rfq_only: bool = False


@dataclass(frozen=True, slots=True)
class ProviderParams:
    markup: float = 1.3
    min_markup: float = 0.6
    max_markup: float = 8.0
    learning_rate: float = 0.05
    patience_ticks: int = 8
    ask_units: int = 5
    requote_ticks: int = 4


@dataclass(frozen=True, slots=True)
class BuyerParams:
    budget_minor: int | None = None  # None: the participant's cash
    activity: float = 0.05
    value_dispersion: float = 0.25
    min_bid_fraction: float = 0.6
    max_units: int = 2
    order_units: int = 1
    order_lifetime_ticks: int = 8
    follows: int = 0  # 0: every listed instrument
    resell: bool = True
    rotate: bool = True
    initial_units: int = 0
    instruments: tuple[str, ...] = ()  # explicit symbols; empty: see follows


@dataclass(frozen=True, slots=True)
class MarketMakerParams:
    budget_minor: int | None = None
    half_spread_ticks: int = 3
    quote_units: int = 5
    max_inventory_units: int = 50
    skew_bp_per_unit: float = 5.0
    requote_ticks: int = 1
    ema_weight: float = 0.2
    follows: int = 0
    initial_units: int = 0
    instruments: tuple[str, ...] = ()  # explicit symbols; empty: see follows


@dataclass(frozen=True, slots=True)
class NoiseParams:
    budget_minor: int | None = None
    activity: float = 0.05
    aggressive_share: float = 0.5
    price_sd_ticks: float = 4.0
    max_order_units: int = 3
    max_inventory_units: int = 20
    order_lifetime_ticks: int = 20
    follows: int = 0
    initial_units: int = 0
    trend_weight: float = 0.0
    trend_ticks: int = 10
    instruments: tuple[str, ...] = ()  # explicit symbols; empty: see follows


@dataclass(frozen=True, slots=True)
class Pledge:
    symbol: str
    units: int


@dataclass(frozen=True, slots=True)
class LenderParams:
    """A bank's loan facility to ``borrower`` against its unsold licences (``pledged``),
    and the borrower's handling of it (docs/simulation.md, "Lenders")."""

    borrower: str
    pledged: tuple[Pledge, ...]
    loan_to_value: float = 0.5  # the initial LTV: the most the borrower may draw to
    margin_call_ltv: float = 0.65
    liquidation_ltv: float = 0.8
    valuation_every_days: int = 1  # how often the exchange values the pledged instruments
    limit_minor: int = DEFAULT_LENDER_LIMIT_MINOR
    rate_bp: int = 500  # a year, simple, ACT/365
    term_days: int = 365
    cure_hours: float = 24.0
    auction_hours: float = 1.0
    draw_share: float = 0.9  # of what the initial LTV allows, drawn once
    spend_share: float = 1.0  # of the loan the borrower takes out of the exchange at once
    top_up_units: int = 0  # more unsold units the borrower may pledge to cure a call


@dataclass(frozen=True, slots=True)
class RfqBuyerParams:
    budget_minor: int | None = None
    activity: float = 0.02
    value_dispersion: float = 0.25
    request_units: int = 1
    max_units: int = 2
    response_ticks: int = 2
    follows: int = 0  # 0: every instrument listed rfq_only
    instruments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RfqProviderParams:
    markup: float = 1.3
    min_markup: float = 0.6
    max_markup: float = 8.0
    learning_rate: float = 0.05


AgentParams = (
    ProviderParams | BuyerParams | MarketMakerParams | NoiseParams | LenderParams
    | RfqBuyerParams | RfqProviderParams
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AgentSpec:
    kind: str
    participants: tuple[str, ...]
    params: AgentParams
    where: str  # "agents[2]", for messages


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """Exchange-wide settings: the daily close, and the noise traders' shared attention."""

    close_daily: bool = True
    attention_persistence: float = 0.98
    attention_volatility: float = 0.0
    # How the desk values collateral each day: "market_approach" (exchange.pricing on the
    # run's trades), or "day_trades" (the volume-weighted price of the instrument's own trades
    # of the last 24 hours, their range as the valuation's; the market approach without any).
    collateral_valuation: str = "market_approach"


@dataclass(frozen=True, slots=True)
class Shock:
    """From the start of ``day``, every true value in ``category`` is ``factor`` times what
    it would have been: a category repriced at once."""

    day: int
    category: str
    factor: float


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """A scenario file as read: everything but the products' draws is settled."""

    name: str
    description: str
    source: str  # the file as named, for messages and reports
    days: int
    start_date: dt.date
    ticks_per_day: int
    session_start_hour: int
    session_hours: float
    catalogue_seed: int | None
    sample_every_ticks: int
    bar_ticks: int
    burn_in_ticks: int  # ticks at the start that the stylized facts leave out
    market: MarketSpec
    truth: TruthSpec
    participants: tuple[ParticipantSpec, ...]
    product_draws: tuple[ProductDraw, ...]
    terms: dict[str, TermsSpec]
    listings: tuple[ListingSpec, ...]
    agents: tuple[AgentSpec, ...]
    shocks: tuple[Shock, ...]
    text: str  # the file's text, so a sweep worker re-reads exactly what was validated

    @property
    def tick_ns(self) -> int:
        return round(self.session_hours * 3_600 / self.ticks_per_day * 1e9)


@dataclass(frozen=True, slots=True)
class Scenario(ScenarioSpec):
    """A scenario ready to run: its spec and the catalogue drawn from it."""

    products: tuple[ProductSpec, ...]  # one per draw, in the draws' order
