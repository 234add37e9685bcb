"""Counterfactual replay: the recorded order flow, executed again under other market rules.

A rules file (TOML) names instruments and what changes for each::

    [instruments."ZJPARK.NX12.COM"]
    tick_size_minor = 500        # another tick
    lot_size_units = 2           # another lot
    fee_rate_bp = 10             # another fee rate
    auction_interval_s = 300     # periodic call auctions instead of continuous trading

    [instruments."ZJPARK.EX12.COM"]
    trading_mode = "sealed_bid"  # sealed bids instead, closed every auction_interval_s
    auction_interval_s = 3600
    sealed_bid_pricing = "second_price"   # or first_price (default: as listed)

The journal's commands are executed in order, at their recorded times, by a fresh exchange
whose listings of those instruments carry the new rules. The flow is the record's, so it
cannot react to the rules: an order off the new tick or lot grid is refused and counted (never
dropped silently), a cancel or amendment of an order that was refused is skipped and counted,
and whatever the exchange refuses for another reason (cash held longer, an order already
filled) is counted by reason. Sequence numbers and order ids are the counterfactual
exchange's own: the record's ids are mapped to the ids assigned here.

An instrument switched to call auctions (or sealed bids) is listed in ``call_auction`` (or
``sealed_bid``) mode; a recorded switch to continuous trading becomes a switch to the auction
phase, and the book is uncrossed (the sealed bids opened and awarded) at every
``auction_interval_s`` from the listing, at the first recorded command at or after each (idle
intervals add nothing: the book did not change in them); the record's own uncrosses of the
instrument are replaced by that schedule, and counted. Housekeeping runs whenever expiries
are due, as the sequencer runs it.

Where the run's true values are known (a simulation's ``summary.json``, :func:`load_truth`),
each run also values the instruments by the market approach (``exchange.pricing``) on its
own trades at its end, and both that value and the last price are compared with the truth.

The original is measured by the same loop with no rules, so both columns are computed alike;
:func:`compare` returns both. The figures are in :class:`DiscoveryFigures`.
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import orjson

from exchange import commands as cmd
from exchange import pricing
from exchange.errors import ExchangeError, Reason
from exchange.research.journal import BrokenChain, InputError, Journal, UnreadableCommand
from exchange.service import OPERATOR, Exchange
from exchange.valuation_inputs import book_snapshot, pricing_records
from matching import Phase, SealedBidPricing, Trade

__all__ = [
    "PERIODIC_MODES",
    "RULE_KEYS",
    "Comparison",
    "Counterfactual",
    "DiscoveryFigures",
    "InstrumentRules",
    "Truth",
    "compare",
    "load_rules",
    "load_truth",
    "rows",
    "run",
]

NS_PER_S: Final = 1_000_000_000
NS_PER_DAY: Final = 86_400 * NS_PER_S
# A summary's true values are in currency units; the figures' money is in minor units (fen).
MINOR_PER_UNIT: Final = 100
# What a rules file may change, per instrument.
RULE_KEYS: Final = (
    "tick_size_minor", "lot_size_units", "fee_rate_bp", "auction_interval_s", "trading_mode",
    "sealed_bid_pricing",
)  # fmt: skip
# The periodic modes an instrument can be switched to (continuous trading is the record's).
PERIODIC_MODES: Final = ("call_auction", "sealed_bid")
# The refusals that the new rules cause by themselves (an order off the new grid).
RULE_REASONS: Final = frozenset(
    {Reason.VALIDATION_PRICE_OFF_TICK, Reason.VALIDATION_QUANTITY_NOT_LOT_MULTIPLE}
)
# Bounds on a rules file's values: beyond them a value is a mistake, not a market design.
MAX_TICK_MINOR: Final = 10**12
MAX_LOT_UNITS: Final = 10**9
MAX_FEE_RATE_BP: Final = 10_000
MAX_AUCTION_INTERVAL_S: Final = 366 * 24 * 3_600
_COLLECTING: Final = (Phase.PRE_OPEN, Phase.AUCTION)


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    """The changed rules of one instrument (None: as recorded)."""

    tick_size_minor: int | None = None
    lot_size_units: int | None = None
    fee_rate_bp: int | None = None
    auction_interval_s: int | None = None
    trading_mode: str | None = None  # one of PERIODIC_MODES, with auction_interval_s
    sealed_bid_pricing: str | None = None  # with trading_mode sealed_bid


def load_rules(path: Path) -> dict[str, InstrumentRules]:
    """The rules in the TOML file ``path``, by symbol; a file that cannot be read or holds an
    unknown key or a bad value raises :class:`InputError` naming the file and the key."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path}: not TOML: {error}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    for key in document:
        if key != "instruments":
            raise InputError(f"{path}: {key}: unknown key (the file holds [instruments.SYMBOL])")
    instruments = document.get("instruments")
    if not isinstance(instruments, dict) or not instruments:
        raise InputError(f"{path}: instruments: name at least one [instruments.SYMBOL] table")
    rules = {}
    bounds = {
        "tick_size_minor": MAX_TICK_MINOR,
        "lot_size_units": MAX_LOT_UNITS,
        "fee_rate_bp": MAX_FEE_RATE_BP,
        "auction_interval_s": MAX_AUCTION_INTERVAL_S,
    }
    for symbol, table in instruments.items():
        where = f"instruments.{symbol}"
        if not isinstance(table, dict):
            raise InputError(f"{path}: {where}: must be a table of rules")
        values: dict[str, int | str] = {}
        for key, value in table.items():
            if key in _WORDS:
                if value not in _WORDS[key]:
                    raise InputError(
                        f"{path}: {where}.{key}: must be one of {', '.join(_WORDS[key])}, "
                        f"not {value!r}"
                    )
                values[key] = value
                continue
            if key not in bounds:
                raise InputError(
                    f"{path}: {where}.{key}: unknown key (known: {', '.join(RULE_KEYS)})"
                )
            low = 0 if key == "fee_rate_bp" else 1
            if type(value) is not int or not low <= value <= bounds[key]:
                raise InputError(
                    f"{path}: {where}.{key}: must be an integer from {low} to {bounds[key]}, "
                    f"not {value!r}"
                )
            values[key] = value
        if "trading_mode" in values and "auction_interval_s" not in values:
            raise InputError(
                f"{path}: {where}.auction_interval_s: {values['trading_mode']} needs the "
                "interval between its auctions"
            )
        if "sealed_bid_pricing" in values and values.get("trading_mode") != "sealed_bid":
            raise InputError(
                f'{path}: {where}.sealed_bid_pricing: goes with trading_mode = "sealed_bid"'
            )
        rules[symbol] = InstrumentRules(**values)  # type: ignore[arg-type]
    return rules


