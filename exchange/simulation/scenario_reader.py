"""Scenario files: TOML text in, a :class:`~exchange.simulation.scenario.ScenarioSpec` out.

The file is parsed with the standard library's ``tomllib`` and each table is validated by a
strict pydantic model (no coercion: ``"3"`` is not a number, ``1`` is not ``true``; unknown
fields are errors, so a misspelt parameter never silently takes its default). What a model
cannot see alone (references between tables, group sizes, bounds set by another field) is
checked after it. Every problem raises :class:`ScenarioError` naming the file and the field,
e.g. ``scenario.toml: agents[2].budget: must be positive`` (array indices count from 0).

Reading needs no seed: products are read as draws (ranges and choices) that
``scenario_catalogue`` draws from. Every field, its unit and its default are listed in
``docs/simulation.md``. Money is in currency units (yuan) in the file and in integer minor
units (fen) in the spec, rounded to the nearest fen.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Final, Literal, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import ErrorDetails, PydanticCustomError

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
from exchange.simulation.grid import Point, apply_point
from exchange.simulation.scenario import (
    DEFAULT_CATEGORY_BASE,
    DEFAULT_FRESHNESS_PREMIUM,
    DEFAULT_LENDER_LIMIT_MINOR,
    DEFAULT_SCOPE_PREMIUM,
    AgentParams,
    AgentSpec,
    BuyerParams,
    LenderParams,
    ListingSpec,
    MarketMakerParams,
    MarketSpec,
    NoiseParams,
    ParticipantSpec,
    Pledge,
    ProductDraw,
    ProviderParams,
    RfqBuyerParams,
    RfqProviderParams,
    ScenarioSpec,
    Shock,
    TermsSpec,
    TruthSpec,
)
from exchange.validation import MAX_DURATION_MONTHS, MAX_NAME, QUALITY_DIMENSIONS

__all__ = [
    "AGENT_KINDS",
    "RESERVED_PARTICIPANTS",
    "ScenarioError",
    "parse_scenario_spec",
    "read_scenario",
]

# Limits: a scenario is a laboratory, not a production catalogue.
MAX_DAYS: Final = 3_650
MAX_TICKS_PER_DAY: Final = 100_000
MAX_GROUP: Final = 10_000
MAX_PARTICIPANTS: Final = 20_000
MAX_PRODUCTS: Final = 20_000
MAX_LISTED: Final = 20_000
# Every text of a scenario is a name or a short label, held to the exchange's limit on names.
MAX_TEXT: Final = MAX_NAME
# The simulator's own participants: the exchange desk, its reviewer and the regulator.
RESERVED_PARTICIPANTS: Final = ("sim-admin", "sim-review", "sim-regulator", "operator")
AGENT_KINDS: Final = (
    "provider", "buyer", "market_maker", "noise", "lender", "rfq_buyer", "rfq_provider",
)  # fmt: skip
SIMULATED_MODES: Final = ("continuous", "call_auction")
COLLATERAL_VALUATIONS: Final = ("market_approach", "day_trades")
# The default tick has always been one fen, although docs/simulation.md says one yuan: the
# shipped scenarios and their journal hashes depend on it, so it is kept as it is.
DEFAULT_TICK_SIZE_MINOR: Final = 1

_PARTICIPANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,27}")
_PRODUCT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,15}")
_TERMS_ID = re.compile(r"[A-Z0-9][A-Z0-9-]{0,9}")
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9.-]{1,31}")

_CATEGORIES = tuple(c.value for c in Category)
_FREQUENCIES = tuple(f.value for f in UpdateFrequency)
_SCOPES = tuple(s.value for s in Scope)
_ROLES = tuple(r.value for r in Role if r is not Role.ADMIN)
_TEXT_MESSAGE = f"must be non-empty text of at most {MAX_TEXT} characters"
_UNKNOWN_FIELD = "is not a known field (see docs/simulation.md)"
# Strict: no value is coerced into another type; every table's fields are all known.
_STRICT: Final = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class ScenarioError(ValueError):
    """A scenario file that cannot be simulated; the message names the file and the field."""


# ------------------------------------------------------------------ field types


def _problem(message: str) -> PydanticCustomError:
    # The message travels in the context: a template would read the braces of a pattern.
    return PydanticCustomError("scenario", "{message}", {"message": message})


def _text(value: str) -> str:
    if not value.strip() or len(value) > MAX_TEXT:
        raise _problem(_TEXT_MESSAGE)
    return value


Text = Annotated[str, AfterValidator(_text)]


def _one_of(choices: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        if value not in choices:
            raise _problem(f"{value!r} is not one of: {', '.join(choices)}")
        return value

    return AfterValidator(check)


def _matching(pattern: re.Pattern[str]) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise _problem(f"{value!r} does not match {pattern.pattern}")
        return value

    return AfterValidator(check)


def _listed(message: str, *, single: bool = False) -> BeforeValidator:
    """A non-empty list (or, if ``single``, one text standing for a list of one); its items
    are then validated with their index in the path, ``participants[0]``."""

    def check(value: Any) -> Any:
        if single and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise _problem(message)
        return value

    return BeforeValidator(check)


def _array(value: Any) -> Any:
    if not isinstance(value, list):
        raise _problem("must be an array of tables ([[...]])")
    return value


def _yuan(*, allow_zero: bool) -> BeforeValidator:
    """Yuan in the file, fen in the spec (rounded to the nearest fen)."""

    def to_minor(value: Any) -> int:
        minor = round(_NON_NEGATIVE.validate_python(value) * MINOR_PER_UNIT)
        if minor <= 0 and not (allow_zero and minor == 0):
            raise _problem("must be positive")
        if minor > MAX_AMOUNT_MINOR:
            raise _problem(f"must be at most {MAX_AMOUNT_MINOR // MINOR_PER_UNIT:,}")
        return minor

    return BeforeValidator(to_minor)


def _iso_date(value: Any) -> dt.date:
    text = _TEXT.validate_python(value)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _problem(f"{text!r} is not an ISO date (YYYY-MM-DD)") from None


def _number_draw(low: float, high: float) -> BeforeValidator:
    """A fixed number, or a ``[low, high]`` range to draw from: ``(low, high)`` either way."""
    bounded = Annotated[float, Field(ge=low, le=high)]
    one = TypeAdapter(bounded, config=_STRICT)
    pair = TypeAdapter(list[bounded], config=_STRICT)

    def draw(value: Any) -> tuple[float, float]:
        if not isinstance(value, list):
            number = one.validate_python(value)
            return number, number
        if len(value) != 2:
            raise _problem("a range is [low, high]")
        first, second = pair.validate_python(value)
        if first > second:
            raise _problem("a range's low is above its high")
        return first, second

    return BeforeValidator(draw)


def _text_draw(choices: tuple[str, ...] | None) -> BeforeValidator:
    """A fixed text, or a list of texts to draw from: a tuple of choices either way."""
    item = Annotated[str, AfterValidator(_text), *([] if choices is None else [_one_of(choices)])]
    one = TypeAdapter(item, config=_STRICT)
    many = TypeAdapter(list[item], config=_STRICT)

    def draw(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            return (one.validate_python(value),)
        if not value:
            raise _problem("must name at least one choice")
        return tuple(many.validate_python(value))

    return BeforeValidator(draw)


_NON_NEGATIVE: Final = TypeAdapter(Annotated[float, Field(ge=0.0)], config=_STRICT)
_TEXT: Final = TypeAdapter(Text, config=_STRICT)
_TEXTS: Final = TypeAdapter(list[Text], config=_STRICT)

Yuan = Annotated[int, _yuan(allow_zero=False)]
Range = tuple[float, float]
Choices = tuple[str, ...]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=1, le=MAX_GROUP)]


def _symbols(value: Any) -> Any:
    if not isinstance(value, list):
        raise _problem("must be a list of listed symbols")
    return value


# ------------------------------------------------------------------ the file's tables


class _Table(BaseModel):
    model_config = _STRICT


def _table() -> Any:
    """A sub-table that may be left out: an absent one is read as empty, so that its
    required fields are still reported."""
    return Field(default_factory=dict, validate_default=True)


class _Head(_Table):
    name: Text
    description: Text = ""
    days: int = Field(1, ge=1, le=MAX_DAYS)
    start_date: Annotated[dt.date, BeforeValidator(_iso_date)] = dt.date(2026, 3, 2)
    ticks_per_day: int = Field(100, ge=1, le=MAX_TICKS_PER_DAY)
    session_start_hour: int = Field(1, ge=0, le=23)
    session_hours: float = Field(8.0, gt=0.0, le=24.0)
    catalogue_seed: int | None = Field(None, ge=0, le=2**63 - 1)
    sample_every_ticks: Positive | None = None  # default: about 500 samples a day
    bar_ticks: Positive = 5
    burn_in_ticks: int = Field(0, ge=0)


class _Market(_Table):
    close_daily: bool = True
    attention_persistence: float = Field(0.98, ge=0.0, le=0.9999)
    attention_volatility: float = Field(0.0, ge=0.0, le=2.0)
    collateral_valuation: Annotated[Text, _one_of(COLLATERAL_VALUATIONS)] = "market_approach"


class _Truth(_Table):
    category_base: dict[str, Annotated[float, Field(gt=0.0)]] = {}
    record_elasticity: float = Field(0.35, ge=0.0, le=2.0)
    quality_elasticity: float = Field(1.0, ge=0.0, le=10.0)
    coverage_elasticity: float = Field(0.15, ge=-2.0, le=2.0)
    freshness_premium: dict[str, float] = {}
    region_premium: dict[str, float] = {}
    exclusivity_premium: float = Field(0.8, ge=-5.0, le=5.0)
    duration_elasticity: float = Field(0.7, ge=0.0, le=2.0)
    scope_premium: dict[str, float] = {}
    cross_border_premium: float = Field(0.15, ge=-5.0, le=5.0)
    noise_sd: float = Field(0.25, ge=0.0, le=3.0)
    cost_bias: float = Field(-0.1, ge=-5.0, le=5.0)
    cost_sd: float = Field(0.35, ge=0.0, le=3.0)
    volatility_per_day: float = Field(0.0, ge=0.0, le=1.0)
    volatility_persistence: float = Field(0.98, ge=0.0, le=0.9999)
    volatility_of_volatility: float = Field(0.0, ge=0.0, le=2.0)


class _Participant(_Table):
    id: Annotated[Text, _matching(_PARTICIPANT_ID)]
    count: Count | None = None
    name: Text | None = None  # default: the id
    roles: Annotated[
        list[Annotated[Text, _one_of(_ROLES)]],
        _listed(f"must be a non-empty list of: {', '.join(_ROLES)}"),
    ]
    cash: Annotated[int, _yuan(allow_zero=True)] = 0


class _Quality(_Table):
    completeness: Fraction
    accuracy: Fraction
    timeliness: Fraction
    consistency: Fraction


_QUALITY_TABLE: Final = TypeAdapter(_Quality)
_QUALITY_RANGE: Final = _number_draw(0.0, 1.0).func


def _quality_draw(value: Any) -> tuple[Range, ...]:
    """One range for every dimension, or a table fixing each dimension."""
    if isinstance(value, dict):
        table = _QUALITY_TABLE.validate_python(value)
        return tuple((getattr(table, d),) * 2 for d in QUALITY_DIMENSIONS)  # type: ignore[misc]
    return (_QUALITY_RANGE(value),) * len(QUALITY_DIMENSIONS)


class _Product(_Table):
    id: Annotated[Text, _matching(_PRODUCT_ID)]
    count: Count | None = None
    provider: Text
    title: Text | None = None  # default: the id
    category: Annotated[Choices, _text_draw(_CATEGORIES)]
    region: Annotated[Choices, _text_draw(None)] = ("Zhejiang",)
    update_frequency: Annotated[Choices, _text_draw(_FREQUENCIES)] = ("daily",)
    record_count: Annotated[Range, _number_draw(1.0, 1e15)] = (1e6, 1e6)
    coverage_months: Annotated[Range, _number_draw(1.0, 600.0)] = (12.0, 12.0)
    quality: Annotated[tuple[Range, ...], BeforeValidator(_quality_draw)] = ((0.9, 0.9),) * 4
    classification: Annotated[Text, _one_of(tuple(c.value for c in Classification))] = "general"
    personal_information: bool = False
    desensitised: bool = False
    lawful_source: bool = True
    cost_basis: Annotated[Range, _number_draw(0.01, MAX_AMOUNT_MINOR / 100)] | None = None


class _Terms(_Table):
    exclusivity: Annotated[Text, _one_of(tuple(e.value for e in Exclusivity))] = "non_exclusive"
    duration_months: int = Field(12, ge=1, le=MAX_DURATION_MONTHS)
    scope: Annotated[Text, _one_of(_SCOPES)] = "internal"
    territory: Annotated[Text, _one_of(tuple(t.value for t in Territory))] = "domestic"
    transferable: bool = True


def _every_product_or_list(value: Any) -> Any:
    if value == "*":
        return value
    if not isinstance(value, list) or not value:
        raise _problem('must be a non-empty list of product ids, or "*"')
    return _TEXTS.validate_python(value)


class _Listing(_Table):
    products: Annotated[Literal["*"] | list[str], BeforeValidator(_every_product_or_list)]
    terms: Annotated[
        list[Text], _listed("must name licence terms defined under [terms]", single=True)
    ]
    trading_mode: Annotated[Text, _one_of(SIMULATED_MODES)] = "continuous"
    auction_every_ticks: Positive = 4
    tick_size: Yuan = DEFAULT_TICK_SIZE_MINOR
    lot_size: int = Field(1, ge=1, le=10**6)
    issuance_cap: int = Field(100_000, ge=1, le=10**12)
    fee_rate_bp: int = Field(10, ge=0, le=1_000)
    rfq_only: bool = False


class _Agent(_Table):
    participants: Annotated[
        list[Text], _listed("must name participants or participant groups", single=True)
    ]


class _Trader(_Agent):
    """An agent that trades listed instruments: by name, or any it ``follows``."""

    budget: Yuan | None = None  # default: the participant's cash
    follows: int = Field(0, ge=0)
    instruments: Annotated[list[Text], BeforeValidator(_symbols)] = []


class _Provider(_Agent):
    kind: Literal["provider"]
    markup: float = Field(1.3, gt=0.0, le=100.0)
    min_markup: float = Field(0.6, gt=0.0, le=100.0)
    max_markup: float = Field(8.0, gt=0.0, le=1_000.0)
    learning_rate: float = Field(0.05, ge=0.0, le=0.5)
    patience_ticks: Positive = 8
    ask_units: int = Field(5, ge=1, le=10**6)
    requote_ticks: Positive = 4


class _Buyer(_Trader):
    kind: Literal["buyer"]
    max_units: int = Field(2, ge=1, le=10**6)
    activity: Fraction = 0.05
    value_dispersion: float = Field(0.25, ge=0.0, le=3.0)
    min_bid_fraction: float = Field(0.6, gt=0.0, le=1.0)
    order_units: int = Field(1, ge=1, le=10**6)
    order_lifetime_ticks: Positive = 8
    resell: bool = True
    rotate: bool = True
    initial_units: int = Field(0, ge=0)  # at most max_units


class _MarketMaker(_Trader):
    kind: Literal["market_maker"]
    max_inventory_units: int = Field(50, ge=1, le=10**9)
    half_spread_ticks: int = Field(3, ge=1, le=10**6)
    quote_units: int = Field(5, ge=1, le=10**6)
    skew_bp_per_unit: float = Field(5.0, ge=0.0, le=1_000.0)
    requote_ticks: Positive = 1
    ema_weight: float = Field(0.2, gt=0.0, le=1.0)
    initial_units: int = Field(0, ge=0)  # at most max_inventory_units


class _Noise(_Trader):
    kind: Literal["noise"]
    max_inventory_units: int = Field(20, ge=1, le=10**9)
    activity: Fraction = 0.05
    aggressive_share: Fraction = 0.5
    price_sd_ticks: float = Field(4.0, ge=0.0, le=1e6)
    max_order_units: int = Field(3, ge=1, le=10**6)
    order_lifetime_ticks: Positive = 20
    initial_units: int = Field(0, ge=0)  # at most max_inventory_units
    trend_weight: float = Field(0.0, ge=0.0, le=0.5)
    trend_ticks: Positive = 10


class _Pledge(_Table):
    symbol: Text
    units: Positive  # at most the instrument's issuance cap


class _Lender(_Agent):
    kind: Literal["lender"]
    borrower: Text
    pledged: Annotated[list[_Pledge], BeforeValidator(_array)] = []
    loan_to_value: float = Field(0.5, gt=0.0, le=5.0)
    margin_call_ltv: float = Field(0.65, gt=0.0, le=5.0)
    liquidation_ltv: float = Field(0.8, gt=0.0, le=5.0)
    valuation_every_days: Positive = 1
    limit: Yuan = DEFAULT_LENDER_LIMIT_MINOR  # a default is not converted: fen already
    rate_bp: int = Field(500, ge=0, le=10_000)
    term_days: int = Field(365, ge=1, le=3_650)
    cure_hours: float = Field(24.0, ge=0.02, le=2_160.0)
    auction_hours: float = Field(1.0, ge=0.02, le=2_160.0)
    draw_share: Fraction = 0.9
    spend_share: Fraction = 1.0
    top_up_units: int = Field(0, ge=0)


class _RfqBuyer(_Trader):
    kind: Literal["rfq_buyer"]
    activity: Fraction = 0.02
    value_dispersion: float = Field(0.25, ge=0.0, le=3.0)
    request_units: int = Field(1, ge=1, le=10**6)
    max_units: int = Field(2, ge=1, le=10**6)
    response_ticks: Positive = 2


class _RfqProvider(_Agent):
    kind: Literal["rfq_provider"]
    markup: float = Field(1.3, gt=0.0, le=100.0)
    min_markup: float = Field(0.6, gt=0.0, le=100.0)
    max_markup: float = Field(8.0, gt=0.0, le=1_000.0)
    learning_rate: float = Field(0.05, ge=0.0, le=0.5)


class _Shock(_Table):
    day: int = Field(ge=0, le=MAX_DAYS)
    category: Annotated[Text, _one_of(_CATEGORIES)]
    factor: float = Field(gt=0.0, le=100.0)


_AgentTable = _Provider | _Buyer | _MarketMaker | _Noise | _Lender | _RfqBuyer | _RfqProvider
_AGENT_TABLES: Final[dict[str, TypeAdapter[Any]]] = {
    kind: TypeAdapter(model)
    for kind, model in zip(
        AGENT_KINDS,
        (_Provider, _Buyer, _MarketMaker, _Noise, _Lender, _RfqBuyer, _RfqProvider),
        strict=True,
    )
}


class _Kind(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    kind: Annotated[Text, _one_of(AGENT_KINDS)]


_KIND: Final = TypeAdapter(_Kind)


def _agent_by_kind(value: Any) -> Any:
    """The agent's table read by the model of its kind, so that errors name the table's own
    fields (``agents[2].budget``) and a field of another kind is unknown."""
    if not isinstance(value, dict):
        raise _problem("must be a table")
    return _AGENT_TABLES[_KIND.validate_python(value).kind].validate_python(value)


class _Document(_Table):
    scenario: _Head = _table()
    market: _Market = _table()
    truth: _Truth = _table()
    participants: Annotated[list[_Participant], BeforeValidator(_array)] = []
    products: Annotated[list[_Product], BeforeValidator(_array)] = []
    terms: dict[str, _Terms] = _table()
    listings: Annotated[list[_Listing], BeforeValidator(_array)] = []
    agents: Annotated[
        list[Annotated[_AgentTable, BeforeValidator(_agent_by_kind)]], BeforeValidator(_array)
    ] = []
    shocks: Annotated[list[_Shock], BeforeValidator(_array)] = []


_DOCUMENT: Final = TypeAdapter(_Document)


# ------------------------------------------------------------------ errors


def _path(location: Iterable[int | str]) -> str:
    """``("agents", 2, "budget")`` as ``agents[2].budget``."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _limit(bound: object) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def _message(error: ErrorDetails) -> str:
    """Pydantic's error in the words the scenario format has always used."""
    kind, value, context = error["type"], error["input"], error.get("ctx", {})
    messages: dict[str, Callable[[], str]] = {
        "scenario": lambda: str(context["message"]),
        "missing": lambda: "is required",
        "extra_forbidden": lambda: _UNKNOWN_FIELD,
        "int_type": lambda: f"must be a whole number, got {value!r}",
        "float_type": lambda: f"must be a number, got {value!r}",
        "finite_number": lambda: "must be a finite number",
        "bool_type": lambda: f"must be true or false, got {value!r}",
        "string_type": lambda: _TEXT_MESSAGE,
        "model_type": lambda: "must be a table",
        "dict_type": lambda: "must be a table",
        "greater_than": lambda: "must be positive",
        "greater_than_equal": lambda: (
            "must be positive"
            if context["ge"] == 1 and isinstance(context["ge"], int)
            else f"must be at least {_limit(context['ge'])}"
        ),
        "less_than_equal": lambda: f"must be at most {_limit(context['le'])}",
    }
    known = messages.get(kind)
    return known() if known is not None else error["msg"]


