"""Order-flow files: CSV rows in, engine commands out; trades, book and events back to files.

The format is described in ``docs/order-flow-format.md``. Parsing is a pure function of the
text lines (``parse_order_flow``, ``parse_instruments``) so it can be tested without files,
and ``read_*`` are the thin file adapters around it; ``trade_row``, ``book_rows`` and
``event_line`` turn results into the output rows that ``dataex match`` writes. Prices are
the engine's integers (minor currency units per licence unit, multiples of the tick size)
and quantities are licence units; nothing is converted.

A row the adapter cannot turn into a command raises :class:`OrderFlowError` naming its line.
A command the engine refuses is not a file error: the engine answers with ``Rejected``.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO, TypeVar

import orjson

from matching import (
    Accepted,
    AddInstrument,
    Amend,
    Cancel,
    Command,
    Engine,
    Event,
    Expire,
    InstrumentSpec,
    NewOrder,
    OrderType,
    Phase,
    Rejected,
    RejectReason,
    SealedBidPricing,
    SelfTradePrevention,
    SetPhase,
    Side,
    TimeInForce,
    Trade,
    TradingMode,
    Uncross,
    event_to_dict,
)

ACTIONS = ("new", "cancel", "amend", "phase", "uncross", "expire")
ORDER_FLOW_REQUIRED_COLUMNS = ("seq", "ts", "action")
ORDER_FLOW_COLUMNS = (
    *ORDER_FLOW_REQUIRED_COLUMNS,
    "order_id",
    "participant",
    "symbol",
    "side",
    "type",
    "price",
    "quantity",
    "tif",
    "phase",
    "expire_ts",
    "post_only",
    "stp",
    "cancel_resting",
)
INSTRUMENT_REQUIRED_COLUMNS = ("symbol",)
INSTRUMENT_COLUMNS = (
    *INSTRUMENT_REQUIRED_COLUMNS,
    "tick_size",
    "lot_size",
    "trading_mode",
    "price_band_low",
    "price_band_high",
    "max_order_quantity",
    "sealed_bid_pricing",
    "phase",
)
TRADE_COLUMNS = (
    "trade_id",
    "seq",
    "ts",
    "symbol",
    "price",
    "quantity",
    "buy_order_id",
    "sell_order_id",
    "buyer",
    "seller",
    "aggressor",
)
BOOK_COLUMNS = ("symbol", "side", "level", "price", "quantity")

# Integers must fit a signed 64-bit column, as they do in the exchange's database.
INT64_MAX = 2**63 - 1
# The summary lists at most this many rejected rows; the events file has all of them.
REJECTIONS_LISTED_MAX = 10
# ``Engine.depth`` takes a level limit; the book file shows every level.
BOOK_LEVELS_ALL = INT64_MAX

_INTEGER = re.compile(r"[+-]?[0-9]+")
_BOOLEANS = {
    "": False,
    "false": False,
    "0": False,
    "no": False,
    "true": True,
    "1": True,
    "yes": True,
}

E = TypeVar("E", bound=StrEnum)


class OrderFlowError(Exception):
    """A line of an input file that cannot be read: ``line`` is 1-based, as editors count."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(line, message)
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class Listing:
    """An instrument from the instruments file; ``phase`` None means "not given"."""

    spec: InstrumentSpec
    phase: Phase | None = None


# ---------------------------------------------------------------------------- reading


def parse_order_flow(
    lines: Iterable[str], listings: Mapping[str, Listing] | None = None
) -> Iterator[tuple[int, Command]]:
    """Yield ``(line, command)`` for every row of an order-flow file, in file order.

    Before the first ``new``, ``phase`` or ``uncross`` row naming a symbol, an
    ``AddInstrument`` (with that row's line, seq and ts) opens its book: with the spec of
    ``listings`` or tick 1, lot 1, continuous mode; in the listing's phase if it gives one,
    else in the row's phase if it is a ``phase`` row (which it then replaces), else
    continuous (``auction`` for the call-auction and sealed-bid modes, which forbid
    continuous). Raises :class:`OrderFlowError` at the first row that cannot be read, after
    yielding the rows before it.
    """
    listings = listings or {}
    opened: set[str] = set()
    previous: tuple[int, int] | None = None  # (seq, ts) of the previous row
    for line, values in _read_table(lines, ORDER_FLOW_REQUIRED_COLUMNS, ORDER_FLOW_COLUMNS):
        row = _Row(line, values)
        seq, ts = row.integer("seq"), row.integer("ts")
        if previous is not None:
            if seq <= previous[0]:
                raise OrderFlowError(
                    line, f"seq {seq} is not above the previous row's {previous[0]}"
                )
            if ts < previous[1]:
                raise OrderFlowError(line, f"ts {ts} is before the previous row's {previous[1]}")
        previous = seq, ts
        action = row.choice_text("action", ACTIONS)
        row.action = action
        command = _command(row, action, seq, ts)
        symbol = getattr(command, "symbol", None)
        if symbol is not None and symbol not in opened:
            opened.add(symbol)
            listing = listings.get(symbol) or Listing(InstrumentSpec(symbol))
            phase = _opening_phase(listing, command)
            yield line, AddInstrument(seq, ts, listing.spec, phase)
            if isinstance(command, SetPhase) and listing.phase is None and phase is command.phase:
                continue  # the row's phase is the opening phase: the row is the listing
        yield line, command