# The rules whose values are words, and the words each takes.
_WORDS: Final = {
    "trading_mode": PERIODIC_MODES,
    "sealed_bid_pricing": tuple(member.value for member in SealedBidPricing),
}


@dataclass(frozen=True, slots=True)
class Truth:
    """A simulation's true values at its end, in minor units per licence by symbol, and the
    last chain hash of the journal they belong to (read from ``origin``)."""

    values_minor: dict[str, float]
    journal_hash: str
    origin: Path


def load_truth(path: Path) -> Truth:
    """The true values of a simulation's ``summary.json`` (``dataex simulate --report``).

    The true values are those at the run's end. A file that cannot be read or does not hold a
    simulation's summary raises :class:`InputError` naming the file."""
    try:
        summary = orjson.loads(path.read_bytes())
    except OSError as error:
        raise InputError(f"{path}: cannot be read: {error.strerror}") from None
    except orjson.JSONDecodeError as error:
        raise InputError(f"{path}: not JSON: {error}") from None
    instruments = summary.get("instruments") if isinstance(summary, dict) else None
    journal_hash = summary.get("journal_hash") if isinstance(summary, dict) else None
    if not isinstance(instruments, list) or not isinstance(journal_hash, str):
        raise InputError(
            f"{path}: not a simulation's summary.json (it needs instruments and journal_hash)"
        )
    truth: dict[str, float] = {}
    for index, row in enumerate(instruments):
        symbol = row.get("symbol") if isinstance(row, dict) else None
        value = row.get("true_value") if isinstance(row, dict) else None
        if not isinstance(symbol, str) or type(value) not in (int, float) or not value > 0:
            raise InputError(
                f"{path}: instruments[{index}]: needs a symbol and a positive true_value"
            )
        truth[symbol] = value * MINOR_PER_UNIT
    return Truth(truth, journal_hash, path)


