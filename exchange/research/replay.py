"""Replay: rebuild the exchange from its journal and check it reproduces the recorded settlement.

A fresh :class:`~exchange.service.Exchange` executes every journalled command at its recorded
sequence number and time, as recovery does. Because the exchange is deterministic, each
command must be accepted again, as the same command (the same ids assigned), and must settle
exactly the ledger entries recorded for it: the same keys, kinds, times, bodies and postings,
in order. The trades are the ``trade_settlement`` entries, so matching them one by one checks
the replay trade for trade. Both hash chains are checked as the rows are read (see
:mod:`exchange.research.journal`), so a changed row stops the replay where it is.

The first difference stops the replay; :class:`ReplayReport.mismatch` then holds the journal
row, what differs, and the recorded and replayed sides. ``until`` stops early on purpose (at
a sequence number or a time), leaving the exchange as it was at that moment.

A database journal long enough is read ahead, in another process, while this one executes
(:mod:`exchange.research.readahead`): the replay then runs at nearly the rate of executing
the commands alone. It stops at the same row, with the same report, either way.

The loop is the hot path of ``dataex replay``: the commands arrive parsed, the comparison is
done on the entries' own fields (the body as canonical JSON text, as stored), and commands
are compared as values, not re-serialised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from exchange.commands import command_to_record
from exchange.research.journal import (
    BrokenChain,
    InputError,
    Journal,
    RecordedCommand,
    UnreadableCommand,
)
from exchange.research.times import TimeError, format_time, parse_time
from exchange.service import Exchange, Outcome
from ledger import Entry, EntryKind
from ledger.rows import gc_paused
from ledger.store import StoredEntry

__all__ = [
    "PROGRESS_EVERY_COMMANDS",
    "Mismatch",
    "ReplayListener",
    "ReplayReport",
    "Until",
    "parse_until",
    "replay",
]

# Progress is reported every this many commands (a power of two: the test is a mask).
PROGRESS_EVERY_COMMANDS = 4_096
_PROGRESS_MASK = PROGRESS_EVERY_COMMANDS - 1
_SORT_KEYS = orjson.OPT_SORT_KEYS
_TRADE = EntryKind.TRADE_SETTLEMENT


@dataclass(frozen=True, slots=True)
class Until:
    """Where a replay stops on purpose: after the last command at or before ``seq`` and at or
    before ``ts_ns`` (either may be None: no limit)."""

    seq: int | None = None
    ts_ns: int | None = None

    def excludes(self, record: RecordedCommand | UnreadableCommand) -> bool:
        return (self.seq is not None and record.seq > self.seq) or (
            self.ts_ns is not None and record.ts_ns > self.ts_ns
        )

    def __str__(self) -> str:
        parts = []
        if self.seq is not None:
            parts.append(f"seq {self.seq}")
        if self.ts_ns is not None:
            parts.append(format_time(self.ts_ns))
        return " and ".join(parts)


def parse_until(text: str) -> Until:
    """``"120"`` -> stop after seq 120; ``"2026-11-28T10:00:00Z"`` -> after that time.

    >>> parse_until("120")
    Until(seq=120, ts_ns=None)
    """
    text = text.strip()
    if text.isdigit():
        return Until(seq=int(text))
    try:
        return Until(ts_ns=parse_time(text))
    except TimeError:
        raise InputError(
            f"--until {text!r} is neither a sequence number nor an ISO 8601 time"
        ) from None


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Where the replay parts from the record: the journal row ``seq`` (and its time when it
    was read), what differs, and each side as field -> text."""

    seq: int
    ts_ns: int | None
    what: str
    recorded: dict[str, str] = field(default_factory=dict)
    replayed: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"journal seq {self.seq}: {self.what}"


@dataclass(slots=True)
class ReplayReport:
    """What a replay did. ``ok`` when nothing differed; ``exchange`` is the rebuilt state
    (after a difference it includes the command that differed)."""

    source: str
    exchange: Exchange
    commands: int = 0
    trades: int = 0
    entries: int = 0
    elapsed_s: float = 0.0
    settlement_checked: bool = True
    stopped_at: Until | None = None  # set when ``until`` stopped the replay early
    mismatch: Mismatch | None = None

    @property
    def ok(self) -> bool:
        return self.mismatch is None

    # The last command replayed and found to match the record (0: none).
    head_seq: int = 0
    head_ts_ns: int = 0

    @property
    def commands_per_s(self) -> float:
        return self.commands / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def state_hash(self) -> str:
        """The rebuilt matching engine's state hash (``Engine.state_hash``)."""
        return self.exchange.engine.state_hash()


