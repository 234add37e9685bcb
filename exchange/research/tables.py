"""The research tables: their columns, and the rows each is built from.

Six tables, one definition each, shared by every export format and by the pandas frames:

- ``trades``  one row per trade, from the replay's ``Trade`` events and the settlement entry
  recorded for each;
- ``orders``  one row per order, its state at the end of the replay (or at ``--to``);
- ``events``  one row per matching-engine event, in order;
- ``book``    every price level of every visible book at the end of the replay (or ``--to``);
- ``ledger``  one row per settlement-ledger entry, read from the database;
- ``journal`` one row per journalled command, with the entries it settled (the JSONL form of
  this table is what ``dataex replay --journal`` reads).

Confidential trading stays out of every table (docs/confidential.md): its trades never reach
the engine, so no ``trades``, ``events`` or ``book`` row shows them, and the ``journal`` and
``ledger`` rows of its commands and trades keep their sequence numbers, times, kinds and hashes
but withhold their contents. A journal holding such rows does not replay from the export:
replay the database, which holds everything.

Values are integers (money in minor units, quantities in licence units, times in ns since the
epoch), text, booleans, or JSON (canonical JSON text: sorted keys, no spaces). A row is a
tuple in column order. Column meanings are in ``docs/research.md``, which is checked against
these definitions by the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from exchange import collateral
from exchange import commands as cmd
from exchange.confidential import LEDGER_KEY_PREFIX, WITHHELD_VERBS
from exchange.research.journal import JournalRow, RecordedCommand, entry_json
from exchange.service import Exchange, Outcome
from ledger import EntryKind
from ledger.store import StoredEntry
from matching import (
    Accepted,
    Amended,
    AuctionResult,
    BookChanged,
    Cancelled,
    Event,
    InstrumentAdded,
    PhaseChanged,
    Rejected,
    Side,
    Trade,
)

__all__ = [
    "TABLES",
    "BookRows",
    "Column",
    "EventsRows",
    "JournalRows",
    "Kind",
    "OrdersRows",
    "Row",
    "TradesRows",
    "Window",
    "journal_row",
    "ledger_row",
]

Row = tuple[Any, ...]
Sink = Callable[[Row], None]
_SORT_KEYS = orjson.OPT_SORT_KEYS


class Kind(StrEnum):
    INTEGER = "integer"
    TEXT = "text"
    BOOLEAN = "boolean"
    JSON = "json"  # canonical JSON text


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    nullable: bool = False


def _columns(*specs: str) -> tuple[Column, ...]:
    """Columns from ``"name kind"`` or ``"name kind?"`` (nullable)."""
    columns = []
    for spec in specs:
        name, kind = spec.split()
        columns.append(Column(name, Kind(kind.rstrip("?")), kind.endswith("?")))
    return tuple(columns)


TRADE_COLUMNS = _columns(
    "trade_id integer", "seq integer", "ts_ns integer", "symbol text", "price_minor integer",
    "quantity_units integer", "notional_minor integer", "fee_minor integer",
    "buy_order_id integer", "sell_order_id integer", "buyer text", "seller text",
    "aggressor text?", "primary boolean", "licence_expires_ns integer", "entry_seq integer?",
)  # fmt: skip
ORDER_COLUMNS = _columns(
    "order_id integer", "seq integer", "client_order_id text", "participant text",
    "symbol text", "side text", "order_type text", "price_minor integer?",
    "quantity_units integer", "tif text", "expire_ns integer?", "post_only boolean",
    "stp text", "created_ns integer", "updated_ns integer", "filled_units integer",
    "filled_notional_minor integer", "cancelled_units integer", "cancel_reason text?",
    "status text",
)  # fmt: skip
EVENT_COLUMNS = _columns(
    "seq integer", "ts_ns integer", "event_index integer", "event text", "symbol text?",
    "order_id integer?", "participant text?", "side text?", "order_type text?",
    "price_minor integer?", "quantity_units integer?", "remaining_units integer?",
    "tif text?", "trade_id integer?", "buy_order_id integer?", "sell_order_id integer?",
    "buyer text?", "seller text?", "aggressor text?", "reason text?", "phase text?",
    "priority_kept boolean?", "volume_units integer?", "imbalance_units integer?",
    "best_bid_minor integer?", "best_bid_units integer?", "best_ask_minor integer?",
    "best_ask_units integer?", "levels json?",
)  # fmt: skip
BOOK_COLUMNS = _columns(
    "seq integer", "ts_ns integer", "symbol text", "side text", "level integer",
    "price_minor integer", "quantity_units integer",
)  # fmt: skip
LEDGER_COLUMNS = _columns(
    "seq integer", "ts_ns integer", "kind text", "key text", "body json", "postings json",
    "chain_hash text",
)  # fmt: skip
JOURNAL_COLUMNS = _columns(
    "seq integer", "ts_ns integer", "command json", "chain_hash text", "entries json",
)  # fmt: skip

TABLES: dict[str, tuple[Column, ...]] = {
    "trades": TRADE_COLUMNS,
    "orders": ORDER_COLUMNS,
    "events": EVENT_COLUMNS,
    "book": BOOK_COLUMNS,
    "ledger": LEDGER_COLUMNS,
    "journal": JOURNAL_COLUMNS,
}


@dataclass(frozen=True, slots=True)
class Window:
    """Rows between two times, both inclusive (None: unbounded), and of one symbol if given."""

    start_ns: int | None = None
    end_ns: int | None = None
    symbol: str | None = None

    def contains(self, ts_ns: int) -> bool:
        return (self.start_ns is None or ts_ns >= self.start_ns) and (
            self.end_ns is None or ts_ns <= self.end_ns
        )

    def has_symbol(self, symbol: str | None) -> bool:
        return self.symbol is None or symbol == self.symbol


def _json(value: Any) -> str:
    return orjson.dumps(value, option=_SORT_KEYS).decode()


# -- rows built during a replay ----------------------------------------------------------------


_TRADE_SETTLEMENT = EntryKind.TRADE_SETTLEMENT


class TradesRows:
    """One ``trades`` row per ``Trade`` event, with its settlement (fee, primary, expiry)."""

    def __init__(self, window: Window, sink: Sink) -> None:
        self.window, self.sink = window, sink

    def on_command(
        self, exchange: Exchange, record: RecordedCommand, outcome: Outcome,
        recorded: Sequence[StoredEntry],
    ) -> None:  # fmt: skip
        produced = outcome.entries
        # A trade settles in an entry of its command, and most commands settle nothing:
        # they are passed over before their events are looked at.
        if not produced or not self.window.contains(record.ts_ns):
            return
        trades = [e for e in outcome.events if type(e) is Trade]
        if not trades:
            return
        # The replay checked the recorded entries against these, pair by pair: each
        # settlement's body, with the seq of the entry recorded for it (none unchecked).
        seqs = [stored.seq for stored in recorded] if recorded else [None] * len(produced)
        settled = {
            entry.key: (entry.body, seq)
            for entry, seq in zip(produced, seqs, strict=True)
            if entry.kind is _TRADE_SETTLEMENT
        }
        for trade in trades:
            if not self.window.has_symbol(trade.symbol):
                continue
            body, entry_seq = settled[f"trade:{trade.trade_id}"]
            aggressor = trade.aggressor
            self.sink((
                trade.trade_id, record.seq, record.ts_ns, trade.symbol, trade.price,
                trade.quantity, body["notional_minor"], body["fee_minor"], trade.buy_order_id,
                trade.sell_order_id, trade.buyer, trade.seller,
                None if aggressor is None else _S(aggressor), body["primary"],
                body["expires_at_ns"], entry_seq,
            ))  # fmt: skip


class EventsRows:
    """One ``events`` row per matching-engine event."""

    def __init__(self, window: Window, sink: Sink) -> None:
        self.window, self.sink = window, sink

    def on_command(
        self, exchange: Exchange, record: RecordedCommand, outcome: Outcome,
        recorded: Sequence[StoredEntry],
    ) -> None:  # fmt: skip
        # The hot path of an export: about three events a command, each a row.
        events = outcome.events
        if not events or not self.window.contains(record.ts_ns):
            return
        seq, ts_ns, sink, symbol = record.seq, record.ts_ns, self.sink, self.window.symbol
        for index, event in enumerate(events):
            if symbol is None or event.symbol == symbol:
                sink(_EVENT_ROW[type(event)](seq, ts_ns, index, event))


def event_row(seq: int, ts_ns: int, index: int, event: Event) -> Row:
    """The ``events`` row of one event (``index``: its place among its command's events)."""
    return _EVENT_ROW[type(event)](seq, ts_ns, index, event)


# Each event type's row, built as one tuple in the order of EVENT_COLUMNS (the tests check
# each type's row column by column): no dict or list per row, the hot path of an export, and
# each enum's text taken by str.__str__, in C (every engine enum is a StrEnum, whose text is
# its value).
_S = str.__str__
_EVENT_ROW: dict[type, Callable[[int, int, int, Any], Row]] = {
    InstrumentAdded: lambda seq, ts, i, e: (
        seq, ts, i, "InstrumentAdded", e.symbol, None, None, None, None, None, None, None,
        None, None, None, None, None, None, None, None, _S(e.phase), None, None, None, None,
        None, None, None, None,
    ),
    Accepted: lambda seq, ts, i, e: (
        seq, ts, i, "Accepted", e.symbol, e.order_id, e.participant, _S(e.side),
        _S(e.order_type), e.price, e.quantity, None, _S(e.tif), None, None, None, None,
        None, None, None, None, None, None, None, None, None, None, None, None,
    ),
    Rejected: lambda seq, ts, i, e: (
        seq, ts, i, "Rejected", e.symbol, e.order_id, None, None, None, None, None, None,
        None, None, None, None, None, None, None, _S(e.reason), None, None, None, None, None,
        None, None, None, None,
    ),
    Trade: lambda seq, ts, i, e: (
        seq, ts, i, "Trade", e.symbol, None, None, None, None, e.price, e.quantity, None,
        None, e.trade_id, e.buy_order_id, e.sell_order_id, e.buyer, e.seller,
        None if e.aggressor is None else _S(e.aggressor), None, None, None, None, None, None,
        None, None, None, None,
    ),
    Cancelled: lambda seq, ts, i, e: (
        seq, ts, i, "Cancelled", e.symbol, e.order_id, e.participant, None, None, None,
        e.quantity, None, None, None, None, None, None, None, None, _S(e.reason), None, None,
        None, None, None, None, None, None, None,
    ),
    Amended: lambda seq, ts, i, e: (
        seq, ts, i, "Amended", e.symbol, e.order_id, e.participant, None, None, e.price,
        e.quantity, e.remaining, None, None, None, None, None, None, None, None, None,
        e.priority_kept, None, None, None, None, None, None, None,
    ),
    AuctionResult: lambda seq, ts, i, e: (
        seq, ts, i, "AuctionResult", e.symbol, None, None, None, None, e.price, None, None,
        None, None, None, None, None, None, None, None, None, None, e.volume, e.imbalance,
        None, None, None, None, None,
    ),
    PhaseChanged: lambda seq, ts, i, e: (
        seq, ts, i, "PhaseChanged", e.symbol, None, None, None, None, None, None, None, None,
        None, None, None, None, None, None, None, _S(e.phase), None, None, None, None, None,
        None, None, None,
    ),
    BookChanged: lambda seq, ts, i, e: (
        seq, ts, i, "BookChanged", e.symbol, None, None, None, None, None, None, None, None,
        None, None, None, None, None, None, None, None, None, None, None, e.best_bid,
        e.best_bid_quantity, e.best_ask, e.best_ask_quantity,
        # (side, price, quantity) tuples as JSON arrays, the side as its text: orjson writes
        # a StrEnum as its value, and arrays have no keys to sort.
        orjson.dumps(e.levels).decode(),
    ),
}  # fmt: skip


class OrdersRows:
    """The ``orders`` table: every order submitted in the window, as it stands at the end."""

    def __init__(self, window: Window, sink: Sink) -> None:
        self.window, self.sink = window, sink
        self.submitted_at: dict[int, int] = {}  # order id -> seq of its SubmitOrder

    def on_command(
        self, exchange: Exchange, record: RecordedCommand, outcome: Outcome,
        recorded: Sequence[StoredEntry],
    ) -> None:  # fmt: skip
        command = outcome.command
        if type(command) is cmd.SubmitOrder:
            self.submitted_at[command.order_id] = record.seq

    def finish(self, exchange: Exchange) -> None:
        for order_id, seq in self.submitted_at.items():
            order = exchange.orders[order_id]
            if not self.window.contains(order.created_ns) or not self.window.has_symbol(
                order.symbol
            ):
                continue
            self.sink((
                order.order_id, seq, order.client_order_id, order.participant, order.symbol,
                _S(order.side), _S(order.order_type), order.price_minor, order.quantity_units,
                _S(order.tif), order.expire_ns, order.post_only, _S(order.stp),
                order.created_ns, order.updated_ns, order.filled_units,
                order.filled_notional_minor, order.cancelled_units, order.cancel_reason,
                _S(order.status),
            ))  # fmt: skip


class BookRows:
    """The ``book`` table: every visible price level at the end, bids then asks, best first."""

    def __init__(self, window: Window, sink: Sink) -> None:
        self.window, self.sink = window, sink

    def on_command(self, *args: Any) -> None:
        pass

    def finish(self, exchange: Exchange) -> None:
        engine = exchange.engine
        seq, ts_ns = exchange.head_seq, exchange.last_ts_ns
        for symbol in engine.symbols():
            if not self.window.has_symbol(symbol):
                continue
            bids, asks = engine.depth(symbol, 2**62)
            for side, levels in ((Side.BUY, bids), (Side.SELL, asks)):
                for level, (price, quantity) in enumerate(levels, start=1):
                    self.sink((seq, ts_ns, symbol, side.value, level, price, quantity))


class JournalRows:
    """The ``journal`` table: each command with the entries recorded for it."""

    def __init__(self, window: Window, sink: Sink) -> None:
        self.window, self.sink = window, sink

    def on_command(
        self, exchange: Exchange, record: RecordedCommand, outcome: Outcome,
        recorded: Sequence[StoredEntry],
    ) -> None:  # fmt: skip
        if self.window.contains(record.ts_ns):
            row = JournalRow(
                record.seq, record.ts_ns, record.command.verb, record.command_json,
                record.chain_hash,
            )  # fmt: skip
            self.sink(journal_row(row, recorded))


def journal_row(record: JournalRow, recorded: Sequence[StoredEntry]) -> Row:
    """The ``journal`` row of one command and the entries recorded for it (a confidential
    trade's or a facility's command and entries, withheld)."""
    command_json = record.command_json
    verb = record.verb
    if verb in WITHHELD_VERBS or verb in collateral.WITHHELD_VERBS:
        command_json = _json({"verb": verb, "withheld": True})
    if recorded:
        rows = [_withheld(entry_json(e)) if _confidential(e) else entry_json(e)
                for e in recorded]  # fmt: skip
        entries = orjson.dumps(rows, option=_SORT_KEYS).decode()
    else:
        entries = "[]"  # most commands settle nothing: no list to serialise
    return (record.seq, record.ts_ns, command_json, record.chain_hash.hex(), entries)


def _confidential(entry: StoredEntry) -> bool:
    """A confidential trade's entry, or a loan facility's (``exchange.collateral``)."""
    return entry.key.startswith(LEDGER_KEY_PREFIX) or collateral.private_entry(
        entry.kind, entry.key
    )


def _withheld(row: dict[str, Any]) -> dict[str, Any]:
    """A confidential trade's or a facility's entry without its parties, amounts or
    postings."""
    return {**row, "body": {"withheld": True}, "postings": []}


def ledger_row(entry: StoredEntry) -> Row:
    """The ``ledger`` row of one stored entry (a confidential trade's, withheld)."""
    if _confidential(entry):
        body, postings = _json({"withheld": True}), "[]"
    else:
        body, postings = entry.body_json, _json([list(posting) for posting in entry.postings])
    return (entry.seq, entry.ts_ns, entry.kind, entry.key, body, postings,
            entry.chain_hash.hex())  # fmt: skip
