"""Scenario files: a market to simulate, in TOML, read with the standard library's ``tomllib``.

:func:`load_scenario` reads and validates a file and returns a frozen :class:`Scenario`; any
problem raises :class:`ScenarioError` whose message names the file and the field, e.g.
``scenario.toml: agents[2].budget: must be positive`` (array indices count from 0). Unknown
fields are errors too, so a misspelt parameter never silently takes its default.

Every field, its unit and its default are listed in ``docs/simulation.md``. Money is in
currency units (yuan) in the file and in integer minor units (fen) here, rounded to the
nearest fen. A product attribute may be a fixed value or a *draw* from the catalogue's
random stream: a two-element ``[low, high]`` range for a number (uniform; log-uniform for
``record_count``) or a list of choices for a text; ``count = N`` makes a group of N products
(``<id>-001`` ...) drawn the same way, and a participant with ``count = N`` is a group of N
participants (``<id>-01`` ...).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from exchange.catalogue import (
    Category,
    Classification,
    Exclusivity,
    Scope,
    Territory,
    UpdateFrequency,
)
from exchange.money import MAX_AMOUNT_MINOR, MINOR_PER_UNIT
from exchange.participants import Role
from exchange.validation import MAX_DURATION_MONTHS, QUALITY_DIMENSIONS

__all__ = [
    "AGENT_KINDS",
    "RESERVED_PARTICIPANTS",
    "AgentSpec",
    "BuyerParams",
    "LenderParams",
    "ListingSpec",
    "MarketMakerParams",
    "MarketSpec",
    "NoiseParams",
    "ParticipantSpec",
    "Pledge",
    "ProductSpec",
    "ProviderParams",
    "Scenario",
    "ScenarioError",
    "TermsSpec",
    "TruthSpec",
    "load_scenario",
    "parse_scenario",
]

# Limits: a scenario is a laboratory, not a production catalogue.
MAX_DAYS = 3_650
MAX_TICKS_PER_DAY = 100_000
MAX_GROUP = 10_000
MAX_PARTICIPANTS = 20_000
MAX_PRODUCTS = 20_000
MAX_LISTED = 20_000
MAX_TEXT = 200
# The simulator's own participants: the exchange desk, its reviewer and the regulator.
RESERVED_PARTICIPANTS = ("sim-admin", "sim-review", "sim-regulator", "operator")
AGENT_KINDS = ("provider", "buyer", "market_maker", "noise", "lender")
SIMULATED_MODES = ("continuous", "call_auction")

_PARTICIPANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,27}")
_PRODUCT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,15}")
_TERMS_ID = re.compile(r"[A-Z0-9][A-Z0-9-]{0,9}")
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9.-]{1,31}")

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


class ScenarioError(ValueError):
    """A scenario file that cannot be simulated; the message names the file and the field."""


# ------------------------------------------------------------------ the scenario's parts


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
    borrower: str
    pledged: tuple[Pledge, ...]
    loan_to_value: float = 0.5
    valuation_every_days: int = 1


AgentParams = ProviderParams | BuyerParams | MarketMakerParams | NoiseParams | LenderParams


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


@dataclass(frozen=True, slots=True)
class Scenario:
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
    products: tuple[ProductSpec, ...]  # drawn with the catalogue seed given at load
    terms: dict[str, TermsSpec]
    listings: tuple[ListingSpec, ...]
    agents: tuple[AgentSpec, ...]
    text: str  # the file's text, so a sweep worker re-reads exactly what was validated

    @property
    def tick_ns(self) -> int:
        return round(self.session_hours * 3_600 / self.ticks_per_day * 1e9)


# ------------------------------------------------------------------ reading


def load_scenario(path: str | Path, *, seed: int = 0) -> Scenario:
    """Read and validate the scenario at ``path``; products are drawn with ``seed`` unless
    the file fixes ``catalogue_seed``. Raises :class:`ScenarioError`."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"{source}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{source}: not UTF-8 text") from None
    return parse_scenario(text, source=source, seed=seed)


