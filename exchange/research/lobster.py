"""LOBSTER: the message and order-book files that market-microstructure research reads.

LOBSTER describes one symbol's day in two CSV files without headers, row ``r`` of the second
being the book right after message ``r`` of the first.

Message file, six columns:

1. time: seconds after midnight, with decimals (we write nine: nanoseconds);
2. type: 1 a new limit order, 2 a partial cancellation, 3 a deletion (the rest of the order),
   4 an execution of a visible limit order, 5 an execution of a hidden limit order, 6 a
   cross trade (auction), 7 a trading halt indicator;
3. order id; 4. size; 5. price (an integer; see below);
6. direction: 1 a buy limit order, -1 a sell limit order (for an execution, the side of the
   resting order that was executed).

Order-book file, ``4 N`` columns for ``N`` levels: ask price 1, ask size 1, bid price 1, bid
size 1, ask price 2, ... An empty level holds the dummy price 9999999999 (asks) or
-9999999999 (bids) with size 0.

Prices are integers in one of two units (:class:`PriceUnit`), per licence unit: LOBSTER's
own convention, currency units times 10,000 (their US files hold dollars x 10,000; ours yuan
x 10,000), written by default so that off-the-shelf LOBSTER readers work unchanged; or the
exchange's minor units (fen, yuan x 100). A side-car beside each pair,
``<ticker>_<date>_<start>_<end>_units_<N>.json``, states which; a pair without one (any file
LOBSTER itself made) is in LOBSTER's convention. Halt indicators' prices (-1, 0, 1) and the
empty level's dummy prices are the same in both.

:func:`check_lobster` rebuilds the visible book from the messages alone (a plain book of
price levels with each resting order's remaining size: executions reduce the resting order
they name, nothing is matched again) and, given the order-book file, compares it row by row.
:class:`LobsterExport` writes a market's messages and book during a replay of its journal.
"""

from __future__ import annotations

import csv
import io
import os
import re
import time
from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, NamedTuple

import orjson

from exchange.money import MINOR_PER_UNIT
from exchange.research.journal import InputError, RecordedCommand
from exchange.research.tables import Window
from exchange.research.times import NS_PER_DAY, NS_PER_S, format_time
from exchange.service import Exchange, Outcome
from exchange.whole_files import temporary_beside
from ledger.store import StoredEntry
from matching import Accepted as AcceptedEvent
from matching import Amended, Cancelled, Phase, PhaseChanged, Side, Trade, TradingMode

__all__ = [
    "ASK_DUMMY_PRICE",
    "BID_DUMMY_PRICE",
    "MAX_LEVELS",
    "LevelBook",
    "LobsterExport",
    "LobsterMismatch",
    "LobsterReport",
    "Message",
    "PriceUnit",
    "check_lobster",
    "orderbook_column_name",
    "read_messages",
    "read_orderbook",
    "read_units",
    "units_path",
]

ASK_DUMMY_PRICE = 9_999_999_999
BID_DUMMY_PRICE = -9_999_999_999
BUY, SELL = 1, -1
MAX_LEVELS = 200
SUBMISSION, CANCELLATION, DELETION, EXECUTION, HIDDEN_EXECUTION, CROSS, HALT = range(1, 8)
MESSAGE_COLUMNS = ("time", "type", "order id", "size", "price", "direction")
# LOBSTER's halt indicator: the price says what happened.
HALT_PRICE = {Phase.HALTED: -1, Phase.CLOSED: -1, Phase.PRE_OPEN: 0, Phase.AUCTION: 0,
              Phase.CONTINUOUS: 1}  # fmt: skip
