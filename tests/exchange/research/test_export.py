"""Exports: every table in every format reads back as the rows it was written from, and those
rows agree with the record (the ledger's settlements, the original exchange's state)."""

from __future__ import annotations

import datetime as dt
import errno
import os
import resource
import signal
import sys
import time
from pathlib import Path

import orjson
import pytest

from exchange.research import (
    TABLES,
    ExportError,
    Format,
    InputError,
    MissingDependency,
    What,
    Window,
    check_lobster,
    collect,
    export_lobster,
    export_table,
    export_tables,
    frames,
    offload,
    read_table,
)
from exchange.research.lobster import HALT, SUBMISSION, read_messages
from exchange.research.tables import Row
from ledger import EntryKind
from ledger.store import Ledger
from tests.exchange.helpers import SYMBOL
from tests.exchange.research.conftest import (
    AUCTION_SYMBOL,
    HOUR_NS,
    SEALED_SYMBOL,
    Recorded,
)


def need_pyarrow() -> None:
    pytest.importorskip("pyarrow", reason="Parquet needs pyarrow (in the test extra)")


@pytest.fixture
def ledger(recorded_sqlite: Recorded) -> Ledger:
    ledger = Ledger.open(recorded_sqlite.url)
    yield ledger  # type: ignore[misc]
    ledger.engine.dispose()


def rows_of(ledger: Ledger, what: What, window: Window | None = None) -> list[Row]:
    rows: list[Row] = []
    collect(ledger, {what: rows.append}, window or Window())
    return rows


def as_dicts(what: What, rows: list[Row]) -> list[dict]:
    names = [column.name for column in TABLES[what]]
    return [dict(zip(names, row, strict=True)) for row in rows]


@pytest.mark.parametrize("format", list(Format))
@pytest.mark.parametrize("what", list(What))
def test_every_table_reads_back_as_written(
    ledger: Ledger, tmp_path: Path, what: What, format: Format
) -> None:
    if format is Format.PARQUET:
        need_pyarrow()
    path = tmp_path / f"{what}.{format}"
    result = export_table(ledger, what, format, path, Window())
    expected = rows_of(ledger, what)
    assert expected, f"the recorded market has {what}"
    assert result.rows[what] == len(expected)
    written = read_table(path, format, TABLES[what])
    if format is Format.PARQUET:
        # A dataset is read partition by partition; each keeps the table's order.
        assert by_partition(what, written) == by_partition(what, expected)
    else:
        assert written == expected