@dataclass(slots=True)
class DiscoveryFigures:
    """How one instrument's prices were discovered in one run.

    ``spread_mean_minor`` is the time-weighted mean of best ask - best bid while both sides
    are quoted and the book is not crossed (a call phase holds a crossed book until it
    uncrosses); ``volatility_bp`` the sample standard deviation of the log returns between
    consecutive prints (the last price of each command that traded), in basis points;
    ``fill_rate`` the filled share of the units of the orders accepted;
    ``first_trade_s`` the time from the first order the record submits for the instrument to
    its first trade. A figure that cannot be computed (no quotes, fewer than two returns, no
    trade) is None.

    Against a simulation's truth (None without one): ``last_price_error_pct`` is
    100 x (last price / true value - 1) at the run's end; ``valuation_minor`` the market
    approach's value on the run's own trades on the day of its last command, by
    ``valuation_method`` (``cost_fallback`` when too few comparables traded), and
    ``valuation_error_pct`` its error as the last price's. Signed: below the truth is negative.
    """

    symbol: str
    orders_accepted: int = 0
    trades: int = 0
    volume_units: int = 0
    spread_mean_minor: float | None = None
    volatility_bp: float | None = None
    fill_rate: float | None = None
    first_trade_s: float | None = None
    last_price_minor: int | None = None
    true_value_minor: float | None = None
    last_price_error_pct: float | None = None
    valuation_minor: float | None = None
    valuation_method: str | None = None
    valuation_error_pct: float | None = None


@dataclass(slots=True)
class Counterfactual:
    """One run of the recorded flow: figures per named instrument, and what was refused."""

    figures: dict[str, DiscoveryFigures]
    commands: int = 0  # recorded commands read
    refused_by_rules: dict[str, int] = field(default_factory=dict)  # symbol -> orders off grid
    refused_other: dict[str, int] = field(default_factory=dict)  # reason -> commands
    skipped: int = 0  # cancels and amendments of orders this run never accepted
    uncrosses: int = 0  # call auctions (and sealed-bid closes) run by the new rules
    recorded_uncrosses_replaced: int = 0  # recorded ones of instruments the rules schedule
    journal_hash: str = ""  # the last recorded row's chain hash, in hex


@dataclass(frozen=True, slots=True)
class Comparison:
    original: Counterfactual
    counterfactual: Counterfactual


class _Discovery:
    """Figures gathered as one symbol's events arrive."""

    __slots__ = ("figures", "first_order_ns", "first_trade_ns", "last_price", "log_returns",
                 "quote_since_ns", "spread", "spread_ns", "spread_weighted")  # fmt: skip

    def __init__(self, symbol: str) -> None:
        self.figures = DiscoveryFigures(symbol)
        self.first_order_ns: int | None = None
        self.first_trade_ns: int | None = None
        self.last_price: int | None = None
        self.log_returns: list[float] = []
        self.spread: int | None = None  # the quoted spread now (None: one-sided or crossed)
        self.quote_since_ns = 0
        self.spread_ns = 0
        self.spread_weighted = 0

    def quote(self, spread: int | None, ts_ns: int) -> None:
        if self.spread is not None:
            span = ts_ns - self.quote_since_ns
            self.spread_ns += span
            self.spread_weighted += self.spread * span
        self.spread, self.quote_since_ns = spread, ts_ns

    def prints(self, trades: list[Trade], ts_ns: int) -> None:
        figures = self.figures
        figures.trades += len(trades)
        figures.volume_units += sum(trade.quantity for trade in trades)
        if self.first_trade_ns is None:
            self.first_trade_ns = ts_ns
        price = trades[-1].price
        if self.last_price is not None:
            self.log_returns.append(math.log(price / self.last_price))
        self.last_price = price

    def finish(self, exchange: Exchange, end_ns: int) -> DiscoveryFigures:
        self.quote(None, end_ns)
        figures = self.figures
        if self.spread_ns:
            figures.spread_mean_minor = self.spread_weighted / self.spread_ns
        returns = self.log_returns
        if len(returns) >= 2:
            mean = sum(returns) / len(returns)
            variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
            figures.volatility_bp = math.sqrt(variance) * 10_000
        if self.first_trade_ns is not None and self.first_order_ns is not None:
            figures.first_trade_s = (self.first_trade_ns - self.first_order_ns) / NS_PER_S
        figures.last_price_minor = self.last_price
        orders = [o for o in exchange.orders.values() if o.symbol == figures.symbol]
        figures.orders_accepted = len(orders)
        submitted = sum(order.quantity_units for order in orders)
        if submitted:
            figures.fill_rate = sum(order.filled_units for order in orders) / submitted
        return figures