def parse_instruments(lines: Iterable[str]) -> dict[str, Listing]:
    """Read an instruments file: one row per symbol, every column but ``symbol`` optional.

    Raises :class:`OrderFlowError` for an unreadable row, a duplicate symbol, a spec the
    engine would refuse (``InstrumentSpec.problem``) or a phase the trading mode forbids.
    """
    listings: dict[str, Listing] = {}
    for line, values in _read_table(lines, INSTRUMENT_REQUIRED_COLUMNS, INSTRUMENT_COLUMNS):
        row = _Row(line, values)
        symbol = row.required("symbol")
        if symbol in listings:
            raise OrderFlowError(line, f"symbol {symbol!r} is listed twice")
        spec_fields: dict[str, object] = {}
        for name in (
            "tick_size",
            "lot_size",
            "price_band_low",
            "price_band_high",
            "max_order_quantity",
        ):
            spec_fields[name] = row.optional_integer(name)
        spec_fields["trading_mode"] = row.optional_choice("trading_mode", TradingMode)
        spec_fields["sealed_bid_pricing"] = row.optional_choice(
            "sealed_bid_pricing", SealedBidPricing
        )
        # Absent values keep InstrumentSpec's own defaults (and its own idea of "no band").
        given = {name: value for name, value in spec_fields.items() if value is not None}
        spec = InstrumentSpec(symbol, **given)  # type: ignore[arg-type]
        problem = spec.problem()
        if problem is not None:
            raise OrderFlowError(line, f"instrument {symbol}: {problem}")
        phase = row.optional_choice("phase", Phase)
        if phase is Phase.CONTINUOUS and spec.trading_mode is not TradingMode.CONTINUOUS:
            raise OrderFlowError(
                line,
                f"instrument {symbol}: trading mode {spec.trading_mode} has no continuous phase",
            )
        listings[symbol] = Listing(spec, phase)
    return listings


def read_order_flow(
    path: Path, listings: Mapping[str, Listing] | None = None
) -> Iterator[tuple[int, Command]]:
    """``parse_order_flow`` over a UTF-8 file, read lazily."""
    with path.open("rb") as file:
        yield from parse_order_flow(_utf8_lines(file), listings)


def read_instruments(path: Path) -> dict[str, Listing]:
    """``parse_instruments`` over a UTF-8 file."""
    with path.open("rb") as file:
        return parse_instruments(_utf8_lines(file))


def _utf8_lines(file: BinaryIO) -> Iterator[str]:
    # Decoding line by line, rather than through a text wrapper that decodes ahead in
    # chunks, lets an undecodable byte be reported on its own line. Spreadsheets often start
    # the file with a byte-order mark; it is not part of the first column's name.
    for line, raw in enumerate(file, start=1):
        try:
            yield raw.decode("utf-8-sig" if line == 1 else "utf-8")
        except UnicodeDecodeError:
            raise OrderFlowError(line, "not UTF-8 text") from None


def _opening_phase(listing: Listing, command: Command) -> Phase:
    if listing.phase is not None:
        return listing.phase
    continuous_allowed = listing.spec.trading_mode is TradingMode.CONTINUOUS
    if isinstance(command, SetPhase) and (
        continuous_allowed or command.phase is not Phase.CONTINUOUS
    ):
        return command.phase
    return Phase.CONTINUOUS if continuous_allowed else Phase.AUCTION