class ReplayListener(Protocol):
    """Told of every command the replay applied and checked (exports are built this way)."""

    def on_command(
        self,
        exchange: Exchange,
        record: RecordedCommand,
        outcome: Outcome,
        recorded: Sequence[StoredEntry],
    ) -> None: ...


class _EntryCursor:
    """The recorded entries of a stream, taken a command's worth at a time.

    Nothing but their order ties stored entries to the command that settled them, so a
    command that settled more entries than the replay is noticed at the next command (whose
    first entry then differs) or at the end (an entry left over); the recorded side shown
    then has its own time and key, which name the command it came from.
    """

    __slots__ = ("_ahead", "_entries")

    def __init__(self, entries: Iterator[StoredEntry]) -> None:
        self._entries = entries
        self._ahead: StoredEntry | None = None

    def take(self, count: int) -> list[StoredEntry]:
        taken = []
        if count and self._ahead is not None:
            taken.append(self._ahead)
            self._ahead = None
        entries = self._entries
        for _ in range(count - len(taken)):
            entry = next(entries, None)
            if entry is None:
                break
            taken.append(entry)
        return taken

    def peek(self) -> StoredEntry | None:
        if self._ahead is None:
            self._ahead = next(self._entries, None)
        return self._ahead


def replay(
    journal: Journal,
    *,
    until: Until | None = None,
    progress: Callable[[int], None] | None = None,
    listeners: Sequence[ReplayListener] = (),
) -> ReplayReport:
    """Replay ``journal`` into a fresh exchange, checking it against the record.

    ``progress`` is called with the number of commands replayed so far, every
    :data:`PROGRESS_EVERY_COMMANDS` and at the end. Listeners see each command once it has
    been checked. Input that cannot be read raises :class:`~exchange.research.journal.
    InputError`; anything that differs is reported in the returned report, never raised.
    """
    exchange = Exchange()
    report = ReplayReport(journal.name, exchange)
    execute = exchange.execute
    dumps = orjson.dumps
    commands = trades = entries_count = 0
    record: RecordedCommand | None = None
    checked: RecordedCommand | None = None
    started = time.perf_counter()
    with gc_paused(), journal.open(read_ahead=True) as stream:
        report.settlement_checked = check = stream.has_entries
        cursor = None if stream.entries is None else _EntryCursor(stream.entries)
        try:
            for record in stream.commands:
                if until is not None and until.excludes(record):
                    report.stopped_at = until
                    break
                seq, ts_ns, command, _, _, grouped = record
                try:
                    outcome = execute(command, seq, ts_ns)
                except Exception as error:
                    # Refused (ExchangeError), an id the journal assigns differently
                    # (AssertionError), or any failure on a row the exchange never wrote.
                    report.mismatch = _refused(record, error)
                    break
                if outcome.command is not command and outcome.command != command:
                    report.mismatch = _different_command(record, outcome)
                    break
                produced = outcome.entries
                recorded: Sequence[StoredEntry] = ()
                if check:
                    if grouped is not None:
                        recorded = grouped
                    elif produced:  # most commands settle nothing: no call for them
                        assert cursor is not None
                        recorded = cursor.take(len(produced))
                    if len(recorded) != len(produced):
                        report.mismatch = _count_differs(record, recorded, produced)
                        break
                    for stored, entry in zip(recorded, produced, strict=True):
                        body = dumps(dict(entry.body), option=_SORT_KEYS).decode()
                        if (
                            stored.key != entry.key
                            or stored.kind != entry.kind
                            or stored.ts_ns != entry.ts_ns
                            or stored.body_json != body
                            or stored.postings != entry.postings
                        ):
                            report.mismatch = _entry_differs(record, stored, entry, body)
                            break
                        if entry.kind is _TRADE:
                            trades += 1
                    if report.mismatch is not None:
                        break
                else:
                    trades += sum(entry.kind is _TRADE for entry in produced)
                if listeners:
                    for listener in listeners:
                        listener.on_command(exchange, record, outcome, recorded)
                commands += 1
                entries_count += len(produced)
                checked = record
                if progress is not None and not commands & _PROGRESS_MASK:
                    progress(commands)
            else:
                if cursor is not None:
                    left = cursor.peek()
                    if left is not None:
                        report.mismatch = _unmatched(record, left)
        except UnreadableCommand as unreadable:
            if until is not None and until.excludes(unreadable):
                report.stopped_at = until
            else:
                report.mismatch = Mismatch(
                    unreadable.seq, unreadable.ts_ns,
                    f"the journal row is not a command: {unreadable.what}",
                    {"command": unreadable.command_json},
                )  # fmt: skip
        except BrokenChain as broken:
            if broken.table == "journal":
                report.mismatch = Mismatch(broken.seq, None, f"journal row {broken.what}")
            else:
                at = record.seq if record is not None else 0
                report.mismatch = Mismatch(
                    at,
                    None if record is None else record.ts_ns,
                    f"ledger entry {broken.seq}: {broken.what}",
                )
    report.elapsed_s = time.perf_counter() - started
    report.commands, report.trades, report.entries = commands, trades, entries_count
    if checked is not None:
        report.head_seq, report.head_ts_ns = checked.seq, checked.ts_ns
    if progress is not None:
        progress(commands)
    return report


