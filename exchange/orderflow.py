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
from typing import Annotated, BinaryIO, TypeVar

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError

from matching import (
    Accepted,
    AddInstrument,
    AmendOrder,
    CancelOrder,
    Command,
    Engine,
    Event,
    Expire,
    InstrumentSpec,
    OrderType,
    Phase,
    Rejected,
    RejectReason,
    SealedBidPricing,
    SelfTradePrevention,
    SetPhase,
    Side,
    SubmitOrder,
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
        # One validation a row: the model of the row's action, which reads seq, ts and the
        # action first; an unknown action is left to the common model to refuse.
        action = values["action"].lower()
        row = _validated(_ACTION_ROWS.get(action, _Head), line, values, action)
        seq, ts = row.seq, row.ts
        if previous is not None:
            if seq <= previous[0]:
                raise OrderFlowError(
                    line, f"seq {seq} is not above the previous row's {previous[0]}"
                )
            if ts < previous[1]:
                raise OrderFlowError(line, f"ts {ts} is before the previous row's {previous[1]}")
        previous = seq, ts
        command = _command(row, seq, ts)
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
        row = _validated(_InstrumentRow, line, values, None)
        symbol = row.symbol
        if symbol in listings:
            raise OrderFlowError(line, f"symbol {symbol!r} is listed twice")
        # Absent values keep InstrumentSpec's own defaults (and its own idea of "no band").
        given = row.model_dump(exclude={"symbol", "phase"}, exclude_none=True)
        spec = InstrumentSpec(symbol, **given)
        problem = spec.problem()
        if problem is not None:
            raise OrderFlowError(line, f"instrument {symbol}: {problem}")
        phase = row.phase
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


def _command(row: _ActionRow, seq: int, ts: int) -> Command:
    if isinstance(row, _NewRow):
        return SubmitOrder(
            seq,
            ts,
            order_id=row.order_id,
            participant=row.participant,
            symbol=row.symbol,
            side=row.side,
            quantity_units=row.quantity,
            price_minor=row.price,
            order_type=row.type or OrderType.LIMIT,
            tif=row.tif or TimeInForce.GTC,
            expire_ts=row.expire_ts,
            post_only=row.post_only,
            stp=row.stp or SelfTradePrevention.CANCEL_NEWEST,
        )
    if isinstance(row, _CancelRow):
        return CancelOrder(seq, ts, row.order_id, row.participant)
    if isinstance(row, _AmendRow):
        return AmendOrder(
            seq,
            ts,
            row.order_id,
            row.participant,
            price_minor=row.price,
            quantity_units=row.quantity,
        )
    if isinstance(row, _PhaseRow):
        return SetPhase(seq, ts, row.symbol, row.phase, cancel_resting=row.cancel_resting)
    if isinstance(row, _UncrossRow):
        return Uncross(seq, ts, row.symbol)
    assert isinstance(row, _ExpireRow), row
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


# ---------------------------------------------------------------------------- row models
#
# Each row is validated by a strict pydantic model: the columns that an action (or the
# instruments file) reads, each parsed from its text by the column's parser. A row carries
# every column of its header, so the models ignore the columns their action does not read;
# the header check has already refused any column the format does not know.


def _problem(message: str) -> PydanticCustomError:
    # The message travels in the context: a template would read the braces of a value.
    return PydanticCustomError("order_flow", "{message}", {"message": message})


def _required(value: str) -> str:
    if not value:
        raise PydanticCustomError("empty", "is empty")
    return value


def _to_integer(value: str, info: ValidationInfo) -> int:
    if not _INTEGER.fullmatch(value):
        raise _problem(f"{info.field_name} {value!r} is not an integer")
    number = int(value)
    if abs(number) > INT64_MAX:
        raise _problem(f"{info.field_name} {value} is out of the 64-bit range")
    return number


def _integer(value: str, info: ValidationInfo) -> int:
    return _to_integer(_required(value), info)


def _optional_integer(value: str, info: ValidationInfo) -> int | None:
    return _to_integer(value, info) if value else None


def _boolean(value: str, info: ValidationInfo) -> bool:
    answer = _BOOLEANS.get(value.lower())
    if answer is None:
        raise _problem(f"{info.field_name} {value!r} is not true or false")
    return answer


def _optional_choice(kind: type[E]) -> BeforeValidator:
    # Values are case-insensitive: ``gtc`` is GTC and ``BUY`` is buy.
    members = {member.value.lower(): member for member in kind}

    def parse(value: str, info: ValidationInfo) -> E | None:
        if not value:
            return None
        member = members.get(value.lower())
        if member is None:
            allowed = tuple(member.value for member in kind)
            raise _problem(f"{info.field_name} {value!r} is not {_one_of(allowed)}")
        return member

    return BeforeValidator(parse)


def _choice(kind: type[E]) -> BeforeValidator:
    optional = _optional_choice(kind).func
    return BeforeValidator(lambda value, info: optional(_required(value), info))


def _action(value: str) -> str:
    action = _required(value).lower()
    if action not in ACTIONS:
        raise _problem(f"unknown action {value!r}; expected {_one_of(ACTIONS)}")
    return action


Text = Annotated[str, BeforeValidator(_required)]
Integer = Annotated[int, BeforeValidator(_integer)]
OptionalInteger = Annotated[int | None, BeforeValidator(_optional_integer)]
# An absent or empty boolean is false.
Boolean = Annotated[bool, BeforeValidator(_boolean)]


class _Row(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _Head(_Row):
    """What every order-flow row has: its sequence number, time and action."""

    seq: Integer
    ts: Integer
    action: Annotated[str, BeforeValidator(_action)]


class _NewRow(_Head):
    order_id: Integer
    participant: Text
    symbol: Text
    side: Annotated[Side, _choice(Side)]
    quantity: Integer
    price: OptionalInteger = None
    type: Annotated[OrderType | None, _optional_choice(OrderType)] = None
    tif: Annotated[TimeInForce | None, _optional_choice(TimeInForce)] = None
    expire_ts: OptionalInteger = None
    post_only: Boolean = False
    stp: Annotated[SelfTradePrevention | None, _optional_choice(SelfTradePrevention)] = None


class _CancelRow(_Head):
    order_id: Integer
    participant: Text


class _AmendRow(_Head):
    order_id: Integer
    participant: Text
    price: OptionalInteger = None
    quantity: OptionalInteger = None


class _PhaseRow(_Head):
    symbol: Text
    phase: Annotated[Phase, _choice(Phase)]
    cancel_resting: Boolean = False


class _UncrossRow(_Head):
    symbol: Text


class _ExpireRow(_Head):
    """An expiry needs nothing but the time."""


_ActionRow = _NewRow | _CancelRow | _AmendRow | _PhaseRow | _UncrossRow | _ExpireRow
_ACTION_ROWS: dict[str, type[_ActionRow]] = {
    "new": _NewRow,
    "cancel": _CancelRow,
    "amend": _AmendRow,
    "phase": _PhaseRow,
    "uncross": _UncrossRow,
    "expire": _ExpireRow,
}
assert tuple(_ACTION_ROWS) == ACTIONS


class _InstrumentRow(_Row):
    symbol: Text
    tick_size: OptionalInteger = None
    lot_size: OptionalInteger = None
    price_band_low: OptionalInteger = None
    price_band_high: OptionalInteger = None
    max_order_quantity: OptionalInteger = None
    trading_mode: Annotated[TradingMode | None, _optional_choice(TradingMode)] = None
    sealed_bid_pricing: Annotated[SealedBidPricing | None, _optional_choice(SealedBidPricing)] = (
        None
    )
    phase: Annotated[Phase | None, _optional_choice(Phase)] = None


R = TypeVar("R", bound=_Row)


def _validated(model: type[R], line: int, values: dict[str, str], action: str | None) -> R:
    """``values`` as a ``model`` row; the first problem raises :class:`OrderFlowError`, worded
    for the ``action`` that needs the column (None, or a column of every order-flow row: the
    column is needed by every row of its file)."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        column = first["loc"][0] if first["loc"] else "?"
        if first["type"] == "order_flow":
            message = str(first["ctx"]["message"])
        elif first["type"] not in ("empty", "missing"):
            message = f"{column}: {first['msg']}"
        elif action is None or column in _Head.model_fields:
            message = f"{column} is empty"
        elif first["type"] == "missing":
            message = f"action {action!r} needs {column}, but the header has no {column!r} column"
        else:
            message = f"action {action!r} needs {column}, which is empty"
        raise OrderFlowError(line, message) from None


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
                if isinstance(command, SubmitOrder):
                    self.orders_rejected += 1
                if len(self.first_rejections) < REJECTIONS_LISTED_MAX:
                    self.first_rejections.append((line, event))
