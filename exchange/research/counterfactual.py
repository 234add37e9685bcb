"""Counterfactual replay: the recorded order flow, executed again under other market rules.

A rules file (TOML) names instruments and what changes for each::

    [instruments."ZJPARK.NX12.COM"]
    tick_size_minor = 500        # another tick
    lot_size_units = 2           # another lot
    fee_rate_bp = 10             # another fee rate
    auction_interval_s = 300     # periodic call auctions instead of continuous trading

The journal's commands are executed in order, at their recorded times, by a fresh exchange
whose listings of those instruments carry the new rules. The flow is the record's, so it
cannot react to the rules: an order off the new tick or lot grid is refused and counted (never
dropped silently), a cancel or amendment of an order that was refused is skipped and counted,
and whatever the exchange refuses for another reason (cash held longer, an order already
filled) is counted by reason. Sequence numbers and order ids are the counterfactual
exchange's own: the record's ids are mapped to the ids assigned here.

An instrument switched to call auctions is listed in ``call_auction`` mode; a recorded switch
to continuous trading becomes a switch to the auction phase, and the book is uncrossed at
every ``auction_interval_s`` from the listing, at the first recorded command at or after each
(idle intervals add nothing: the book did not change in them). Housekeeping runs whenever
expiries are due, as the sequencer runs it.

The original is measured by the same loop with no rules, so both columns are computed alike;
:func:`compare` returns both. The figures are in :class:`DiscoveryFigures`.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from exchange import commands as cmd
from exchange.errors import ExchangeError, Reason
from exchange.research.journal import BrokenChain, InputError, Journal, UnreadableCommand
from exchange.service import OPERATOR, Exchange
from matching import Phase, Trade

__all__ = [
    "RULE_KEYS",
    "Comparison",
    "Counterfactual",
    "DiscoveryFigures",
    "InstrumentRules",
    "compare",
    "load_rules",
    "rows",
    "run",
]

NS_PER_S: Final = 1_000_000_000
# What a rules file may change, per instrument.
RULE_KEYS: Final = ("tick_size_minor", "lot_size_units", "fee_rate_bp", "auction_interval_s")
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
        values: dict[str, int] = {}
        for key, value in table.items():
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
        rules[symbol] = InstrumentRules(**values)
    return rules


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
    """

    symbol: str
    orders_accepted: int = 0
    trades: int = 0
    volume_units: int = 0
    spread_mean_minor: float | None = None
    volatility_bp: float | None = None
    fill_rate: float | None = None
    first_trade_s: float | None = None


@dataclass(slots=True)
class Counterfactual:
    """One run of the recorded flow: figures per named instrument, and what was refused."""

    figures: dict[str, DiscoveryFigures]
    commands: int = 0  # recorded commands read
    refused_by_rules: dict[str, int] = field(default_factory=dict)  # symbol -> orders off grid
    refused_other: dict[str, int] = field(default_factory=dict)  # reason -> commands
    skipped: int = 0  # cancels and amendments of orders this run never accepted
    uncrosses: int = 0  # call auctions run by the new rules


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
        orders = [o for o in exchange.orders.values() if o.symbol == figures.symbol]
        figures.orders_accepted = len(orders)
        submitted = sum(order.quantity_units for order in orders)
        if submitted:
            figures.fill_rate = sum(order.filled_units for order in orders) / submitted
        return figures


def run(
    journal: Journal, rules: Mapping[str, InstrumentRules], symbols: list[str]
) -> Counterfactual:
    """Execute ``journal``'s commands under ``rules`` and measure ``symbols``.

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
                ts_ns, command = record.ts_ns, record.command
                last_ns = ts_ns
                _uncross_due(exchange, auctions, ts_ns, execute, report)
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
    return report


def compare(journal: Journal, rules: Mapping[str, InstrumentRules], origin: Path) -> Comparison:
    """The named instruments' figures as recorded and under ``rules`` (read from ``origin``,
    named in errors). The original run must accept every recorded command: a journal that
    does not replay is refused as input."""
    symbols = list(rules)
    try:
        original = run(journal, {}, symbols)
        counterfactual = run(journal, rules, symbols)
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
        if rule.auction_interval_s is not None:
            changes["trading_mode"] = "call_auction"
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


def _text(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return f"{value:.4f}"