def _command(row: _Row, action: str, seq: int, ts: int) -> Command:
    if action == "new":
        return NewOrder(
            seq,
            ts,
            order_id=row.integer("order_id"),
            participant=row.required("participant"),
            symbol=row.required("symbol"),
            side=row.choice("side", Side),
            quantity=row.integer("quantity"),
            price=row.optional_integer("price"),
            order_type=row.optional_choice("type", OrderType) or OrderType.LIMIT,
            tif=row.optional_choice("tif", TimeInForce) or TimeInForce.GTC,
            expire_ts=row.optional_integer("expire_ts"),
            post_only=row.boolean("post_only"),
            stp=row.optional_choice("stp", SelfTradePrevention)
            or SelfTradePrevention.CANCEL_NEWEST,
        )
    if action == "cancel":
        return Cancel(seq, ts, row.integer("order_id"), row.required("participant"))
    if action == "amend":
        return Amend(
            seq,
            ts,
            row.integer("order_id"),
            row.required("participant"),
            price=row.optional_integer("price"),
            quantity=row.optional_integer("quantity"),
        )
    if action == "phase":
        return SetPhase(
            seq,
            ts,
            row.required("symbol"),
            row.choice("phase", Phase),
            cancel_resting=row.boolean("cancel_resting"),
        )
    if action == "uncross":
        return Uncross(seq, ts, row.required("symbol"))
    assert action == "expire", action
    return Expire(seq, ts)


def _read_table(
    lines: Iterable[str], required: tuple[str, ...], known: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line, {column: stripped text})`` for each data row of a CSV text.

    Lines starting with ``#`` are comments; blank lines are skipped. The first other line is
    the header: column names are case-insensitive, must be known and appear once, and the
    ``required`` ones must be there. Every row must have as many fields as the header.
    """
    reader = csv.reader(_without_comments(lines))
    header: list[str] | None = None
    try:
        for fields in reader:
            line = reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if header is None:
                header = _header(line, fields, required, known)
                continue
            if len(fields) != len(header):
                raise OrderFlowError(
                    line, f"row has {len(fields)} fields but the header has {len(header)}"
                )
            yield line, {name: value.strip() for name, value in zip(header, fields, strict=True)}
    except csv.Error as error:
        raise OrderFlowError(reader.line_num, f"not readable as CSV: {error}") from None
    if header is None:
        raise OrderFlowError(
            1, f"no header: the first row names the columns ({', '.join(required)}, ...)"
        )


def _without_comments(lines: Iterable[str]) -> Iterator[str]:
    # A comment becomes an empty line rather than vanishing, so that csv's line count (and
    # therefore every error message) still matches the file.
    for text in lines:
        yield "\n" if text.startswith("#") else text


def _header(
    line: int, fields: list[str], required: tuple[str, ...], known: tuple[str, ...]
) -> list[str]:
    names = [name.strip().lower() for name in fields]
    for name in names:
        if name not in known:
            raise OrderFlowError(line, f"unknown column {name!r}; known: {', '.join(known)}")
    duplicates = [name for name, count in Counter(names).items() if count > 1]
    if duplicates:
        raise OrderFlowError(line, f"column {duplicates[0]!r} appears twice")
    for name in required:
        if name not in names:
            raise OrderFlowError(line, f"missing required column {name!r}")
    return names


class _Row:
    """One data row's fields, with typed accessors that raise errors naming the line."""

    __slots__ = ("action", "line", "values")

    def __init__(self, line: int, values: dict[str, str]) -> None:
        self.line = line
        self.values = values
        self.action: str | None = None

    def required(self, column: str) -> str:
        value = self.values.get(column, "")
        if value:
            return value
        if self.action is None:
            raise OrderFlowError(self.line, f"{column} is empty")
        needs = f"action {self.action!r} needs {column}"
        if column not in self.values:
            raise OrderFlowError(self.line, f"{needs}, but the header has no {column!r} column")
        raise OrderFlowError(self.line, f"{needs}, which is empty")

    def integer(self, column: str) -> int:
        return self._to_integer(column, self.required(column))

    def optional_integer(self, column: str) -> int | None:
        text = self.values.get(column, "")
        return self._to_integer(column, text) if text else None

    def boolean(self, column: str) -> bool:
        text = self.values.get(column, "")
        value = _BOOLEANS.get(text.lower())
        if value is None:
            raise OrderFlowError(self.line, f"{column} {text!r} is not true or false")
        return value

    def choice_text(self, column: str, allowed: tuple[str, ...]) -> str:
        text = self.required(column).lower()
        if text not in allowed:
            raise OrderFlowError(
                self.line, f"unknown {column} {self.values[column]!r}; expected {_one_of(allowed)}"
            )
        return text

    def choice(self, column: str, kind: type[E]) -> E:
        self.required(column)
        value = self.optional_choice(column, kind)
        assert value is not None
        return value

    def optional_choice(self, column: str, kind: type[E]) -> E | None:
        text = self.values.get(column, "")
        if not text:
            return None
        # Values are case-insensitive: ``gtc`` is GTC and ``BUY`` is buy.
        for member in kind:
            if member.value.lower() == text.lower():
                return member
        allowed = tuple(member.value for member in kind)
        raise OrderFlowError(self.line, f"{column} {text!r} is not {_one_of(allowed)}")

    def _to_integer(self, column: str, text: str) -> int:
        if not _INTEGER.fullmatch(text):
            raise OrderFlowError(self.line, f"{column} {text!r} is not an integer")
        value = int(text)
        if abs(value) > INT64_MAX:
            raise OrderFlowError(self.line, f"{column} {text} is out of the 64-bit range")
        return value