def run(
    journal: Journal,
    rules: Mapping[str, InstrumentRules],
    symbols: list[str],
    truth: Truth | None = None,
) -> Counterfactual:
    """Execute ``journal``'s commands under ``rules`` and measure ``symbols`` (against
    ``truth`` when given: the valuation and the errors).

    A symbol the journal never lists raises :class:`InputError`, as does a journal that
    cannot be read or whose hash chain is broken (``dataex replay`` names where)."""
    exchange = Exchange()
    report = Counterfactual({})
    discovery = {symbol: _Discovery(symbol) for symbol in symbols}
    order_ids: dict[int, int] = {}  # recorded order id -> this run's
    auctions: dict[str, tuple[int, int]] = {}  # symbol -> (next uncross ns, interval ns)
    last_ns = 0

    def execute(command: cmd.Command, ts_ns: int) -> cmd.Command | None:
        outcome = exchange.execute(command, exchange.head_seq + 1, ts_ns)
        touched: dict[str, list[Trade]] = {}
        for event in outcome.events:
            symbol = getattr(event, "symbol", None)
            if symbol in discovery:
                trades = touched.setdefault(symbol, [])
                if type(event) is Trade:
                    trades.append(event)
        for symbol, trades in touched.items():
            if trades:
                discovery[symbol].prints(trades, ts_ns)
            bids, asks = exchange.engine.depth(symbol, 1)
            spread = asks[0][0] - bids[0][0] if bids and asks else None
            discovery[symbol].quote(spread if spread is not None and spread > 0 else None, ts_ns)
        return outcome.command

    try:
        with journal.open() as stream:
            for record in stream.commands:
                report.commands += 1
                report.journal_hash = record.chain_hash.hex()
                ts_ns, command = record.ts_ns, record.command
                last_ns = ts_ns
                _uncross_due(exchange, auctions, ts_ns, execute, report)
                if type(command) is cmd.Uncross and command.symbol in auctions:
                    # The new rules' schedule replaces the recorded one.
                    report.recorded_uncrosses_replaced += 1
                    continue
                if exchange.housekeeping_due(ts_ns):
                    execute(cmd.Housekeeping(OPERATOR), ts_ns)
                command, original_id = _under_rules(command, rules, order_ids, auctions, ts_ns)
                if command is None:
                    report.skipped += 1
                    continue
                if type(command) is cmd.SubmitOrder and command.symbol in discovery:
                    found = discovery[command.symbol]
                    if found.first_order_ns is None:
                        found.first_order_ns = ts_ns
                try:
                    journalled = execute(command, ts_ns)
                except ExchangeError as error:
                    amended = exchange.orders.get(getattr(command, "order_id", 0))
                    symbol = getattr(command, "symbol", None) or (amended and amended.symbol)
                    _count_refusal(report, command, symbol, error, rules)
                    continue
                if original_id and type(journalled) is cmd.SubmitOrder:
                    order_ids[original_id] = journalled.order_id
    except (BrokenChain, UnreadableCommand) as error:
        raise InputError(f"{journal.name}: {error} (dataex replay shows where)") from None
    for symbol in symbols:
        if symbol not in exchange.instruments:
            raise InputError(f"instruments.{symbol}: the journal lists no such instrument")
        report.figures[symbol] = discovery[symbol].finish(exchange, last_ns)
    if truth is not None:
        _against_truth(exchange, report.figures, truth, last_ns)
    return report