def parse_scenario(text: str, *, source: str = "scenario.toml", seed: int = 0) -> Scenario:
    """Validate scenario ``text``; see :func:`load_scenario`."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{source}: not valid TOML: {error}") from None
    return _Reader(source).scenario(document, text, seed)


# ------------------------------------------------------------------ validation


class _Table:
    """One TOML table under validation: typed getters that name the field on error, and
    :meth:`done` that refuses fields nobody asked for."""

    def __init__(self, reader: _Reader, path: str, values: Any) -> None:
        self.reader = reader
        self.path = path
        if not isinstance(values, dict):
            reader.fail(path, "must be a table")
        self.values: dict[str, Any] = values
        self.seen: set[str] = set()

    def where(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, message: str) -> NoReturn:
        self.reader.fail(self.where(name), message)

    def has(self, name: str) -> bool:
        return name in self.values

    def raw(self, name: str, default: Any = ...) -> Any:
        self.seen.add(name)
        if name not in self.values:
            if default is ...:
                self.fail(name, "is required")
            return default
        return self.values[name]

    def text(
        self,
        name: str,
        default: Any = ...,
        *,
        pattern: re.Pattern[str] | None = None,
        choices: tuple[str, ...] | None = None,
    ) -> Any:
        value = self.raw(name, default)
        if value is default and default is not ...:
            return value
        return self.check_text(name, value, pattern, choices)

    def check_text(
        self,
        name: str,
        value: Any,
        pattern: re.Pattern[str] | None = None,
        choices: tuple[str, ...] | None = None,
    ) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
            self.fail(name, f"must be non-empty text of at most {MAX_TEXT} characters")
        if choices is not None and value not in choices:
            self.fail(name, f"{value!r} is not one of: {', '.join(choices)}")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(name, f"{value!r} does not match {pattern.pattern}")
        return value

    def number(
        self,
        name: str,
        default: Any = ...,
        *,
        low: float | None = None,
        high: float | None = None,
        positive: bool = False,
    ) -> Any:
        value = self.raw(name, default)
        if value is default and default is not ...:
            return value
        return self.check_number(name, value, low=low, high=high, positive=positive)

    def check_number(
        self,
        name: str,
        value: Any,
        *,
        low: float | None = None,
        high: float | None = None,
        positive: bool = False,
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(name, f"must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            self.fail(name, "must be a finite number")
        if positive and number <= 0:
            self.fail(name, "must be positive")
        if low is not None and number < low:
            self.fail(name, f"must be at least {low:g}")
        if high is not None and number > high:
            self.fail(name, f"must be at most {high:g}")
        return number

    def integer(
        self, name: str, default: Any = ..., *, low: int | None = None, high: int | None = None
    ) -> Any:
        value = self.raw(name, default)
        if value is default and default is not ...:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, f"must be a whole number, got {value!r}")
        if low is not None and value < low:
            self.fail(name, "must be positive" if low == 1 else f"must be at least {low}")
        if high is not None and value > high:
            self.fail(name, f"must be at most {high}")
        return value

    def boolean(self, name: str, default: Any = ...) -> Any:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            self.fail(name, f"must be true or false, got {value!r}")
        return value

    def money(self, name: str, default: Any = ..., *, allow_zero: bool = False) -> Any:
        """Yuan in the file, fen here (rounded to the nearest fen)."""
        value = self.raw(name, default)
        if value is default and default is not ...:
            return value
        number = self.check_number(name, value, low=0.0)
        minor = round(number * MINOR_PER_UNIT)
        if minor <= 0 and not (allow_zero and minor == 0):
            self.fail(name, "must be positive")
        if minor > MAX_AMOUNT_MINOR:
            self.fail(name, f"must be at most {MAX_AMOUNT_MINOR // MINOR_PER_UNIT:,}")
        return minor

    def table(self, name: str) -> _Table:
        return _Table(self.reader, self.where(name), self.raw(name, {}))

    def tables(self, name: str) -> list[_Table]:
        values = self.raw(name, [])
        if not isinstance(values, list):
            self.fail(name, "must be an array of tables ([[...]])")
        return [_Table(self.reader, f"{self.where(name)}[{i}]", v) for i, v in enumerate(values)]

    def float_map(
        self,
        name: str,
        defaults: dict[str, float],
        keys: tuple[str, ...] | None,
        *,
        low: float | None = None,
        positive: bool = False,
    ) -> dict[str, float]:
        """A table of numbers (``{transport = 300.0}``) over ``defaults``."""
        result = dict(defaults)
        sub = self.table(name)
        for key in sorted(sub.values):
            if keys is not None and key not in keys:
                sub.fail(key, f"is not one of: {', '.join(keys)}")
            result[key] = sub.number(key, low=low, positive=positive)
        return result

    def done(self) -> None:
        unknown = sorted(set(self.values) - self.seen)
        if unknown:
            self.fail(unknown[0], "is not a known field (see docs/simulation.md)")


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> NoReturn:
        raise ScenarioError(f"{self.source}: {where}: {message}")

    def scenario(self, document: dict[str, Any], text: str, seed: int) -> Scenario:
        top = _Table(self, "", document)
        head = top.table("scenario")
        name = head.text("name")
        description = head.text("description", "")
        days = head.integer("days", 1, low=1, high=MAX_DAYS)
        start = head.text("start_date", "2026-03-02")
        try:
            start_date = dt.date.fromisoformat(start)
        except ValueError:
            head.fail("start_date", f"{start!r} is not an ISO date (YYYY-MM-DD)")
        ticks = head.integer("ticks_per_day", 100, low=1, high=MAX_TICKS_PER_DAY)
        start_hour = head.integer("session_start_hour", 1, low=0, high=23)
        hours = head.number("session_hours", 8.0, positive=True, high=24.0)
        if start_hour + hours > 24:
            head.fail("session_hours", "the session must end by midnight UTC")
        if hours * 3_600 / ticks < 0.001:
            head.fail("ticks_per_day", "ticks would be shorter than a millisecond")
        catalogue_seed = head.integer("catalogue_seed", None, low=0, high=2**63 - 1)
        sample_every = head.integer("sample_every_ticks", max(1, ticks // 500), low=1)
        bar_ticks = head.integer("bar_ticks", 5, low=1, high=ticks)
        burn_in = head.integer("burn_in_ticks", 0, low=0)
        head.done()

        market_table = top.table("market")
        market = MarketSpec(
            close_daily=market_table.boolean("close_daily", True),
            attention_persistence=market_table.number(
                "attention_persistence", 0.98, low=0.0, high=0.9999
            ),
            attention_volatility=market_table.number(
                "attention_volatility", 0.0, low=0.0, high=2.0
            ),
        )
        market_table.done()

        truth = self.truth(top.table("truth"))
        participants = self.participants(top.tables("participants"))
        by_id = {p.participant_id: p for p in participants}
        groups: dict[str, list[str]] = {}
        for p in participants:
            groups.setdefault(p.group, []).append(p.participant_id)
        draw_seed = seed if catalogue_seed is None else catalogue_seed
        products = self.products(top.tables("products"), by_id, groups, draw_seed)
        terms = self.terms(top.table("terms"))
        listings = self.listings(top.tables("listings"), products, terms)
        agents = self.agents(top.tables("agents"), by_id, groups, listings, products)
        top.done()
        return Scenario(
            name=name,
            description=description,
            source=self.source,
            days=days,
            start_date=start_date,
            ticks_per_day=ticks,
            session_start_hour=start_hour,
            session_hours=hours,
            catalogue_seed=catalogue_seed,
            sample_every_ticks=sample_every,
            bar_ticks=bar_ticks,
            burn_in_ticks=burn_in,
            market=market,
            truth=truth,
            participants=tuple(participants),
            products=tuple(products),
            terms=terms,
            listings=tuple(listings),
            agents=tuple(agents),
            text=text,
        )

    # -- truth ---------------------------------------------------------------------------

    def truth(self, t: _Table) -> TruthSpec:
        categories = tuple(c.value for c in Category)
        base = t.float_map("category_base", DEFAULT_CATEGORY_BASE, categories, positive=True)
        spec = TruthSpec(
            category_base=base,
            record_elasticity=t.number("record_elasticity", 0.35, low=0.0, high=2.0),
            quality_elasticity=t.number("quality_elasticity", 1.0, low=0.0, high=10.0),
            coverage_elasticity=t.number("coverage_elasticity", 0.15, low=-2.0, high=2.0),
            freshness_premium=t.float_map(
                "freshness_premium",
                DEFAULT_FRESHNESS_PREMIUM,
                tuple(f.value for f in UpdateFrequency),
            ),
            region_premium=t.float_map("region_premium", {}, None),
            exclusivity_premium=t.number("exclusivity_premium", 0.8, low=-5.0, high=5.0),
            duration_elasticity=t.number("duration_elasticity", 0.7, low=0.0, high=2.0),
            scope_premium=t.float_map(
                "scope_premium", DEFAULT_SCOPE_PREMIUM, tuple(s.value for s in Scope)
            ),
            cross_border_premium=t.number("cross_border_premium", 0.15, low=-5.0, high=5.0),
            noise_sd=t.number("noise_sd", 0.25, low=0.0, high=3.0),
            cost_bias=t.number("cost_bias", -0.1, low=-5.0, high=5.0),
            cost_sd=t.number("cost_sd", 0.35, low=0.0, high=3.0),
            volatility_per_day=t.number("volatility_per_day", 0.0, low=0.0, high=1.0),
            volatility_persistence=t.number("volatility_persistence", 0.98, low=0.0, high=0.9999),
            volatility_of_volatility=t.number("volatility_of_volatility", 0.0, low=0.0, high=2.0),
        )
        t.done()
        return spec

    # -- participants --------------------------------------------------------------------

    def participants(self, tables: list[_Table]) -> list[ParticipantSpec]:
        result: list[ParticipantSpec] = []
        seen: set[str] = set()
        roles_allowed = tuple(r.value for r in Role if r is not Role.ADMIN)
        for t in tables:
            group = t.text("id", pattern=_PARTICIPANT_ID)
            count = t.integer("count", None, low=1, high=MAX_GROUP)
            name = t.text("name", group)
            roles = t.raw("roles")
            if not isinstance(roles, list) or not roles:
                t.fail("roles", f"must be a non-empty list of: {', '.join(roles_allowed)}")
            checked = tuple(
                t.check_text(f"roles[{i}]", role, choices=roles_allowed)
                for i, role in enumerate(roles)
            )
            cash = t.money("cash", 0, allow_zero=True)
            t.done()
            if count is None:
                ids = [group]
            else:
                width = max(2, len(str(count)))
                ids = [f"{group}-{i:0{width}d}" for i in range(1, count + 1)]
            for number, participant_id in enumerate(ids, start=1):
                if not _PARTICIPANT_ID.fullmatch(participant_id):
                    t.fail("id", f"{participant_id!r} would be longer than 28 characters")
                if participant_id in RESERVED_PARTICIPANTS:
                    t.fail("id", f"{participant_id!r} is reserved for the simulator")
                if participant_id in seen:
                    t.fail("id", f"participant {participant_id!r} is defined twice")
                seen.add(participant_id)
                label = name if count is None else f"{name} {number}"
                result.append(ParticipantSpec(participant_id, label, checked, cash, group))
            if len(result) > MAX_PARTICIPANTS:
                t.fail("count", f"a scenario holds at most {MAX_PARTICIPANTS} participants")
        if not result:
            self.fail("participants", "a scenario needs at least one participant")
        return result

    # -- products ------------------------------------------------------------------------

    def products(
        self,
        tables: list[_Table],
        participants: dict[str, ParticipantSpec],
        groups: dict[str, list[str]],
        seed: int,
    ) -> list[ProductSpec]:
        from exchange.simulation.rng import derive_rng  # one seed scheme for every stream

        rng = derive_rng(seed, "catalogue")
        result: list[ProductSpec] = []
        keys: set[str] = set()
        categories = tuple(c.value for c in Category)
        frequencies = tuple(f.value for f in UpdateFrequency)
        classes = tuple(c.value for c in Classification)
        for t in tables:
            key = t.text("id", pattern=_PRODUCT_ID)
            count = t.integer("count", None, low=1, high=MAX_GROUP)
            provider_ref = t.text("provider")
            members = groups.get(provider_ref)
            if members is None:
                t.fail("provider", f"no participant or group {provider_ref!r}")
            for member in members:
                if "provider" not in participants[member].roles:
                    t.fail("provider", f"participant {member!r} does not have the role provider")
            title = t.text("title", key)
            category_draw = self._text_draw(t, "category", categories, None)
            region_draw = self._text_draw(t, "region", None, "Zhejiang")
            frequency_draw = self._text_draw(t, "update_frequency", frequencies, "daily")
            records_draw = self._number_draw(t, "record_count", 1_000_000, low=1, high=1e15)
            coverage_draw = self._number_draw(t, "coverage_months", 12, low=1, high=600)
            quality_draw = self._quality_draw(t)
            classification = t.text("classification", "general", choices=classes)
            personal = t.boolean("personal_information", False)
            desensitised = t.boolean("desensitised", False)
            lawful = t.boolean("lawful_source", True)
            cost_draw = (
                self._number_draw(t, "cost_basis", None, low=0.01, high=MAX_AMOUNT_MINOR / 100)
                if t.has("cost_basis")
                else None
            )
            t.done()
            if count is None:
                product_keys = [key]
            else:
                product_keys = [f"{key}-{i:03d}" for i in range(1, count + 1)]
            for index, product_key in enumerate(product_keys):
                if not _PRODUCT_ID.fullmatch(product_key):
                    t.fail("id", f"{product_key!r} would be longer than 16 characters")
                if product_key in keys:
                    t.fail("id", f"product {product_key!r} is defined twice")
                keys.add(product_key)
                # Draws in a fixed order, so a catalogue seed always gives one catalogue.
                category = _draw_text(rng, category_draw)
                region = _draw_text(rng, region_draw)
                frequency = _draw_text(rng, frequency_draw)
                records = round(_draw_number(rng, records_draw, log=True))
                coverage = max(1, round(_draw_number(rng, coverage_draw, log=False)))
                quality = tuple(
                    round(10_000 * _draw_number(rng, quality_draw[i], log=False)) for i in range(4)
                )
                cost = None
                if cost_draw is not None:
                    cost = round(_draw_number(rng, cost_draw, log=True) * MINOR_PER_UNIT)
                noise_z, cost_z = rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0)
                label = title if count is None else f"{title} #{index + 1}"
                result.append(
                    ProductSpec(
                        key=product_key,
                        group=key,
                        provider=members[index % len(members)],
                        title=label,
                        category=category,
                        region=region,
                        record_count=records,
                        coverage_months=coverage,
                        update_frequency=frequency,
                        quality_bp=quality,  # type: ignore[arg-type]
                        classification=classification,
                        personal_information=personal,
                        desensitised=desensitised,
                        lawful_source=lawful,
                        cost_basis_minor=cost,
                        noise_z=noise_z,
                        cost_z=cost_z,
                    )
                )
            if len(result) > MAX_PRODUCTS:
                t.fail("count", f"a scenario holds at most {MAX_PRODUCTS} products")
        if not result:
            self.fail("products", "a scenario needs at least one product")
        return result

    def _text_draw(
        self, t: _Table, name: str, choices: tuple[str, ...] | None, default: str | None
    ) -> tuple[str, ...]:
        value = t.raw(name, ... if default is None else default)
        values = value if isinstance(value, list) else [value]
        if not values:
            t.fail(name, "must name at least one choice")
        suffix = "" if isinstance(value, str) else "[{}]"
        return tuple(
            t.check_text(name + suffix.format(i), v, choices=choices) for i, v in enumerate(values)
        )

    def _number_draw(
        self,
        t: _Table,
        name: str,
        default: float | None,
        *,
        low: float,
        high: float,
        value: Any = ...,
    ) -> tuple[float, float]:
        if value is ...:
            value = t.raw(name, ... if default is None else default)
        if isinstance(value, list):
            if len(value) != 2:
                t.fail(name, "a range is [low, high]")
            a = t.check_number(f"{name}[0]", value[0], low=low, high=high)
            b = t.check_number(f"{name}[1]", value[1], low=low, high=high)
            if a > b:
                t.fail(name, "a range's low is above its high")
            return a, b
        number = t.check_number(name, value, low=low, high=high)
        return number, number

    def _quality_draw(self, t: _Table) -> list[tuple[float, float]]:
        value = t.raw("quality", 0.9)
        if isinstance(value, dict):
            sub = _Table(self, t.where("quality"), value)
            draws = []
            for dimension in QUALITY_DIMENSIONS:
                number = sub.number(dimension, low=0.0, high=1.0)
                draws.append((number, number))
            sub.done()
            return draws
        draw = self._number_draw(t, "quality", None, low=0.0, high=1.0, value=value)
        return [draw] * 4

    # -- terms and listings --------------------------------------------------------------

    def terms(self, t: _Table) -> dict[str, TermsSpec]:
        result: dict[str, TermsSpec] = {}
        for key in sorted(t.values):
            t.seen.add(key)
            if not _TERMS_ID.fullmatch(key):
                t.fail(key, f"a terms id must match {_TERMS_ID.pattern}")
            sub = t.table(key)
            result[key] = TermsSpec(
                key=key,
                exclusivity=sub.text(
                    "exclusivity", "non_exclusive", choices=tuple(e.value for e in Exclusivity)
                ),
                duration_months=sub.integer("duration_months", 12, low=1, high=MAX_DURATION_MONTHS),
                scope=sub.text("scope", "internal", choices=tuple(s.value for s in Scope)),
                territory=sub.text(
                    "territory", "domestic", choices=tuple(x.value for x in Territory)
                ),
                transferable=sub.boolean("transferable", True),
            )
            sub.done()
        if not result:
            self.fail("terms", "a scenario needs at least one set of licence terms")
        return result

    def listings(
        self, tables: list[_Table], products: list[ProductSpec], terms: dict[str, TermsSpec]
    ) -> list[ListingSpec]:
        result: list[ListingSpec] = []
        symbols: set[str] = set()
        by_group: dict[str, list[ProductSpec]] = {}
        for product in products:
            by_group.setdefault(product.group, []).append(product)
            if product.key != product.group:
                by_group.setdefault(product.key, []).append(product)
        exclusive_products: set[str] = set()
        listed_products: set[str] = set()
        for t in tables:
            refs = t.raw("products")
            if refs == "*":
                chosen = list(products)
            else:
                if not isinstance(refs, list) or not refs:
                    t.fail("products", 'must be a non-empty list of product ids, or "*"')
                chosen = []
                for i, ref in enumerate(refs):
                    t.check_text(f"products[{i}]", ref)
                    if ref not in by_group:
                        t.fail(f"products[{i}]", f"no product or product group {ref!r}")
                    chosen.extend(by_group[ref])
            terms_refs = t.raw("terms")
            if isinstance(terms_refs, str):
                terms_refs = [terms_refs]
            if not isinstance(terms_refs, list) or not terms_refs:
                t.fail("terms", "must name licence terms defined under [terms]")
            for i, ref in enumerate(terms_refs):
                if ref not in terms:
                    t.fail(f"terms[{i}]", f"no licence terms {ref!r} under [terms]")
            mode = t.text("trading_mode", "continuous", choices=SIMULATED_MODES)
            every = t.integer("auction_every_ticks", 4, low=1)
            tick = t.money("tick_size", 1.0)
            lot = t.integer("lot_size", 1, low=1, high=10**6)
            cap = t.integer("issuance_cap", 100_000, low=1, high=10**12)
            fee = t.integer("fee_rate_bp", 10, low=0, high=1_000)
            if cap % lot:
                t.fail("issuance_cap", "must be a multiple of lot_size")
            t.done()
            for ref in terms_refs:
                spec = terms[ref]
                exclusive = spec.exclusivity == "exclusive"
                if exclusive and mode != "call_auction":
                    t.fail("trading_mode", "an exclusive licence is simulated by call auction")
                for product in chosen:
                    symbol = f"{product.key.upper()}.{ref}"
                    if not _SYMBOL.fullmatch(symbol):
                        t.fail("terms", f"symbol {symbol!r} would be longer than 32 characters")
                    if symbol in symbols:
                        t.fail("products", f"{product.key} is listed under {ref} twice")
                    if (exclusive and product.key in listed_products) or (
                        product.key in exclusive_products
                    ):
                        t.fail(
                            "terms",
                            f"{product.key}: a product licensed exclusively has "
                            "no other instrument",
                        )
                    symbols.add(symbol)
                    listed_products.add(product.key)
                    if exclusive:
                        exclusive_products.add(product.key)
                    result.append(
                        ListingSpec(
                            symbol=symbol,
                            product=product.key,
                            terms=ref,
                            trading_mode=mode,
                            auction_every_ticks=every,
                            tick_size_minor=tick,
                            lot_size_units=lot,
                            issuance_cap_units=lot if exclusive else cap,
                            fee_rate_bp=fee,
                        )
                    )
            if len(result) > MAX_LISTED:
                t.fail("products", f"a scenario lists at most {MAX_LISTED} instruments")
        if not result:
            self.fail("listings", "a scenario needs at least one listing")
        return result

    # -- agents --------------------------------------------------------------------------

    def agents(
        self,
        tables: list[_Table],
        participants: dict[str, ParticipantSpec],
        groups: dict[str, list[str]],
        listings: list[ListingSpec],
        products: list[ProductSpec],
    ) -> list[AgentSpec]:
        result: list[AgentSpec] = []
        taken: dict[str, str] = {}
        symbols = {listing.symbol: listing for listing in listings}
        owner = {product.key: product.provider for product in products}
        for t in tables:
            kind = t.text("kind", choices=AGENT_KINDS)
            refs = t.raw("participants")
            refs = [refs] if isinstance(refs, str) else refs
            if not isinstance(refs, list) or not refs:
                t.fail("participants", "must name participants or participant groups")
            members: list[str] = []
            for i, ref in enumerate(refs):
                t.check_text(f"participants[{i}]", ref)
                if ref not in groups:
                    t.fail(f"participants[{i}]", f"no participant or group {ref!r}")
                members.extend(groups[ref])
            for member in members:
                if member in taken:
                    t.fail("participants", f"{member!r} already acts as {taken[member]}")
                taken[member] = t.path
                roles = participants[member].roles
                needed = {
                    "provider": ("provider",),
                    "buyer": ("buyer", "market_maker"),
                    "market_maker": ("market_maker", "buyer"),
                    "noise": ("buyer", "market_maker"),
                    "lender": tuple(r.value for r in Role),
                }[kind]
                if not set(roles) & set(needed):
                    t.fail(
                        "participants", f"{member!r} needs one of the roles: {', '.join(needed)}"
                    )
            params = self._params(t, kind, symbols, owner, groups)
            t.done()
            result.append(AgentSpec(kind, tuple(members), params, t.path))
        return result

    def _params(
        self,
        t: _Table,
        kind: str,
        symbols: dict[str, ListingSpec],
        owner: dict[str, str],
        groups: dict[str, list[str]],
    ) -> AgentParams:
        instruments: tuple[str, ...] = ()
        if kind in ("buyer", "market_maker", "noise"):
            chosen = t.raw("instruments", [])
            if not isinstance(chosen, list):
                t.fail("instruments", "must be a list of listed symbols")
            for i, symbol in enumerate(chosen):
                t.check_text(f"instruments[{i}]", symbol)
                if symbol not in symbols:
                    t.fail(f"instruments[{i}]", f"no listed instrument {symbol!r}")
            instruments = tuple(chosen)
        if kind == "provider":
            markup = t.number("markup", 1.3, positive=True, high=100.0)
            low = t.number("min_markup", 0.6, positive=True, high=100.0)
            high = t.number("max_markup", 8.0, positive=True, high=1_000.0)
            if not low <= markup <= high:
                t.fail("markup", "must lie between min_markup and max_markup")
            return ProviderParams(
                markup=markup,
                min_markup=low,
                max_markup=high,
                learning_rate=t.number("learning_rate", 0.05, low=0.0, high=0.5),
                patience_ticks=t.integer("patience_ticks", 8, low=1),
                ask_units=t.integer("ask_units", 5, low=1, high=10**6),
                requote_ticks=t.integer("requote_ticks", 4, low=1),
            )
        if kind == "buyer":
            max_units = t.integer("max_units", 2, low=1, high=10**6)
            return BuyerParams(
                budget_minor=t.money("budget", None),
                activity=t.number("activity", 0.05, low=0.0, high=1.0),
                value_dispersion=t.number("value_dispersion", 0.25, low=0.0, high=3.0),
                min_bid_fraction=t.number("min_bid_fraction", 0.6, positive=True, high=1.0),
                max_units=max_units,
                order_units=t.integer("order_units", 1, low=1, high=10**6),
                order_lifetime_ticks=t.integer("order_lifetime_ticks", 8, low=1),
                follows=t.integer("follows", 0, low=0),
                resell=t.boolean("resell", True),
                rotate=t.boolean("rotate", True),
                initial_units=t.integer("initial_units", 0, low=0, high=max_units),
                instruments=instruments,
            )
        if kind == "market_maker":
            inventory = t.integer("max_inventory_units", 50, low=1, high=10**9)
            return MarketMakerParams(
                budget_minor=t.money("budget", None),
                half_spread_ticks=t.integer("half_spread_ticks", 3, low=1, high=10**6),
                quote_units=t.integer("quote_units", 5, low=1, high=10**6),
                max_inventory_units=inventory,
                skew_bp_per_unit=t.number("skew_bp_per_unit", 5.0, low=0.0, high=1_000.0),
                requote_ticks=t.integer("requote_ticks", 1, low=1),
                ema_weight=t.number("ema_weight", 0.2, positive=True, high=1.0),
                follows=t.integer("follows", 0, low=0),
                initial_units=t.integer("initial_units", 0, low=0, high=inventory),
                instruments=instruments,
            )
        if kind == "noise":
            inventory = t.integer("max_inventory_units", 20, low=1, high=10**9)
            return NoiseParams(
                budget_minor=t.money("budget", None),
                activity=t.number("activity", 0.05, low=0.0, high=1.0),
                aggressive_share=t.number("aggressive_share", 0.5, low=0.0, high=1.0),
                price_sd_ticks=t.number("price_sd_ticks", 4.0, low=0.0, high=1e6),
                max_order_units=t.integer("max_order_units", 3, low=1, high=10**6),
                max_inventory_units=inventory,
                order_lifetime_ticks=t.integer("order_lifetime_ticks", 20, low=1),
                follows=t.integer("follows", 0, low=0),
                initial_units=t.integer("initial_units", 0, low=0, high=inventory),
                trend_weight=t.number("trend_weight", 0.0, low=0.0, high=0.5),
                trend_ticks=t.integer("trend_ticks", 10, low=1),
                instruments=instruments,
            )
        borrower = t.text("borrower")
        if borrower not in groups or groups[borrower] != [borrower]:
            t.fail("borrower", f"no participant {borrower!r}")
        pledges = []
        for p in t.tables("pledged"):
            symbol = p.text("symbol")
            listing = symbols.get(symbol)
            if listing is None:
                p.fail("symbol", f"no listed instrument {symbol!r}")
            if owner[listing.product] != borrower:
                p.fail("symbol", f"{symbol} is not {borrower}'s to pledge")
            units = p.integer("units", low=1, high=listing.issuance_cap_units)
            p.done()
            pledges.append(Pledge(symbol, units))
        if not pledges:
            t.fail("pledged", "a lender needs at least one pledged instrument")
        return LenderParams(
            borrower=borrower,
            pledged=tuple(pledges),
            loan_to_value=t.number("loan_to_value", 0.5, positive=True, high=1.0),
            valuation_every_days=t.integer("valuation_every_days", 1, low=1),
        )


def _draw_text(rng: Any, choices: tuple[str, ...]) -> str:
    return choices[0] if len(choices) == 1 else choices[rng.randrange(len(choices))]


def _draw_number(rng: Any, draw: tuple[float, float], *, log: bool) -> float:
    low, high = draw
    if low == high:
        return low
    if log:
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    return rng.uniform(low, high)