_TIME = re.compile(r"([0-9]+)(?:\.([0-9]{1,9}))?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_PROGRESS_EVERY_MESSAGES = 8_192


class PriceUnit(StrEnum):
    """The unit of a LOBSTER file's prices."""

    LOBSTER = "lobster"  # currency units x 10,000: LOBSTER's own convention
    FEN = "fen"  # the exchange's minor units: currency units x 100

    @property
    def per_currency_unit(self) -> int:
        return 10_000 if self is PriceUnit.LOBSTER else MINOR_PER_UNIT

    @property
    def per_minor_unit(self) -> int:
        """What one minor unit (fen) is in this unit: 100, or 1."""
        return self.per_currency_unit // MINOR_PER_UNIT

    def describe(self) -> str:
        return f"yuan x {self.per_currency_unit:,}"

    def to_minor(self, price: int) -> int | None:
        """``price`` in minor units, or None when it holds a fraction of one.

        >>> PriceUnit.LOBSTER.to_minor(1_015_000), PriceUnit.LOBSTER.to_minor(1_015_050)
        (10150, None)
        """
        minor, fraction = divmod(price, self.per_minor_unit)
        return None if fraction else minor


class Message(NamedTuple):
    """One LOBSTER message; ``time_ns`` is nanoseconds after midnight."""

    time_ns: int
    type: int
    order_id: int
    size: int
    price: int
    direction: int

    def __str__(self) -> str:
        return (
            f"{lobster_time(self.time_ns)},{self.type},{self.order_id},{self.size},"
            f"{self.price},{self.direction}"
        )


def lobster_time(ns_after_midnight: int) -> str:
    """``34200000000001`` -> ``'34200.000000001'``: seconds after midnight, 9 decimals."""
    seconds, nanoseconds = divmod(ns_after_midnight, NS_PER_S)
    return f"{seconds}.{nanoseconds:09d}"


def orderbook_column_name(index: int) -> str:
    """The name of the 0-based column ``index`` of an order-book row (``ask price 1``...)."""
    level, which = divmod(index, 4)
    return f"{('ask price', 'ask size', 'bid price', 'bid size')[which]} {level + 1}"


# -- reading -----------------------------------------------------------------------------------


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    with path.open("rb") as file:
        text = io.TextIOWrapper(file, encoding="utf-8", newline="")
        try:
            yield from enumerate(csv.reader(text), start=1)
        except UnicodeDecodeError as error:
            raise InputError(f"{path}: not UTF-8 text ({error.reason})") from None
        except csv.Error as error:
            raise InputError(f"{path}: not CSV: {error}") from None


def _integer(text: str, where: str) -> int:
    text = text.strip()
    if not _INTEGER.fullmatch(text):
        raise InputError(f"{where}: {text!r} is not an integer")
    return int(text)


def read_messages(path: Path) -> Iterator[tuple[int, Message]]:
    """The messages of a LOBSTER message file with their line numbers; a row that is not a
    message raises :class:`InputError` naming its line and column."""
    previous_ns = 0
    for number, fields in _rows(path):
        if len(fields) != len(MESSAGE_COLUMNS):
            raise InputError(
                f"{path}:{number}: {len(fields)} columns; a message has 6: "
                + ", ".join(MESSAGE_COLUMNS)
            )
        where = f"{path}:{number}: column"
        match = _TIME.fullmatch(fields[0].strip())
        if match is None:
            raise InputError(
                f"{where} 1 (time): {fields[0]!r} is not seconds after midnight with at most "
                "9 decimals"
            )
        time_ns = int(match[1]) * NS_PER_S + int((match[2] or "").ljust(9, "0"))
        if time_ns < previous_ns:
            raise InputError(f"{where} 1 (time): {fields[0]} is before the row above")
        previous_ns = time_ns
        kind = _integer(fields[1], f"{where} 2 (type)")
        if not SUBMISSION <= kind <= HALT:
            raise InputError(f"{where} 2 (type): {kind} is not a message type 1..7")
        order_id = _integer(fields[2], f"{where} 3 (order id)")
        size = _integer(fields[3], f"{where} 4 (size)")
        if size < 0:
            raise InputError(f"{where} 4 (size): {size} is negative")
        price = _integer(fields[4], f"{where} 5 (price)")
        direction = _integer(fields[5], f"{where} 6 (direction)")
        if direction not in (BUY, SELL):
            raise InputError(f"{where} 6 (direction): {direction} is not 1 (buy) or -1 (sell)")
        yield number, Message(time_ns, kind, order_id, size, price, direction)


def read_orderbook(path: Path) -> Iterator[tuple[int, list[int]]]:
    """The rows of a LOBSTER order-book file as integers; every row must have the first
    row's ``4 N`` columns."""
    width = None
    for number, fields in _rows(path):
        if width is None:
            width = len(fields)
            if width == 0 or width % 4 or width // 4 > MAX_LEVELS:
                raise InputError(
                    f"{path}:{number}: {width} columns; an order-book row has 4 per level "
                    f"(ask price, ask size, bid price, bid size), 1..{MAX_LEVELS} levels"
                )
        elif len(fields) != width:
            raise InputError(f"{path}:{number}: {len(fields)} columns, the first row has {width}")
        yield (
            number,
            [
                _integer(text, f"{path}:{number}: column {i + 1} ({orderbook_column_name(i)})")
                for i, text in enumerate(fields)
            ],
        )


_MESSAGE_NAME = re.compile(r"(.*)_message_([0-9]+)\.csv")


def units_path(messages: Path) -> Path:
    """The side-car that states the prices' unit of the message file ``messages`` (and of its
    order-book file): ``X_message_N.csv`` -> ``X_units_N.json``; any other name gets
    ``.units.json`` appended."""
    match = _MESSAGE_NAME.fullmatch(messages.name)
    if match is None:
        return messages.with_name(f"{messages.name}.units.json")
    return messages.with_name(f"{match[1]}_units_{match[2]}.json")


def read_units(messages: Path, given: PriceUnit | None = None) -> tuple[PriceUnit, str]:
    """The prices' unit of ``messages`` and what says so: its side-car, ``given`` (the
    reader's word, for a file without one), or LOBSTER's convention. A side-car that ``given``
    contradicts, or that cannot be read, raises :class:`InputError`."""
    path = units_path(messages)
    if not path.exists():
        if given is not None:
            return given, "--price-unit"
        return PriceUnit.LOBSTER, "LOBSTER's convention (no side-car)"
    try:
        document = orjson.loads(path.read_bytes())
        unit = PriceUnit(document["price_unit"])
        scale = document["prices_per_currency_unit"]
    except OSError as error:
        raise InputError(f"{path}: {error.strerror or error}") from None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise InputError(
            f"{path}: not a side-car of LOBSTER units: it needs price_unit "
            f"({' or '.join(PriceUnit)}) and prices_per_currency_unit"
        ) from None
    if scale != unit.per_currency_unit:
        raise InputError(
            f"{path}: price_unit {unit} is {unit.per_currency_unit:,} a currency unit, not {scale}"
        )
    if given is not None and given is not unit:
        raise InputError(f"--price-unit {given}, but {path} says {unit}")
    return unit, f"the side-car {path}"


# -- the book ----------------------------------------------------------------------------------


class LevelBook:
    """The visible book as LOBSTER sees it: each resting order's side, price and remaining
    size, and the total size at each price. No matching: messages say what happened.

    Size a message removes from an order this book never saw (the book began before the
    file) comes out of the *anonymous* size at that price, seeded from the order-book file.

    Checked against an order-book file of N levels, the book knows only what the file let it
    see. LOBSTER writes messages only for events within the N levels shown, so a level beyond
    them changes unseen: :attr:`horizon` holds, per side, the worst price of the last row when
    that row showed all N levels (None when it showed fewer, so the whole side was in view).
    A message beyond the horizon that does not fit what the book holds there is taken on
    trust, and :meth:`reveal` sets a level that comes into view from there as the file shows
    it. Without an order-book file every level is in view and every message is checked.
    """

    __slots__ = ("anonymous", "horizon", "orders", "prices", "resting", "totals")

    def __init__(self) -> None:
        self.orders: dict[int, list[int]] = {}  # order id -> [direction, price, remaining]
        self.totals: dict[int, dict[int, int]] = {BUY: {}, SELL: {}}  # price -> total size
        self.prices: dict[int, list[int]] = {BUY: [], SELL: []}  # ascending
        self.anonymous: dict[tuple[int, int], int] = {}
        # (direction, price) -> the ids of the known orders there, to forget them on a reveal
        self.resting: dict[tuple[int, int], set[int]] = {}
        self.horizon: dict[int, int | None] = {BUY: None, SELL: None}

    def _add(self, direction: int, price: int, size: int) -> None:
        totals = self.totals[direction]
        if price in totals:
            totals[price] += size
        else:
            totals[price] = size
            insort(self.prices[direction], price)

    def _remove(self, direction: int, price: int, size: int) -> None:
        totals = self.totals[direction]
        left = totals[price] - size
        if left:
            totals[price] = left
        else:
            del totals[price]
            prices = self.prices[direction]
            del prices[bisect_left(prices, price)]

    def seed(self, direction: int, price: int, size: int) -> None:
        """Resting size of orders the messages never introduced."""
        key = (direction, price)
        self.anonymous[key] = self.anonymous.get(key, 0) + size
        self._add(direction, price, size)

    def beyond_horizon(self, direction: int, price: int) -> bool:
        """Whether ``price`` lies beyond what the last order-book row showed of its side."""
        horizon = self.horizon[direction]
        if horizon is None:
            return False
        return price < horizon if direction == BUY else price > horizon

    def reveal(self, direction: int, price: int, size: int) -> None:
        """Make the level at ``price`` hold ``size`` of orders unknown to the book, as an
        order-book row shows it (0: no level), forgetting what the book held there."""
        key = (direction, price)
        for order_id in self.resting.pop(key, ()):
            del self.orders[order_id]
        self.anonymous.pop(key, None)
        total = self.totals[direction].get(price)
        if total:
            self._remove(direction, price, total)
        if size:
            self.seed(direction, price, size)

    def apply(self, message: Message) -> str | None:
        """Apply ``message``; return what is inconsistent about it (nothing changed), or None."""
        kind, order_id, size = message.type, message.order_id, message.size
        if kind >= HIDDEN_EXECUTION:
            return None  # hidden executions, crosses and halts leave the visible book alone
        direction, price = message.direction, message.price
        if size <= 0:
            return f"a message of type {kind} needs a positive size, not {size}"
        if kind == SUBMISSION:
            if order_id in self.orders:
                return f"order {order_id} is already in the book"
            if price <= 0:
                return f"a new order needs a positive price, not {price}"
            self.orders[order_id] = [direction, price, size]
            self._add(direction, price, size)
            key = (direction, price)
            resting = self.resting.get(key)
            if resting is None:
                self.resting[key] = {order_id}
            else:
                resting.add(order_id)
            return None
        order = self.orders.get(order_id)
        if order is None:
            key = (direction, price)
            available = self.anonymous.get(key, 0)
            if available < size:
                if self.beyond_horizon(direction, price):
                    return None  # an order that rested out of view: nothing to check it by
                return f"order {order_id} is not in the book"
            self.anonymous[key] = available - size
            self._remove(direction, price, size)
            return None
        problem = self._reduce(order, message)
        if problem is not None and self.beyond_horizon(order[0], order[1]):
            # Out of view the order may have changed without a message: forget it, and let
            # the order-book file show its level when the level comes into view.
            self._forget(order_id, order)
            return None
        return problem

    def _forget(self, order_id: int, order: list[int]) -> None:
        direction, price, remaining = order
        self._remove(direction, price, remaining)
        del self.orders[order_id]
        key = (direction, price)
        resting = self.resting[key]
        resting.discard(order_id)
        if not resting:
            del self.resting[key]

    def _reduce(self, order: list[int], message: Message) -> str | None:
        kind, order_id, size, direction = message.type, message.order_id, message.size, order[0]
        # An execution's price is the trade's, which an auction may set better than the
        # order's limit; the order is found by its id and reduced at its own price.
        if message.direction != direction or (order[1] != message.price and kind != EXECUTION):
            side = "buy" if direction == BUY else "sell"
            return f"order {order_id} is a {side} order at {order[1]}; the message says otherwise"
        price = order[1]
        remaining = order[2]
        if kind == DELETION:
            if size != remaining:
                return f"deletes {size} of order {order_id}, which has {remaining} left"
        elif size > remaining:
            return f"removes {size} of order {order_id}, which has {remaining} left"
        if size == remaining:
            self._forget(order_id, order)
        else:
            self._remove(direction, price, size)
            order[2] = remaining - size
        return None

    def follow(self, row: list[int]) -> int:
        """Take from the order-book ``row`` what lay beyond the horizon: each level that came
        into view from there is set as the row shows it, a level the book held there that the
        row shows gone is dropped; then move the horizon to the row's. Return how many levels
        came into view. Levels within the horizon are left for the caller to compare.
        """
        revealed = 0
        levels = len(row) // 4
        for direction, offset, dummy in ((SELL, 0, ASK_DUMMY_PRICE), (BUY, 2, BID_DUMMY_PRICE)):
            shown = [(row[i], row[i + 1]) for i in range(offset, len(row), 4) if row[i] != dummy]
            full = len(shown) == levels
            if self.horizon[direction] is not None:
                entering = [(price, size) for price, size in shown
                            if self.beyond_horizon(direction, price)]  # fmt: skip
                prices, horizon = self.prices[direction], self.horizon[direction]
                if direction == SELL:
                    end = bisect_right(prices, shown[-1][0]) if full else len(prices)
                    held = prices[bisect_right(prices, horizon) : end]
                else:
                    start = bisect_left(prices, shown[-1][0]) if full else 0
                    held = prices[start : bisect_left(prices, horizon)]
                for price in set(held).difference(price for price, _ in entering):
                    self.reveal(direction, price, 0)
                for price, size in entering:
                    self.reveal(direction, price, size)
                revealed += len(entering)
            self.horizon[direction] = shown[-1][0] if full else None
        return revealed

    def check_invariants(self) -> None:
        """Assert that each level's total is its known orders' remaining size plus its
        anonymous size, that the price index holds exactly the levels, sorted, and that
        every known order is indexed at its level. O(orders + levels)."""
        expected: dict[tuple[int, int], int] = {
            key: size for key, size in self.anonymous.items() if size
        }
        resting: dict[tuple[int, int], set[int]] = {}
        for order_id, (direction, price, remaining) in self.orders.items():
            assert remaining > 0, (order_id, remaining)
            key = (direction, price)
            expected[key] = expected.get(key, 0) + remaining
            resting.setdefault(key, set()).add(order_id)
        assert resting == self.resting, "the orders indexed by level are not the book's"
        for direction in (BUY, SELL):
            totals = {price: size for (side, price), size in expected.items() if side == direction}
            assert self.totals[direction] == totals, direction
            assert self.prices[direction] == sorted(totals), direction

    def depth(self, direction: int) -> list[tuple[int, int]]:
        """(price, total size) of every level of one side, best first."""
        totals, prices = self.totals[direction], self.prices[direction]
        ordered = reversed(prices) if direction == BUY else prices
        return [(price, totals[price]) for price in ordered]

    def row(self, levels: int) -> list[int]:
        """The order-book row of ``levels`` levels."""
        row = []
        asks, bids = self.prices[SELL], self.prices[BUY]
        ask_totals, bid_totals = self.totals[SELL], self.totals[BUY]
        for level in range(levels):
            if level < len(asks):
                price = asks[level]
                row += (price, ask_totals[price])
            else:
                row += (ASK_DUMMY_PRICE, 0)
            if level < len(bids):
                price = bids[-1 - level]
                row += (price, bid_totals[price])
            else:
                row += (BID_DUMMY_PRICE, 0)
        return row


# -- checking a file pair ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LobsterMismatch:
    """The first row where the files disagree with the rebuilt book (``column`` 0-based, or
    None when the message itself cannot apply)."""

    row: int
    message: Message | None
    what: str
    column: int | None = None
    recorded: list[int] | None = None
    rebuilt: list[int] | None = None

    def __str__(self) -> str:
        return f"row {self.row}: {self.what}"


@dataclass(slots=True)
class LobsterReport:
    messages: int = 0
    by_type: Counter[int] = field(default_factory=Counter)
    levels: int | None = None  # of the order-book file, when one was checked
    rows_checked: int = 0
    seeded_units: int = 0  # resting size the first order-book row held before the messages
    # Levels that came into view from beyond the order-book file's N levels, taken from it.
    revealed_levels: int = 0
    # Messages at prices beyond the levels the last row showed, where the book's knowledge
    # is only what messages told it (LOBSTER writes none for events out of view).
    unseen_messages: int = 0
    unit: PriceUnit = PriceUnit.LOBSTER  # of the files' prices
    unit_source: str = ""  # what said so
    elapsed_s: float = 0.0
    mismatch: LobsterMismatch | None = None
    book: LevelBook = field(default_factory=LevelBook)

    @property
    def ok(self) -> bool:
        return self.mismatch is None


def check_lobster(
    messages: Path,
    orderbook: Path | None = None,
    *,
    unit: PriceUnit | None = None,
    progress: Callable[[int], None] | None = None,
) -> LobsterReport:
    """Rebuild the book from ``messages`` and compare it with ``orderbook`` row by row.

    Without an order-book file the book starts empty. With one, the book starts as its first
    row says it was before the first message, and size that later messages take from
    orders never introduced comes out of that starting book (a file that begins in the
    middle of a day). The file shows N levels, and LOBSTER writes messages only for events
    within them, so the book knows a level while it stays in view: a level that comes into
    view from beyond the last row's N levels is taken from the row (counted in
    :attr:`LobsterReport.revealed_levels`), and only a difference within the levels the book
    knows is a mismatch (:meth:`LevelBook.follow`). Raises :class:`InputError` for rows that
    cannot be read; inconsistent messages and differing rows are reported in
    :attr:`LobsterReport.mismatch`. The book is rebuilt in the files' own integers;
    :attr:`LobsterReport.unit` (:func:`read_units`, with ``unit`` for files without a
    side-car) says what they are.
    """
    report = LobsterReport()
    report.unit, report.unit_source = read_units(messages, unit)
    book = report.book
    started = time.perf_counter()
    rows = None if orderbook is None else read_orderbook(orderbook)
    line = 0
    for line, message in read_messages(messages):
        recorded = None
        if rows is not None:
            _, recorded = next(rows, (None, None))
            if recorded is None:
                report.mismatch = LobsterMismatch(
                    line, message, f"the order-book file ends at row {line - 1}"
                )
                break
            if line == 1:
                report.levels = len(recorded) // 4
                report.seeded_units = _seed(book, recorded, message)
        if message.type < HIDDEN_EXECUTION and book.beyond_horizon(
            message.direction, message.price
        ):
            report.unseen_messages += 1
        problem = book.apply(message)
        if problem is not None:
            report.mismatch = LobsterMismatch(line, message, problem)
            break
        report.messages += 1
        report.by_type[message.type] += 1
        if recorded is not None:
            report.revealed_levels += book.follow(recorded)
            rebuilt = book.row(len(recorded) // 4)
            if rebuilt != recorded:
                pairs = enumerate(zip(rebuilt, recorded, strict=True))
                column = next(i for i, (mine, theirs) in pairs if mine != theirs)
                report.mismatch = LobsterMismatch(
                    line, message,
                    f"{orderbook_column_name(column)} is {recorded[column]} in the order-book "
                    f"file, {rebuilt[column]} in the rebuilt book",
                    column, recorded, rebuilt,
                )  # fmt: skip
                break
            report.rows_checked += 1
        if progress is not None and not line % _PROGRESS_EVERY_MESSAGES:
            progress(line)
    else:
        if rows is not None:
            extra = next(rows, None)
            if extra is not None:
                report.mismatch = LobsterMismatch(
                    extra[0], None, f"the order-book file has rows past the last message ({line})"
                )
    report.elapsed_s = time.perf_counter() - started
    if progress is not None:
        progress(report.messages)
    return report


def _seed(book: LevelBook, first_row: list[int], first: Message) -> int:
    """Seed ``book`` with the first order-book row as it was before ``first``; the units."""
    levels: dict[tuple[int, int], int] = {}
    for index in range(0, len(first_row), 4):
        ask_price, ask_size, bid_price, bid_size = first_row[index : index + 4]
        if ask_size and ask_price != ASK_DUMMY_PRICE:
            levels[SELL, ask_price] = ask_size
        if bid_size and bid_price != BID_DUMMY_PRICE:
            levels[BUY, bid_price] = bid_size
    key = (first.direction, first.price)
    if first.type == SUBMISSION:
        levels[key] = levels.get(key, 0) - first.size  # the order is not there yet
    elif first.type in (CANCELLATION, DELETION, EXECUTION):
        levels[key] = levels.get(key, 0) + first.size  # it was still there
    seeded = 0
    for (direction, price), size in sorted(levels.items()):
        if size > 0:
            book.seed(direction, price, size)
            seeded += size
    return seeded


# -- writing, during a replay ------------------------------------------------------------------


@dataclass(slots=True)
class _DayFiles:
    date: str
    messages: IO[str]
    orderbook: IO[str]
    temporaries: tuple[str, ...]  # messages, order book, side-car
    finals: tuple[Path, ...]


class LobsterExport:
    """A replay listener that writes one symbol's LOBSTER files, a pair per UTC day.

    Messages come from the engine's events: an order that rests is a submission (its size
    what rests after it traded on arrival); a trade is an execution of each side that was
    resting (one side in continuous trading, both in an auction); a cancellation of a resting
    order is a deletion; an amendment that keeps priority is a partial cancellation, one
    that loses it a deletion followed by whatever the order does as it re-enters; a phase
    change is a halt indicator. After each command the rebuilt book is asserted equal to the
    engine's, so the files always describe the book the exchange had. Prices are written in
    ``unit`` (the book is kept in the exchange's minor units), which each day's side-car states.
    """

    def __init__(
        self,
        symbol: str,
        levels: int,
        directory: Path,
        window: Window,
        unit: PriceUnit = PriceUnit.LOBSTER,
    ) -> None:
        if not 1 <= levels <= MAX_LEVELS:
            raise InputError(f"--levels must be within 1..{MAX_LEVELS}")
        self.symbol = symbol
        self.levels = levels
        self.unit = unit
        self.directory = directory
        self.window = window
        self.book = LevelBook()
        self.messages = 0
        self.files: list[Path] = []
        self._day: _DayFiles | None = None
        self._done: list[_DayFiles] = []
        self._checked_mode = False

    # The listener -------------------------------------------------------------------------

    def on_command(
        self, exchange: Exchange, record: RecordedCommand, outcome: Outcome,
        recorded: Sequence[StoredEntry],
    ) -> None:  # fmt: skip
        symbol = self.symbol
        events = [event for event in outcome.events if event.symbol == symbol]
        if not events:
            return
        if not self._checked_mode:
            self._check_mode(exchange)
        book, emit = self.book, self._emitter(record.ts_ns)
        entering = []
        for event in events:
            kind = type(event)
            if kind is Trade:
                for order_id, direction in ((event.buy_order_id, BUY), (event.sell_order_id, SELL)):
                    if order_id in book.orders:
                        emit(Message(0, EXECUTION, order_id, event.quantity, event.price,
                                     direction))  # fmt: skip
            elif kind is Cancelled:
                order = book.orders.get(event.order_id)
                if order is not None:
                    assert order[2] == event.quantity, (order, event)
                    emit(Message(0, DELETION, event.order_id, order[2], order[1], order[0]))
            elif kind is Amended:
                order = book.orders.get(event.order_id)
                if event.priority_kept:
                    if order is not None and order[2] > event.remaining:
                        emit(Message(0, CANCELLATION, event.order_id, order[2] - event.remaining,
                                     order[1], order[0]))  # fmt: skip
                else:
                    if order is not None:
                        emit(Message(0, DELETION, event.order_id, order[2], order[1], order[0]))
                    entering.append(event.order_id)
            elif kind is AcceptedEvent:
                entering.append(event.order_id)
            elif kind is PhaseChanged:
                emit(Message(0, HALT, 0, 0, HALT_PRICE[event.phase], SELL))
        for order_id in entering:
            live = exchange.engine.open_order(order_id)
            if live is not None and not live.is_market and live.remaining:
                direction = BUY if live.side is Side.BUY else SELL
                emit(Message(0, SUBMISSION, order_id, live.remaining, live.price, direction))
        bids, asks = exchange.engine.depth(symbol, 2**62)
        assert book.depth(BUY) == bids and book.depth(SELL) == asks, (
            f"LOBSTER book differs from the engine's after journal seq {record.seq}"
        )

    def _check_mode(self, exchange: Exchange) -> None:
        instrument = exchange.instruments.get(self.symbol)
        if instrument is not None and instrument.trading_mode is TradingMode.SEALED_BID:
            raise InputError(
                f"{self.symbol} trades by sealed bid: its book is never visible, so it has no "
                "LOBSTER messages"
            )
        self._checked_mode = True

    def _emitter(self, ts_ns: int) -> Callable[[Message], None]:
        book = self.book
        inside = self.window.contains(ts_ns)
        day_ns = ts_ns % NS_PER_DAY
        text_time = lobster_time(day_ns)
        scale = self.unit.per_minor_unit

        def emit(message: Message) -> None:
            problem = book.apply(message)
            assert problem is None, problem
            if not inside:
                return
            files = self._files_for(ts_ns)
            price = message.price if message.type == HALT else self._scaled(message.price)
            files.messages.write(
                f"{text_time},{message.type},{message.order_id},{message.size},"
                f"{price},{message.direction}\n"
            )
            row = book.row(self.levels)
            if scale != 1:
                for index in range(0, len(row), 2):  # the prices; sizes are at odd indices
                    if row[index] not in (ASK_DUMMY_PRICE, BID_DUMMY_PRICE):
                        row[index] = self._scaled(row[index])
            files.orderbook.write(",".join(map(str, row)) + "\n")
            self.messages += 1

        return emit

    def _scaled(self, price_minor: int) -> int:
        price = price_minor * self.unit.per_minor_unit
        if price >= ASK_DUMMY_PRICE:
            # LOBSTER's empty ask level is this price: a real one there could not be told apart.
            raise InputError(
                f"{self.symbol}: a price of {price_minor / MINOR_PER_UNIT:,.2f} yuan is "
                f"{price:,} in LOBSTER's units, beyond its dummy price {ASK_DUMMY_PRICE}: "
                f"export with --price-unit {PriceUnit.FEN}"
            )
        return price

    def _files_for(self, ts_ns: int) -> _DayFiles:
        date = format_time(ts_ns - ts_ns % NS_PER_DAY)[:10]
        if self._day is not None and self._day.date == date:
            return self._day
        if self._day is not None:
            self._done.append(self._day)
        stem = f"{self.symbol}_{date}_0_86400000"
        names = (f"{stem}_message_{self.levels}.csv", f"{stem}_orderbook_{self.levels}.csv")
        handles, temporaries = [], []
        for name in names:
            handle, temporary = temporary_beside(self.directory / name)
            handles.append(os.fdopen(handle, "w", encoding="utf-8", newline=""))
            temporaries.append(temporary)
        units = units_path(self.directory / names[0])
        handle, temporary = temporary_beside(units)
        with os.fdopen(handle, "wb") as file:
            file.write(orjson.dumps(self._side_car(date), option=orjson.OPT_INDENT_2) + b"\n")
        temporaries.append(temporary)
        self._day = _DayFiles(
            date, handles[0], handles[1], tuple(temporaries),
            (self.directory / names[0], self.directory / names[1], units),
        )  # fmt: skip
        return self._day

    def _side_car(self, date: str) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "date": date,
            "levels": self.levels,
            "price_unit": str(self.unit),
            "prices_per_currency_unit": self.unit.per_currency_unit,
            "currency": "CNY",
            "size_unit": "licence units",
            "time": "seconds after midnight UTC",
        }

    def _all_days(self) -> list[_DayFiles]:
        return self._done + ([self._day] if self._day is not None else [])

    def finish(self, exchange: Exchange) -> None:
        """Move every file into place (call when the replay succeeded)."""
        if self.symbol not in exchange.instruments:
            self.abandon()
            raise InputError(f"no instrument {self.symbol!r} in the journal")
        for day in self._all_days():
            day.messages.close()
            day.orderbook.close()
            for temporary, final in zip(day.temporaries, day.finals, strict=True):
                os.replace(temporary, final)
                self.files.append(final)

    def abandon(self) -> None:
        """Remove the partial files (the replay failed)."""
        for day in self._all_days():
            day.messages.close()
            day.orderbook.close()
            for temporary in day.temporaries:
                Path(temporary).unlink(missing_ok=True)
        self._done, self._day = [], None