def _against_truth(
    exchange: Exchange, figures: dict[str, DiscoveryFigures], truth: Truth, end_ns: int
) -> None:
    """Value each instrument with a known true value by the market approach, as the
    simulation's report does (own trades included), and set the errors."""
    known = [f for f in figures.values() if f.symbol in truth.values_minor]
    if not known:
        return
    as_of = dt.datetime.fromtimestamp(end_ns // NS_PER_S, dt.UTC).date()
    products, trades = pricing_records(exchange)
    market = pricing.prepare_market(products, trades, as_of=as_of)
    by_id = {product.product_id: product for product in products}
    for figure in known:
        true_minor = truth.values_minor[figure.symbol]
        figure.true_value_minor = true_minor
        if figure.last_price_minor is not None:
            figure.last_price_error_pct = 100 * (figure.last_price_minor / true_minor - 1)
        instrument = exchange.instruments[figure.symbol]
        terms = pricing.terms_from_catalogue(instrument.terms)
        book = book_snapshot(exchange, instrument.product_id, terms)
        target = pricing.TargetSpec(by_id[instrument.product_id], terms, as_of, book=book)
        report = pricing.value(market, target)
        figure.valuation_minor = report.value * MINOR_PER_UNIT
        figure.valuation_error_pct = 100 * (figure.valuation_minor / true_minor - 1)
        figure.valuation_method = report.method


def compare(
    journal: Journal,
    rules: Mapping[str, InstrumentRules],
    origin: Path,
    truth: Truth | None = None,
) -> Comparison:
    """The named instruments' figures as recorded and under ``rules`` (read from ``origin``,
    named in errors), against ``truth`` when given. The original run must accept every
    recorded command: a journal that does not replay is refused as input, and so is a truth
    that belongs to another journal (its hash differs)."""
    symbols = list(rules)
    try:
        original = run(journal, {}, symbols, truth)
        if truth is not None and truth.journal_hash != original.journal_hash:
            raise InputError(
                f"{truth.origin}: describes the run whose journal ends in hash "
                f"{truth.journal_hash[:16]}…, not {journal.name} "
                f"({original.journal_hash[:16]}…)"
            )
        counterfactual = run(journal, rules, symbols, truth)
    except InputError as error:
        if str(error).startswith("instruments."):
            raise InputError(f"{origin}: {error}") from None
        raise
    refused = sum(original.refused_other.values()) + sum(original.refused_by_rules.values())
    if refused or original.skipped:
        raise InputError(
            f"{journal.name}: {refused + original.skipped} recorded commands do not replay "
            "as recorded "
            "(dataex replay shows where)"
        )
    return Comparison(original, counterfactual)


# -- the rules applied to the recorded flow ---------------------------------------------------


def _under_rules(
    command: cmd.Command,
    rules: Mapping[str, InstrumentRules],
    order_ids: dict[int, int],
    auctions: dict[str, tuple[int, int]],
    ts_ns: int,
) -> tuple[cmd.Command | None, int]:
    """The command to execute for the recorded ``command`` (None: skip it, it names an order
    this run never accepted), and the recorded order id it assigns (0: none)."""
    kind = type(command)
    if kind is cmd.SubmitOrder:
        return replace(command, order_id=0), command.order_id
    if kind is cmd.CancelOrder or kind is cmd.AmendOrder:
        mapped = order_ids.get(command.order_id)
        return (None if mapped is None else replace(command, order_id=mapped)), 0
    if kind is cmd.ListInstrument and command.symbol in rules:
        rule = rules[command.symbol]
        changes: dict[str, Any] = {
            key: value
            for key in ("tick_size_minor", "lot_size_units", "fee_rate_bp")
            if (value := getattr(rule, key)) is not None
        }
        if rule.sealed_bid_pricing is not None:
            changes["sealed_bid_pricing"] = rule.sealed_bid_pricing
        if rule.auction_interval_s is not None:
            changes["trading_mode"] = rule.trading_mode or "call_auction"
            interval_ns = rule.auction_interval_s * NS_PER_S
            auctions[command.symbol] = (ts_ns + interval_ns, interval_ns)
        return replace(command, **changes), 0
    if kind is cmd.SetPhase and command.symbol in auctions and command.phase == "continuous":
        return replace(command, phase="auction"), 0
    return command, 0


def _uncross_due(
    exchange: Exchange,
    auctions: dict[str, tuple[int, int]],
    ts_ns: int,
    execute: Any,
    report: Counterfactual,
) -> None:
    """Uncross each auction instrument whose interval has ended by ``ts_ns`` (once, however
    many intervals passed with nothing recorded), if its book is collecting orders."""
    for symbol, (due_ns, interval_ns) in auctions.items():
        if due_ns > ts_ns:
            continue
        passed = (ts_ns - due_ns) // interval_ns
        last_due_ns = due_ns + passed * interval_ns
        auctions[symbol] = (last_due_ns + interval_ns, interval_ns)
        if symbol in exchange.instruments and exchange.engine.phase(symbol) in _COLLECTING:
            if exchange.housekeeping_due(last_due_ns):
                execute(cmd.Housekeeping(OPERATOR), last_due_ns)
            execute(cmd.Uncross(OPERATOR, symbol), last_due_ns)
            report.uncrosses += 1


def _count_refusal(
    report: Counterfactual,
    command: cmd.Command,
    symbol: str | None,
    error: ExchangeError,
    rules: Mapping[str, InstrumentRules],
) -> None:
    if type(command) is cmd.ListInstrument and symbol in rules:
        # The new rules make the listing itself impossible: a bad rules file, not a result.
        raise InputError(f"instruments.{symbol}: the exchange refuses the listing: {error.message}")
    if error.reason in RULE_REASONS:
        assert symbol is not None, "only orders and amendments are off a grid"
        report.refused_by_rules[symbol] = report.refused_by_rules.get(symbol, 0) + 1
    else:
        name = str(error.reason)
        report.refused_other[name] = report.refused_other.get(name, 0) + 1


def rows(comparison: Comparison) -> Iterator[tuple[str, str, str, str]]:
    """(symbol, figure, original, counterfactual) as text, for a table or a CSV file."""
    for symbol, before in comparison.original.figures.items():
        after = comparison.counterfactual.figures[symbol]
        refused = comparison.counterfactual.refused_by_rules.get(symbol, 0)
        for name, one, other in (
            ("orders accepted", before.orders_accepted, after.orders_accepted),
            ("refused by the new rules", 0, refused),
            ("trades", before.trades, after.trades),
            ("volume (units)", before.volume_units, after.volume_units),
            ("fill rate", before.fill_rate, after.fill_rate),
            ("mean spread (minor)", before.spread_mean_minor, after.spread_mean_minor),
            ("volatility of returns (bp)", before.volatility_bp, after.volatility_bp),
            ("time to first trade (s)", before.first_trade_s, after.first_trade_s),
        ):
            yield symbol, name, _text(one), _text(other)
        if before.true_value_minor is None:
            continue
        for name, one, other in (
            ("true value (minor)", before.true_value_minor, after.true_value_minor),
            ("last price (minor)", before.last_price_minor, after.last_price_minor),
            ("last price error (%)", before.last_price_error_pct, after.last_price_error_pct),
            ("market approach value (minor)", before.valuation_minor, after.valuation_minor),
            ("market approach method", before.valuation_method, after.valuation_method),
            ("market approach error (%)", before.valuation_error_pct, after.valuation_error_pct),
        ):
            yield symbol, name, _text(one), _text(other)


def _text(value: float | int | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int | str):
        return str(value)
    return f"{value:.4f}"