def _one_of(allowed: tuple[str, ...]) -> str:
    return ", ".join(allowed[:-1]) + f" or {allowed[-1]}" if len(allowed) > 1 else allowed[0]


# ---------------------------------------------------------------------------- writing


def trade_row(trade: Trade) -> tuple[object, ...]:
    """A trade as a row under ``TRADE_COLUMNS``; the aggressor is empty for auction trades."""
    return (
        trade.trade_id,
        trade.seq,
        trade.ts,
        trade.symbol,
        trade.price,
        trade.quantity,
        trade.buy_order_id,
        trade.sell_order_id,
        trade.buyer,
        trade.seller,
        "" if trade.aggressor is None else trade.aggressor.value,
    )


def book_rows(engine: Engine) -> Iterator[tuple[object, ...]]:
    """Every resting price level as a row under ``BOOK_COLUMNS``: symbols sorted, then bids
    and asks, each best first (level 1). Sealed-bid books and market orders waiting for an
    auction are not price levels and do not appear."""
    for symbol in engine.symbols():
        bids, asks = engine.depth(symbol, BOOK_LEVELS_ALL)
        for side, levels in ((Side.BUY, bids), (Side.SELL, asks)):
            for level, (price, quantity) in enumerate(levels, start=1):
                yield symbol, side.value, level, price, quantity


def event_line(line: int, seq: int, event: Event) -> str:
    """One event as a JSON line, tagged with the input ``line`` and ``seq`` that caused it."""
    return orjson.dumps({"line": line, "seq": seq, **event_to_dict(event)}).decode() + "\n"


# ---------------------------------------------------------------------------- summary


@dataclass(slots=True)
class SymbolTally:
    trades: int = 0
    volume: int = 0  # licence units traded
    last_price: int | None = None


@dataclass(slots=True)
class FlowTally:
    """What a run of an order flow did, counted from the engine's events."""

    rows: int = 0
    orders_accepted: int = 0
    orders_rejected: int = 0
    rejections: Counter[RejectReason] = field(default_factory=Counter)  # of any command
    first_rejections: list[tuple[int, Rejected]] = field(default_factory=list)
    trades: int = 0
    volume: int = 0
    symbols: dict[str, SymbolTally] = field(default_factory=dict)
    _last_line: int = field(default=0, repr=False)  # rows are counted by line

    def record(self, line: int, command: Command, events: list[Event]) -> None:
        """Count the ``events`` that ``command`` (read from ``line``) caused."""
        if line != self._last_line:
            self.rows += 1
            self._last_line = line
        for event in events:
            if isinstance(event, Trade):
                self.trades += 1
                self.volume += event.quantity
                tally = self.symbols.setdefault(event.symbol, SymbolTally())
                tally.trades += 1
                tally.volume += event.quantity
                tally.last_price = event.price
            elif isinstance(event, Accepted):
                self.orders_accepted += 1
            elif isinstance(event, Rejected):
                self.rejections[event.reason] += 1
                if isinstance(command, NewOrder):
                    self.orders_rejected += 1
                if len(self.first_rejections) < REJECTIONS_LISTED_MAX:
                    self.first_rejections.append((line, event))