def by_partition(what: What, rows: list[Row]) -> dict[tuple[str, str | None], list[Row]]:
    """Rows grouped by their dataset partition (UTC date, symbol), in order within each."""
    names = [column.name for column in TABLES[what]]
    time_at = names.index("ts_ns" if "ts_ns" in names else "created_ns")
    symbol_at = names.index("symbol") if "symbol" in names else None
    groups: dict[tuple[str, str | None], list[Row]] = {}
    for row in rows:
        day = dt.datetime.fromtimestamp(row[time_at] // 10**9, dt.UTC).date().isoformat()
        symbol = None if symbol_at is None else row[symbol_at]
        groups.setdefault((day, symbol), []).append(row)
    return groups


def test_a_parquet_export_is_a_dataset_partitioned_by_date_and_symbol(
    ledger: Ledger, tmp_path: Path
) -> None:
    need_pyarrow()
    import pyarrow.dataset as ds

    result = export_tables(
        ledger,
        {What.TRADES: tmp_path / "trades.parquet", What.LEDGER: tmp_path / "ledger.parquet"},
        Format.PARQUET,
        Window(),
    )
    trades = rows_of(ledger, What.TRADES)
    partitions = by_partition(What.TRADES, trades)
    assert len(partitions) > 1, "the recorded market trades more than one symbol"
    assert sorted(
        str(path.parent.relative_to(tmp_path / "trades.parquet"))
        for path in (tmp_path / "trades.parquet").rglob("*.parquet")
    ) == sorted(f"date={day}/symbol={symbol}" for day, symbol in partitions)
    assert {path.parent.name for path in (tmp_path / "ledger.parquet").rglob("*.parquet")} == {
        f"date={day}" for day, _ in by_partition(What.LEDGER, rows_of(ledger, What.LEDGER))
    }
    assert result.rows[What.TRADES] == len(trades)
    # A reader loads one slice: the partition's rows, with symbol and date from the paths.
    day, symbol = next(iter(partitions))
    dataset = ds.dataset(tmp_path / "trades.parquet", format="parquet", partitioning="hive")
    piece = dataset.to_table(filter=(ds.field("symbol") == symbol)).to_pylist()
    assert [row["trade_id"] for row in piece] == [
        row[0] for (_, s), group in partitions.items() if s == symbol for row in group
    ]
    assert {(str(row["date"]), row["symbol"]) for row in piece} >= {(day, symbol)}


def test_a_dataset_replaces_a_dataset_but_no_other_directory(
    ledger: Ledger, tmp_path: Path
) -> None:
    need_pyarrow()
    path = tmp_path / "book.parquet"
    export_table(ledger, What.BOOK, Format.PARQUET, path, Window())
    stale = path / "date=1999-01-01"
    stale.mkdir()
    export_table(ledger, What.BOOK, Format.PARQUET, path, Window())
    assert not stale.exists()
    assert by_partition(What.BOOK, read_table(path, Format.PARQUET, TABLES["book"])) == (
        by_partition(What.BOOK, rows_of(ledger, What.BOOK))
    )
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a Parquet dataset: not replaced"):
        export_table(ledger, What.BOOK, Format.PARQUET, home, Window())
    assert [path.name for path in home.iterdir()] == ["notes.txt"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["book.parquet", "home"]


@pytest.mark.parametrize("format", list(Format))
def test_several_tables_come_from_one_replay(
    ledger: Ledger, tmp_path: Path, format: Format
) -> None:
    if format is Format.PARQUET:
        need_pyarrow()
    paths = {what: tmp_path / f"{what}.{format}" for what in What}
    result = export_tables(ledger, paths, format, Window())
    assert result.replay is not None
    for what, path in paths.items():
        expected = rows_of(ledger, what)
        written = read_table(path, format, TABLES[what])
        if format is Format.PARQUET:
            assert by_partition(what, written) == by_partition(what, expected)
        else:
            assert written == expected
        assert result.rows[what] == len(expected)


def test_exported_trades_are_the_recorded_settlements(
    ledger: Ledger, recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    export_table(ledger, What.TRADES, Format.CSV, tmp_path / "t.csv", Window())
    trades = as_dicts(What.TRADES, read_table(tmp_path / "t.csv", Format.CSV, TABLES["trades"]))
    settlements = [
        entry
        for seq in range(1, ledger.size() + 1)
        if (entry := ledger.entry(seq)) is not None and entry.kind == EntryKind.TRADE_SETTLEMENT
    ]
    assert len(trades) == len(settlements) == recorded_sqlite.trades
    for trade, entry in zip(trades, settlements, strict=True):
        body = entry.body
        assert trade["entry_seq"] == entry.seq and trade["ts_ns"] == entry.ts_ns
        assert (trade["trade_id"], trade["symbol"], trade["buyer"], trade["seller"]) == (
            body["trade_id"], body["symbol"], body["buyer"], body["seller"],
        )  # fmt: skip
        assert (trade["price_minor"], trade["quantity_units"], trade["fee_minor"]) == (
            body["price_minor_per_unit"], body["quantity_units"], body["fee_minor"],
        )  # fmt: skip
        assert trade["primary"] is body["primary"]
        assert trade["licence_expires_ns"] == body["expires_at_ns"]
    aggressors = {(t["symbol"], t["aggressor"]) for t in trades}
    assert (AUCTION_SYMBOL, None) in aggressors, "auction trades have no aggressor"
    assert (SYMBOL, "buy") in aggressors


def test_exported_ledger_is_every_stored_entry(ledger: Ledger, tmp_path: Path) -> None:
    export_table(ledger, What.LEDGER, Format.JSONL, tmp_path / "l.jsonl", Window())
    rows = as_dicts(What.LEDGER, read_table(tmp_path / "l.jsonl", Format.JSONL, TABLES["ledger"]))
    assert len(rows) == ledger.size()
    for row in rows:
        entry = ledger.entry(row["seq"])
        assert entry is not None
        assert (row["ts_ns"], row["kind"], row["key"], row["body"]) == (
            entry.ts_ns, entry.kind, entry.key, entry.body_json,
        )  # fmt: skip
        assert orjson.loads(row["postings"]) == [list(p) for p in entry.postings]
        assert row["chain_hash"] == entry.chain_hash.hex()


def test_exported_orders_and_book_are_the_original_exchange_s(
    ledger: Ledger, recorded_sqlite: Recorded
) -> None:
    original = recorded_sqlite.exchange
    orders = as_dicts(What.ORDERS, rows_of(ledger, What.ORDERS))
    assert [o["order_id"] for o in orders] == sorted(original.orders)
    for order in orders:
        record = original.orders[order["order_id"]]
        assert (order["status"], order["filled_units"], order["cancelled_units"]) == (
            record.status, record.filled_units, record.cancelled_units,
        )  # fmt: skip
    expired = next(o for o in orders if o["client_order_id"] == "m2")
    assert (expired["status"], expired["cancel_reason"]) == ("cancelled", "expired")
    book = as_dicts(What.BOOK, rows_of(ledger, What.BOOK))
    for symbol in original.engine.symbols():
        bids, asks = original.engine.depth(symbol, 100)
        mine = [b for b in book if b["symbol"] == symbol]
        levels = [(b["side"], b["price_minor"], b["quantity_units"]) for b in mine]
        assert levels == [("buy", *level) for level in bids] + [("sell", *level) for level in asks]
    assert not [b for b in book if b["symbol"] == SEALED_SYMBOL], "sealed bids are not shown"


def test_events_hold_the_trades_and_the_book_changes(ledger: Ledger) -> None:
    events = as_dicts(What.EVENTS, rows_of(ledger, What.EVENTS))
    trades = as_dicts(What.TRADES, rows_of(ledger, What.TRADES))
    traded = [e for e in events if e["event"] == "Trade"]
    assert [(e["trade_id"], e["price_minor"], e["quantity_units"]) for e in traded] == [
        (t["trade_id"], t["price_minor"], t["quantity_units"]) for t in trades
    ]
    kinds = {e["event"] for e in events}
    assert {"Accepted", "Cancelled", "Amended", "AuctionResult", "PhaseChanged"} <= kinds
    changed = next(e for e in events if e["event"] == "BookChanged")
    assert orjson.loads(changed["levels"])[0][0] in ("buy", "sell")
    amended = [e for e in events if e["event"] == "Amended"]
    assert [e["priority_kept"] for e in amended] == [False, True]


def test_a_window_keeps_the_rows_stamped_within_it(
    ledger: Ledger, recorded_sqlite: Recorded
) -> None:
    middle = recorded_sqlite.midpoint_ns
    everything = as_dicts(What.TRADES, rows_of(ledger, What.TRADES))
    before = as_dicts(What.TRADES, rows_of(ledger, What.TRADES, Window(end_ns=middle)))
    after = as_dicts(What.TRADES, rows_of(ledger, What.TRADES, Window(start_ns=middle)))
    assert before and after and before + after == everything
    assert all(t["ts_ns"] <= middle for t in before)
    book_then = rows_of(ledger, What.BOOK, Window(end_ns=middle))
    assert {row[0] for row in book_then} == {recorded_sqlite.midpoint_seq}
    only = as_dicts(What.TRADES, rows_of(ledger, What.TRADES, Window(symbol=AUCTION_SYMBOL)))
    assert only and {t["symbol"] for t in only} == {AUCTION_SYMBOL}


def test_options_that_do_not_apply_are_refused(ledger: Ledger) -> None:
    with pytest.raises(InputError, match="--symbol does not apply to ledger"):
        rows_of(ledger, What.LEDGER, Window(symbol=SYMBOL))
    with pytest.raises(InputError, match="--from does not apply"):
        rows_of(ledger, What.BOOK, Window(start_ns=1))
    with pytest.raises(InputError, match="--from is after --to"):
        rows_of(ledger, What.TRADES, Window(start_ns=2, end_ns=1))


def change_a_journal_row(ledger: Ledger) -> None:
    """Change a row near the journal's end behind the ledger's back: its hash no longer holds."""
    with ledger.engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER ledger_journal_no_update")
        connection.exec_driver_sql(
            "UPDATE ledger_journal SET ts_ns = ts_ns + 1 WHERE seq = (SELECT MAX(seq) - 2 "
            "FROM ledger_journal)"
        )


def test_a_database_that_does_not_replay_exports_nothing(
    sqlite_copy: Ledger, tmp_path: Path
) -> None:
    change_a_journal_row(sqlite_copy)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ExportError, match="hash mismatch"):
        export_table(sqlite_copy, What.TRADES, Format.CSV, out / "trades.csv", Window())
    assert not list(out.iterdir()), "not even a temporary file is left"


# -- LOBSTER -----------------------------------------------------------------------------------


def test_lobster_files_rebuild_into_the_exchange_s_book(ledger: Ledger, tmp_path: Path) -> None:
    result, lobster = export_lobster(ledger, SYMBOL, 5, tmp_path, Window())
    names = sorted(path.name for path in result.files)
    assert names == [
        f"{SYMBOL}_2023-11-14_0_86400000_message_5.csv",
        f"{SYMBOL}_2023-11-14_0_86400000_orderbook_5.csv",
        f"{SYMBOL}_2023-11-14_0_86400000_units_5.json",
        f"{SYMBOL}_2023-11-15_0_86400000_message_5.csv",
        f"{SYMBOL}_2023-11-15_0_86400000_orderbook_5.csv",
        f"{SYMBOL}_2023-11-15_0_86400000_units_5.json",
    ], "one pair and its side-car per UTC day"
    messages = 0
    for day in ("2023-11-14", "2023-11-15"):
        stem = tmp_path / f"{SYMBOL}_{day}_0_86400000"
        report = check_lobster(Path(f"{stem}_message_5.csv"), Path(f"{stem}_orderbook_5.csv"))
        assert report.ok, (day, report.mismatch)
        messages += report.messages
    assert messages == lobster.messages
    first_day = [m for _, m in read_messages(tmp_path / names[0])]
    assert first_day[0].type == HALT and first_day[0].price == 1, "continuous trading opens"
    # 500.00 yuan in LOBSTER's units, yuan x 10,000.
    assert first_day[1] == first_day[1]._replace(type=SUBMISSION, size=10, price=5_000_000)
    assert {m.type for m in first_day} >= {1, 2, 3, 4, 7}


def test_auction_trades_execute_both_resting_sides(ledger: Ledger, tmp_path: Path) -> None:
    result, _ = export_lobster(ledger, AUCTION_SYMBOL, 2, tmp_path, Window())
    message_file = next(p for p in result.files if "_message_" in p.name)
    messages = [m for _, m in read_messages(message_file)]
    executions = [m for m in messages if m.type == 4]
    assert sorted((m.direction, m.size) for m in executions) == [(-1, 2), (-1, 3), (1, 2), (1, 3)]
    assert messages[-1].type == HALT and messages[-1].price == -1, "halted after the auction"
    orderbook = Path(str(message_file).replace("_message_", "_orderbook_"))
    assert check_lobster(message_file, orderbook).ok


def test_lobster_export_of_a_sealed_bid_book_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="sealed bid"):
        export_lobster(ledger, SEALED_SYMBOL, 5, tmp_path, Window())
    with pytest.raises(InputError, match="no instrument 'NOPE'"):
        export_lobster(ledger, "NOPE", 5, tmp_path, Window())
    assert not list(tmp_path.iterdir()), "no partial files are left"


def test_lobster_window_and_time_of_day(
    ledger: Ledger, recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    start = recorded_sqlite.midpoint_ns + HOUR_NS
    result, _ = export_lobster(ledger, SYMBOL, 1, tmp_path, Window(start_ns=start))
    assert [p.name for p in result.files if "message" in p.name] == [
        f"{SYMBOL}_2023-11-15_0_86400000_message_1.csv"
    ]
    first = next(m for _, m in read_messages(result.files[0]))
    assert first.time_ns >= start % (86_400 * 10**9)


# -- pandas ------------------------------------------------------------------------------------


def test_frames_hold_the_exported_rows(ledger: Ledger, tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    need_pyarrow()
    tables = frames(ledger, ["trades", "orders", "book"])
    assert set(tables) == {"trades", "orders", "book"}
    for what, frame in tables.items():
        export_table(ledger, What(what), Format.CSV, tmp_path / f"{what}.csv", Window())
        written = read_table(tmp_path / f"{what}.csv", Format.CSV, TABLES[what])
        assert list(frame.columns) == [column.name for column in TABLES[what]]
        as_rows = [
            tuple(None if _missing(v) else v for v in row)
            for row in frame.astype(object).itertuples(index=False)
        ]
        assert as_rows == written
    trades = tables["trades"]
    assert str(trades["aggressor"].dtype) == "string" and str(trades["entry_seq"].dtype) == "Int64"


def _missing(value: object) -> bool:
    import pandas as pd

    return value is pd.NA


def test_frames_without_pandas_say_how_to_install_it(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingDependency, match=r"pip install 'dataex\[research\]'"):
        frames(ledger, ["trades"])


def test_parquet_without_pyarrow_says_how_to_install_it(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingDependency, match=r"Parquet export needs pyarrow.*\[research\]"):
        export_table(ledger, What.TRADES, Format.PARQUET, tmp_path / "t.parquet", Window())
    assert not list(tmp_path.iterdir())


# -- the writing process ---------------------------------------------------------------------


@pytest.mark.parametrize("format", list(Format))
def test_tables_written_by_the_writing_process_are_the_same(
    recorded: Recorded, tmp_path: Path, format: Format, monkeypatch: pytest.MonkeyPatch
) -> None:
    # However short the journal, every table goes to the writing process (the replayed
    # tables as rows; the record tables it reads from the database); with a window, as
    # without.
    if format is Format.PARQUET:
        need_pyarrow()
    monkeypatch.setattr(offload, "MIN_COMMANDS", 0)
    ledger = Ledger.open(recorded.url)
    try:
        for window in (Window(), Window(end_ns=recorded.midpoint_ns)):
            directory = tmp_path / str(window.end_ns)
            directory.mkdir()
            paths = {what: directory / f"{what}.{format}" for what in What}
            result = export_tables(ledger, paths, format, window)
            for what, path in paths.items():
                expected = rows_of(ledger, what, window)
                written = read_table(path, format, TABLES[what])
                if format is Format.PARQUET:
                    assert by_partition(what, written) == by_partition(what, expected)
                else:
                    assert written == expected
                assert result.rows[what] == len(expected)
            assert sorted(p.name for p in directory.iterdir()) == sorted(
                p.name for p in paths.values()
            )
    finally:
        ledger.engine.dispose()


def test_a_database_that_does_not_replay_leaves_no_table_written_elsewhere(
    sqlite_copy: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The replay finds the changed row; the writing process, which reads it too, removes
    # what it wrote.
    monkeypatch.setattr(offload, "MIN_COMMANDS", 0)
    change_a_journal_row(sqlite_copy)
    out = tmp_path / "out"
    out.mkdir()
    paths = {what: out / f"{what}.csv" for what in (What.TRADES, What.JOURNAL, What.LEDGER)}
    with pytest.raises(ExportError, match="hash mismatch"):
        export_tables(sqlite_copy, dict(paths), Format.CSV, Window())
    assert not list(out.iterdir()), "not even a temporary file is left"


@pytest.mark.parametrize("unwritable", [What.TRADES, What.JOURNAL])
def test_a_table_that_cannot_be_written_fails_the_export_and_leaves_nothing(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unwritable: What
) -> None:
    # A replayed table (the record tables are abandoned too), or a record table, whose
    # directory is missing: the error reaches the export, which leaves nothing.
    monkeypatch.setattr(offload, "MIN_COMMANDS", 0)
    out = tmp_path / "out"
    out.mkdir()
    paths = {what: out / f"{what}.csv" for what in (What.TRADES, What.JOURNAL, What.LEDGER)}
    paths[unwritable] = out / "missing" / f"{unwritable}.csv"
    with pytest.raises(FileNotFoundError):
        export_tables(ledger, paths, Format.CSV, Window())
    assert not list(out.iterdir()), "not even a temporary file is left"


def test_a_process_that_stops_midway_fails_the_export_with_its_own_error(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The files may not grow past 2 KiB (as on a full disk, a write fails: "File too large"),
    # while the replay sends the process rows a message each: the export ends with the
    # process's error, not the broken pipe to it, and leaves nothing.
    monkeypatch.setattr(offload, "MIN_COMMANDS", 0)
    monkeypatch.setattr(offload, "ROWS_PER_MESSAGE", 1)
    limit = 2048
    out = tmp_path / "out"
    out.mkdir()
    paths = {what: out / f"{what}.csv" for what in (What.EVENTS, What.ORDERS, What.LEDGER)}
    ignored = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a signal
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))  # the process inherits it
    try:
        with pytest.raises(OSError) as raised:
            export_tables(ledger, dict(paths), Format.CSV, Window())
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, ignored)
    assert raised.value.errno == errno.EFBIG, raised.value
    assert not list(out.iterdir()), "not even a temporary file is left"
    export_tables(ledger, dict(paths), Format.CSV, Window())
    assert max(path.stat().st_size for path in paths.values()) > limit, "a file outgrows it"


def test_rows_sent_to_a_process_that_has_stopped_raise_its_own_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process cannot open its file and stops while rows are still being sent, a message
    # each: the pipe to it breaks, and the sender gets the process's error, not the broken
    # pipe's, before it has sent them all (bounded: the queue never waits on a dead pipe).
    monkeypatch.setattr(offload, "ROWS_PER_MESSAGE", 1)
    path = tmp_path / "missing" / "events.csv"
    url, format = "sqlite://", Format.CSV  # the process reads no database for events
    with offload.WritingProcess(url, {"events": path}, format, Window()) as process:
        write = process.sink("events")
        with pytest.raises(FileNotFoundError, match="missing"):
            for seq in range(1_000_000):
                write((seq, 0, 0, "Accepted", SYMBOL) + (None,) * 24)
    assert not list(tmp_path.iterdir())


def test_a_writing_process_killed_midway_is_reported_and_leaves_nothing(tmp_path: Path) -> None:
    # Killed (as by the out-of-memory killer) once it has opened its file: the export is
    # told so in a sentence, and what the process left is removed.
    path = tmp_path / "events.csv"
    url, format = "sqlite://", Format.CSV  # the process reads no database for events
    with (
        pytest.raises(offload.WriterStopped, match="exit code -9"),
        offload.WritingProcess(url, {"events": path}, format, Window()) as process,
    ):
        deadline = time.monotonic() + 60
        while not list(tmp_path.iterdir()):  # its temporary file, once it has started
            assert time.monotonic() < deadline, "the writing process never opened its file"
            time.sleep(0.01)
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        process.end()
        process.wait_written()
    assert not list(tmp_path.iterdir()), "its temporary file is removed"