# -- describing differences (rare paths) ------------------------------------------------------


def _recorded_fields(stored: StoredEntry) -> dict[str, str]:
    return {
        "seq": str(stored.seq),
        "key": stored.key,
        "kind": stored.kind,
        "ts_ns": str(stored.ts_ns),
        "body": stored.body_json,
        "postings": _json([list(p) for p in stored.postings]),
    }


def _replayed_fields(entry: Entry, body: str) -> dict[str, str]:
    return {
        "key": entry.key,
        "kind": entry.kind.value,
        "ts_ns": str(entry.ts_ns),
        "body": body,
        "postings": _json([list(p) for p in entry.postings]),
    }


def _json(value: object) -> str:
    return orjson.dumps(value, option=_SORT_KEYS).decode()


def _body(entry: Entry) -> str:
    return orjson.dumps(dict(entry.body), option=_SORT_KEYS).decode()


def _refused(record: RecordedCommand, error: Exception) -> Mismatch:
    kind = "refused it" if type(error).__name__ == "ExchangeError" else "failed on it"
    return Mismatch(
        record.seq,
        record.ts_ns,
        f"the replayed exchange {kind}",
        {"command": record.command_json, "outcome": "accepted and journalled"},
        {"outcome": f"{type(error).__name__}: {error}"},
    )


def _different_command(record: RecordedCommand, outcome: Outcome) -> Mismatch:
    replayed = (
        "an idempotent retry, which journals nothing"
        if outcome.command is None
        else _json(command_to_record(outcome.command))
    )
    return Mismatch(
        record.seq,
        record.ts_ns,
        "the replay journals a different command (ids assigned differently)",
        {"command": record.command_json},
        {"command": replayed},
    )


def _count_differs(
    record: RecordedCommand, recorded: Sequence[StoredEntry], produced: list[Entry]
) -> Mismatch:
    # Name the first entry the two sides do not share, so both can be shown.
    for index in range(max(len(recorded), len(produced))):
        stored = recorded[index] if index < len(recorded) else None
        entry = produced[index] if index < len(produced) else None
        if stored is None:
            assert entry is not None
            return Mismatch(
                record.seq,
                record.ts_ns,
                f"the replay settles {len(produced)} entries for this command, the record "
                f"{len(recorded)}",
                {"entry": "(none recorded)"},
                _replayed_fields(entry, _body(entry)),
            )
        if entry is None:
            return Mismatch(
                record.seq,
                record.ts_ns,
                f"the record holds {len(recorded)} entries for this command, the replay "
                f"settles {len(produced)}",
                _recorded_fields(stored),
                {"entry": "(none settled)"},
            )
        body = _body(entry)
        if _recorded_fields(stored) | {"seq": ""} != _replayed_fields(entry, body) | {"seq": ""}:
            return _entry_differs(record, stored, entry, body)
    raise AssertionError("entry counts differ but every entry matched")


def _entry_differs(
    record: RecordedCommand, stored: StoredEntry, entry: Entry, body: str
) -> Mismatch:
    recorded = _recorded_fields(stored)
    replayed = _replayed_fields(entry, body)
    fields = [name for name, text in replayed.items() if recorded.get(name) != text]
    return Mismatch(
        record.seq,
        record.ts_ns,
        f"ledger entry {stored.seq} differs in {', '.join(fields)}",
        recorded,
        replayed,
    )


def _unmatched(record: RecordedCommand | None, stored: StoredEntry) -> Mismatch:
    seq = 0 if record is None else record.seq
    return Mismatch(
        seq,
        None if record is None else record.ts_ns,
        f"the record holds ledger entry {stored.seq}, which the replay does not settle",
        _recorded_fields(stored),
        {"entry": "(none settled)"},
    )