# ------------------------------------------------------------------ reading


def read_scenario(path: str | Path, *, settings: Point = ()) -> ScenarioSpec:
    """Read and validate the scenario file at ``path``, with ``settings`` (a grid point,
    ``exchange.simulation.grid``) made to its fields first. Raises :class:`ScenarioError`."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"{source}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{source}: not UTF-8 text") from None
    return parse_scenario_spec(text, source=source, settings=settings)


def parse_scenario_spec(
    text: str, *, source: str = "scenario.toml", settings: Point = ()
) -> ScenarioSpec:
    """Validate scenario ``text``; ``source`` names it in messages. See :func:`read_scenario`."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{source}: not valid TOML: {error}") from None
    try:
        document = apply_point(document, settings)
    except ValueError as error:
        raise ScenarioError(f"{source}: --set {error}") from None
    try:
        tables = _DOCUMENT.validate_python(document)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        raise ScenarioError(f"{source}: {_path(first['loc'])}: {_message(first)}") from None
    return _Reader(source).scenario(tables, text)


# ------------------------------------------------------------------ across tables


class _Reader:
    """The checks no single table can make: references, groups, and bounds set elsewhere."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> NoReturn:
        raise ScenarioError(f"{self.source}: {where}: {message}")

    def scenario(self, document: _Document, text: str) -> ScenarioSpec:
        head = document.scenario
        ticks, hours = head.ticks_per_day, head.session_hours
        if head.session_start_hour + hours > 24:
            self.fail("scenario.session_hours", "the session must end by midnight UTC")
        if hours * 3_600 / ticks < 0.001:
            self.fail("scenario.ticks_per_day", "ticks would be shorter than a millisecond")
        # The default bar is not held to a shorter day: only a bar the file sets is.
        if "bar_ticks" in head.model_fields_set and head.bar_ticks > ticks:
            self.fail("scenario.bar_ticks", f"must be at most {ticks}")
        market = document.market
        participants = self.participants(document.participants)
        by_id = {p.participant_id: p for p in participants}
        groups: dict[str, list[str]] = {}
        for p in participants:
            groups.setdefault(p.group, []).append(p.participant_id)
        products = self.products(document.products, by_id, groups)
        terms = self.terms(document.terms)
        listings = self.listings(document.listings, products, terms)
        agents = self.agents(document.agents, by_id, groups, listings, products)
        for i, shock in enumerate(document.shocks):
            if shock.day >= head.days:
                self.fail(f"shocks[{i}].day", f"must be before the last day ({head.days})")
        return ScenarioSpec(
            name=head.name,
            description=head.description,
            source=self.source,
            days=head.days,
            start_date=head.start_date,
            ticks_per_day=ticks,
            session_start_hour=head.session_start_hour,
            session_hours=hours,
            catalogue_seed=head.catalogue_seed,
            sample_every_ticks=head.sample_every_ticks or max(1, ticks // 500),
            bar_ticks=head.bar_ticks,
            burn_in_ticks=head.burn_in_ticks,
            market=MarketSpec(
                close_daily=market.close_daily,
                attention_persistence=market.attention_persistence,
                attention_volatility=market.attention_volatility,
                collateral_valuation=market.collateral_valuation,
            ),
            truth=self.truth(document.truth),
            participants=tuple(participants),
            product_draws=tuple(products),
            terms=terms,
            listings=tuple(listings),
            agents=tuple(agents),
            shocks=tuple(Shock(s.day, s.category, s.factor) for s in document.shocks),
            text=text,
        )

    # -- truth ---------------------------------------------------------------------------

    def truth(self, t: _Truth) -> TruthSpec:
        return TruthSpec(
            category_base=self.premiums(
                "category_base", t.category_base, DEFAULT_CATEGORY_BASE, _CATEGORIES
            ),
            record_elasticity=t.record_elasticity,
            quality_elasticity=t.quality_elasticity,
            coverage_elasticity=t.coverage_elasticity,
            freshness_premium=self.premiums(
                "freshness_premium", t.freshness_premium, DEFAULT_FRESHNESS_PREMIUM, _FREQUENCIES
            ),
            region_premium=self.premiums("region_premium", t.region_premium, {}, None),
            exclusivity_premium=t.exclusivity_premium,
            duration_elasticity=t.duration_elasticity,
            scope_premium=self.premiums(
                "scope_premium", t.scope_premium, DEFAULT_SCOPE_PREMIUM, _SCOPES
            ),
            cross_border_premium=t.cross_border_premium,
            noise_sd=t.noise_sd,
            cost_bias=t.cost_bias,
            cost_sd=t.cost_sd,
            volatility_per_day=t.volatility_per_day,
            volatility_persistence=t.volatility_persistence,
            volatility_of_volatility=t.volatility_of_volatility,
        )

    def premiums(
        self,
        name: str,
        given: dict[str, float],
        defaults: dict[str, float],
        keys: tuple[str, ...] | None,
    ) -> dict[str, float]:
        """The file's numbers over ``defaults``, keys in sorted order after the defaults'."""
        result = dict(defaults)
        for key in sorted(given):
            if keys is not None and key not in keys:
                self.fail(f"truth.{name}.{key}", f"is not one of: {', '.join(keys)}")
            result[key] = given[key]
        return result

    # -- participants --------------------------------------------------------------------

    def participants(self, tables: list[_Participant]) -> list[ParticipantSpec]:
        result: list[ParticipantSpec] = []
        seen: set[str] = set()
        for i, t in enumerate(tables):
            where = f"participants[{i}]"
            group, count = t.id, t.count
            name = t.name or group
            if count is None:
                ids = [group]
            else:
                width = max(2, len(str(count)))
                ids = [f"{group}-{n:0{width}d}" for n in range(1, count + 1)]
            for number, participant_id in enumerate(ids, start=1):
                if not _PARTICIPANT_ID.fullmatch(participant_id):
                    self.fail(
                        f"{where}.id", f"{participant_id!r} would be longer than 28 characters"
                    )
                if participant_id in RESERVED_PARTICIPANTS:
                    self.fail(f"{where}.id", f"{participant_id!r} is reserved for the simulator")
                if participant_id in seen:
                    self.fail(f"{where}.id", f"participant {participant_id!r} is defined twice")
                seen.add(participant_id)
                label = name if count is None else f"{name} {number}"
                result.append(ParticipantSpec(participant_id, label, tuple(t.roles), t.cash, group))
            if len(result) > MAX_PARTICIPANTS:
                self.fail(
                    f"{where}.count", f"a scenario holds at most {MAX_PARTICIPANTS} participants"
                )
        if not result:
            self.fail("participants", "a scenario needs at least one participant")
        return result

    # -- products ------------------------------------------------------------------------

    def products(
        self,
        tables: list[_Product],
        participants: dict[str, ParticipantSpec],
        groups: dict[str, list[str]],
    ) -> list[ProductDraw]:
        result: list[ProductDraw] = []
        keys: set[str] = set()
        for i, t in enumerate(tables):
            where = f"products[{i}]"
            members = groups.get(t.provider)
            if members is None:
                self.fail(f"{where}.provider", f"no participant or group {t.provider!r}")
            for member in members:
                if "provider" not in participants[member].roles:
                    self.fail(
                        f"{where}.provider",
                        f"participant {member!r} does not have the role provider",
                    )
            title = t.title or t.id
            if t.count is None:
                product_keys = [t.id]
            else:
                product_keys = [f"{t.id}-{n:03d}" for n in range(1, t.count + 1)]
            for index, product_key in enumerate(product_keys):
                if not _PRODUCT_ID.fullmatch(product_key):
                    self.fail(f"{where}.id", f"{product_key!r} would be longer than 16 characters")
                if product_key in keys:
                    self.fail(f"{where}.id", f"product {product_key!r} is defined twice")
                keys.add(product_key)
                result.append(
                    ProductDraw(
                        key=product_key,
                        group=t.id,
                        provider=members[index % len(members)],
                        title=title if t.count is None else f"{title} #{index + 1}",
                        category=t.category,
                        region=t.region,
                        update_frequency=t.update_frequency,
                        record_count=t.record_count,
                        coverage_months=t.coverage_months,
                        quality=t.quality,
                        classification=t.classification,
                        personal_information=t.personal_information,
                        desensitised=t.desensitised,
                        lawful_source=t.lawful_source,
                        cost_basis=t.cost_basis,
                    )
                )
            if len(result) > MAX_PRODUCTS:
                self.fail(f"{where}.count", f"a scenario holds at most {MAX_PRODUCTS} products")
        if not result:
            self.fail("products", "a scenario needs at least one product")
        return result

    # -- terms and listings --------------------------------------------------------------

    def terms(self, tables: dict[str, _Terms]) -> dict[str, TermsSpec]:
        result: dict[str, TermsSpec] = {}
        for key in sorted(tables):
            if not _TERMS_ID.fullmatch(key):
                self.fail(f"terms.{key}", f"a terms id must match {_TERMS_ID.pattern}")
            t = tables[key]
            result[key] = TermsSpec(
                key=key,
                exclusivity=t.exclusivity,
                duration_months=t.duration_months,
                scope=t.scope,
                territory=t.territory,
                transferable=t.transferable,
            )
        if not result:
            self.fail("terms", "a scenario needs at least one set of licence terms")
        return result

    def listings(
        self, tables: list[_Listing], products: list[ProductDraw], terms: dict[str, TermsSpec]
    ) -> list[ListingSpec]:
        result: list[ListingSpec] = []
        symbols: set[str] = set()
        by_group: dict[str, list[ProductDraw]] = {}
        for product in products:
            by_group.setdefault(product.group, []).append(product)
            if product.key != product.group:
                by_group.setdefault(product.key, []).append(product)
        exclusive_products: set[str] = set()
        listed_products: set[str] = set()
        for i, t in enumerate(tables):
            where = f"listings[{i}]"
            if t.products == "*":
                chosen = list(products)
            else:
                chosen = []
                for n, ref in enumerate(t.products):
                    if ref not in by_group:
                        self.fail(f"{where}.products[{n}]", f"no product or product group {ref!r}")
                    chosen.extend(by_group[ref])
            for n, ref in enumerate(t.terms):
                if ref not in terms:
                    self.fail(f"{where}.terms[{n}]", f"no licence terms {ref!r} under [terms]")
            if t.issuance_cap % t.lot_size:
                self.fail(f"{where}.issuance_cap", "must be a multiple of lot_size")
            for ref in t.terms:
                exclusive = terms[ref].exclusivity == "exclusive"
                if exclusive and t.trading_mode != "call_auction":
                    self.fail(
                        f"{where}.trading_mode", "an exclusive licence is simulated by call auction"
                    )
                for product in chosen:
                    symbol = f"{product.key.upper()}.{ref}"
                    if not _SYMBOL.fullmatch(symbol):
                        self.fail(
                            f"{where}.terms",
                            f"symbol {symbol!r} would be longer than 32 characters",
                        )
                    if symbol in symbols:
                        self.fail(f"{where}.products", f"{product.key} is listed under {ref} twice")
                    if (exclusive and product.key in listed_products) or (
                        product.key in exclusive_products
                    ):
                        self.fail(
                            f"{where}.terms",
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
                            trading_mode=t.trading_mode,
                            auction_every_ticks=t.auction_every_ticks,
                            tick_size_minor=t.tick_size,
                            lot_size_units=t.lot_size,
                            issuance_cap_units=t.lot_size if exclusive else t.issuance_cap,
                            fee_rate_bp=t.fee_rate_bp,
                            rfq_only=t.rfq_only,
                        )
                    )
            if len(result) > MAX_LISTED:
                self.fail(f"{where}.products", f"a scenario lists at most {MAX_LISTED} instruments")
        if not result:
            self.fail("listings", "a scenario needs at least one listing")
        return result

    # -- agents --------------------------------------------------------------------------

    def agents(
        self,
        tables: list[_AgentTable],
        participants: dict[str, ParticipantSpec],
        groups: dict[str, list[str]],
        listings: list[ListingSpec],
        products: list[ProductDraw],
    ) -> list[AgentSpec]:
        result: list[AgentSpec] = []
        taken: dict[str, str] = {}
        symbols = {listing.symbol: listing for listing in listings}
        owner = {product.key: product.provider for product in products}
        for i, t in enumerate(tables):
            where = f"agents[{i}]"
            members: list[str] = []
            for n, ref in enumerate(t.participants):
                if ref not in groups:
                    self.fail(f"{where}.participants[{n}]", f"no participant or group {ref!r}")
                members.extend(groups[ref])
            needed = _ROLES_NEEDED[t.kind]
            for member in members:
                if member in taken:
                    self.fail(
                        f"{where}.participants", f"{member!r} already acts as {taken[member]}"
                    )
                taken[member] = where
                if not set(participants[member].roles) & set(needed):
                    self.fail(
                        f"{where}.participants",
                        f"{member!r} needs one of the roles: {', '.join(needed)}",
                    )
            params = self.params(where, t, symbols, owner, groups)
            result.append(AgentSpec(t.kind, tuple(members), params, where))
        return result

    def params(
        self,
        where: str,
        t: _AgentTable,
        symbols: dict[str, ListingSpec],
        owner: dict[str, str],
        groups: dict[str, list[str]],
    ) -> AgentParams:
        if isinstance(t, _Trader):
            for n, symbol in enumerate(t.instruments):
                if symbol not in symbols:
                    self.fail(f"{where}.instruments[{n}]", f"no listed instrument {symbol!r}")
        if isinstance(t, _Provider):
            if not t.min_markup <= t.markup <= t.max_markup:
                self.fail(f"{where}.markup", "must lie between min_markup and max_markup")
            return ProviderParams(
                markup=t.markup,
                min_markup=t.min_markup,
                max_markup=t.max_markup,
                learning_rate=t.learning_rate,
                patience_ticks=t.patience_ticks,
                ask_units=t.ask_units,
                requote_ticks=t.requote_ticks,
            )
        if isinstance(t, _Buyer):
            self.at_most(f"{where}.initial_units", t.initial_units, t.max_units)
            return BuyerParams(
                budget_minor=t.budget,
                activity=t.activity,
                value_dispersion=t.value_dispersion,
                min_bid_fraction=t.min_bid_fraction,
                max_units=t.max_units,
                order_units=t.order_units,
                order_lifetime_ticks=t.order_lifetime_ticks,
                follows=t.follows,
                resell=t.resell,
                rotate=t.rotate,
                initial_units=t.initial_units,
                instruments=tuple(t.instruments),
            )
        if isinstance(t, _MarketMaker):
            self.at_most(f"{where}.initial_units", t.initial_units, t.max_inventory_units)
            return MarketMakerParams(
                budget_minor=t.budget,
                half_spread_ticks=t.half_spread_ticks,
                quote_units=t.quote_units,
                max_inventory_units=t.max_inventory_units,
                skew_bp_per_unit=t.skew_bp_per_unit,
                requote_ticks=t.requote_ticks,
                ema_weight=t.ema_weight,
                follows=t.follows,
                initial_units=t.initial_units,
                instruments=tuple(t.instruments),
            )
        if isinstance(t, _Noise):
            self.at_most(f"{where}.initial_units", t.initial_units, t.max_inventory_units)
            return NoiseParams(
                budget_minor=t.budget,
                activity=t.activity,
                aggressive_share=t.aggressive_share,
                price_sd_ticks=t.price_sd_ticks,
                max_order_units=t.max_order_units,
                max_inventory_units=t.max_inventory_units,
                order_lifetime_ticks=t.order_lifetime_ticks,
                follows=t.follows,
                initial_units=t.initial_units,
                trend_weight=t.trend_weight,
                trend_ticks=t.trend_ticks,
                instruments=tuple(t.instruments),
            )
        if isinstance(t, _RfqBuyer):
            return RfqBuyerParams(
                budget_minor=t.budget,
                activity=t.activity,
                value_dispersion=t.value_dispersion,
                request_units=t.request_units,
                max_units=t.max_units,
                response_ticks=t.response_ticks,
                follows=t.follows,
                instruments=tuple(t.instruments),
            )
        if isinstance(t, _RfqProvider):
            if not t.min_markup <= t.markup <= t.max_markup:
                self.fail(f"{where}.markup", "must lie between min_markup and max_markup")
            return RfqProviderParams(
                markup=t.markup,
                min_markup=t.min_markup,
                max_markup=t.max_markup,
                learning_rate=t.learning_rate,
            )
        borrower = t.borrower
        if borrower not in groups or groups[borrower] != [borrower]:
            self.fail(f"{where}.borrower", f"no participant {borrower!r}")
        pledges = []
        for n, pledge in enumerate(t.pledged):
            at = f"{where}.pledged[{n}]"
            listing = symbols.get(pledge.symbol)
            if listing is None:
                self.fail(f"{at}.symbol", f"no listed instrument {pledge.symbol!r}")
            if owner[listing.product] != borrower:
                self.fail(f"{at}.symbol", f"{pledge.symbol} is not {borrower}'s to pledge")
            self.at_most(f"{at}.units", pledge.units, listing.issuance_cap_units)
            pledges.append(Pledge(pledge.symbol, pledge.units))
        if not pledges:
            self.fail(f"{where}.pledged", "a lender needs at least one pledged instrument")
        if not t.loan_to_value < t.margin_call_ltv < t.liquidation_ltv:
            self.fail(f"{where}.margin_call_ltv",
                      "LTV thresholds must rise: loan_to_value < margin_call_ltv < "
                      "liquidation_ltv")  # fmt: skip
        return LenderParams(
            borrower=borrower,
            pledged=tuple(pledges),
            loan_to_value=t.loan_to_value,
            margin_call_ltv=t.margin_call_ltv,
            liquidation_ltv=t.liquidation_ltv,
            valuation_every_days=t.valuation_every_days,
            limit_minor=t.limit,
            rate_bp=t.rate_bp,
            term_days=t.term_days,
            cure_hours=t.cure_hours,
            auction_hours=t.auction_hours,
            draw_share=t.draw_share,
            spend_share=t.spend_share,
            top_up_units=t.top_up_units,
        )

    def at_most(self, where: str, value: int, high: int) -> None:
        if value > high:
            self.fail(where, f"must be at most {high}")


# Which roles each kind of agent needs one of.
_ROLES_NEEDED: Final = {
    "provider": ("provider",),
    "buyer": ("buyer", "market_maker"),
    "market_maker": ("market_maker", "buyer"),
    "noise": ("buyer", "market_maker"),
    "lender": ("lender",),
    "rfq_buyer": ("buyer", "market_maker"),
    "rfq_provider": ("provider",),
}
