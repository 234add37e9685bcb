"""``dataex replay`` and ``dataex export``: what a person sees, and the exit status.

0 when the record is reproduced; 1 at the first difference, both sides shown; 2 for an input
that cannot be used, one ``error:`` line naming the file, line and column; never a traceback.
"""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from exchange.cli import app
from exchange.cli import export as export_cli
from exchange.research.offload import WriterStopped
from exchange.research.readahead import ReaderStopped
from ledger.store import Ledger
from tests.exchange.helpers import SYMBOL
from tests.exchange.research.conftest import Recorded, sqlite_url
from tests.exchange.research.test_lobster import MESSAGES, ORDERBOOK, lines, write
from tests.exchange.research.test_replay import allow_changes, rehash, write_lines

runner = CliRunner()


def dataex(*args: object):
    return runner.invoke(app, [str(arg) for arg in args])


def test_replay_of_a_database_prints_a_summary_and_exits_0(recorded: Recorded) -> None:
    result = dataex("replay", "--database", recorded.url, "--no-progress")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"commands:    {recorded.commands:,} replayed" in out
    assert f"entries:     {recorded.entries:,} settled, checked against the record" in out
    assert f"trades:      {recorded.trades:,}" in out
    assert f"state hash:  {recorded.state_hash}" in out
    assert "result:      the replay reproduces the recorded settlement" in out
    assert result.stderr == ""


def test_replay_until_writes_the_book_of_that_moment(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    book = tmp_path / "book.csv"
    result = dataex(
        "replay", "--database", recorded_sqlite.url, "--until", recorded_sqlite.midpoint_seq,
        "--book-out", book,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"stopped:     at seq {recorded_sqlite.midpoint_seq} (--until)" in result.stdout
    with book.open() as file:
        rows = list(csv.DictReader(file))
    # At the midpoint: bob's amended bid of 4 at 480.00 and prov's 7 left at 520.00.
    assert [(r["symbol"], r["side"], r["price"], r["quantity"]) for r in rows] == [
        (SYMBOL, "buy", "48000", "4"),
        (SYMBOL, "sell", "52000", "7"),
    ]


def test_a_changed_database_row_exits_1_naming_it(sqlite_copy: Ledger) -> None:
    allow_changes(sqlite_copy, "ledger_journal")
    with sqlite_copy.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE ledger_journal SET ts_ns = ts_ns + 1 WHERE seq = 12")
    result = dataex("replay", "--database", sqlite_url(sqlite_copy), "--no-progress")
    assert result.exit_code == 1
    assert "commands:    11 replayed" in result.stdout
    assert "differs at journal seq 12: journal row hash mismatch: the row changed" in result.stdout
    assert result.stderr.startswith("error: the replay differs from the record at journal seq 12")


def test_a_forged_journal_shows_the_recorded_and_the_replayed_entry(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    exported = tmp_path / "journal.jsonl"
    result = dataex(
        "export", "--database", recorded_sqlite.url, "--what", "journal", "--format", "jsonl",
        "--out", exported,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"wrote {recorded_sqlite.commands} journal rows to ")
    same = dataex("replay", "--journal", exported)
    assert same.exit_code == 0, same.output
    assert f"state hash:  {recorded_sqlite.state_hash}" in same.stdout

    journal = [orjson.loads(line) for line in exported.read_bytes().splitlines()]
    line = next(line for line in journal if line["command"].get("client_order_id") == "a1")
    line["command"]["quantity_units"] = 5
    rehash(journal)
    write_lines(tmp_path / "forged.jsonl", journal)
    forged = dataex("replay", "--journal", tmp_path / "forged.jsonl")
    assert forged.exit_code == 1
    out = forged.stdout
    assert f"differs at journal seq {line['seq']}" in out
    assert "ledger entry" in out and "differs in body, postings" in out
    assert "recorded" in out and "replayed" in out and "trade:1 " in out
    assert '"quantity_units":4,' in out and '"quantity_units":5,' in out


def test_a_journal_line_that_cannot_be_read_names_its_line_and_column(tmp_path: Path) -> None:
    command = {
        "verb": "create_participant",
        "actor": "operator",
        "participant_id": "admin",
        "name": "Admin",
        "roles": ["admin"],
        "key_id": "k",
        "secret_sha256": "0" * 64,
    }
    good = {"seq": 1, "ts_ns": 5, "command": command, "chain_hash": ""}  # fmt: skip
    rehash([good])
    path = tmp_path / "j.jsonl"
    path.write_bytes(orjson.dumps(good) + b"\n" + b'{"seq": 2, "ts_ns": 6,, }\n')
    result = dataex("replay", "--journal", path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}:2: column 23: not JSON")
    path.write_bytes(orjson.dumps(good | {"seq": "one"}) + b"\n")
    result = dataex("replay", "--journal", path)
    assert (result.exit_code, result.stderr) == (
        2, f"error: {path}:1: 'seq' must be a non-negative integer, got 'one'\n",
    )  # fmt: skip
    path.write_bytes(orjson.dumps(good | {"price": 1.5}) + b"\n")
    assert dataex("replay", "--journal", path).stderr == f"error: {path}:1: unknown field 'price'\n"


def test_replay_input_mistakes_exit_2_with_one_line(
    tmp_path: Path, recorded_sqlite: Recorded
) -> None:
    cases = [
        (["replay", "--database", f"sqlite:///{tmp_path / 'none.db'}"],
         f"error: no dataex database at sqlite:///{tmp_path / 'none.db'} "
         "(the file does not exist)\n"),
        (["replay", "--database", recorded_sqlite.url, "--journal", tmp_path / "j.jsonl"],
         "error: give one source, not --database and --journal\n"),
        (["replay", "--database", recorded_sqlite.url, "--until", "soon"],
         "error: --until 'soon' is neither a sequence number nor an ISO 8601 time\n"),
        (["replay", "--orderbook", ORDERBOOK], "error: --orderbook goes with --lobster\n"),
        (["replay", "--journal", tmp_path / "missing.jsonl"],
         f"error: {tmp_path / 'missing.jsonl'}: No such file or directory\n"),
        (["replay", "--database", recorded_sqlite.url, "--price-unit", "fen"],
         "error: --price-unit goes with --lobster\n"),
        (["replay", "--lobster", MESSAGES, "--until", "3"],
         "error: --until applies to journals, not to LOBSTER files\n"),
        (["replay", "--database", recorded_sqlite.url, "--book-out", tmp_path / "no" / "b.csv"],
         f"error: {tmp_path / 'no' / 'b.csv'}: directory {tmp_path / 'no'} does not exist\n"),
    ]  # fmt: skip
    for args, error in cases:
        result = dataex(*args, "--no-progress")
        assert (result.exit_code, result.stderr) == (2, error), args
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_replay_of_lobster_files(tmp_path: Path) -> None:
    result = dataex("replay", "--lobster", MESSAGES, "--orderbook", ORDERBOOK)
    assert result.exit_code == 0, result.output
    assert "order book:  15 rows of 2 levels checked" in result.stdout
    assert "result:      every order-book row matches the rebuilt book" in result.stdout

    rows = lines(ORDERBOOK)
    rows[5] = rows[5].replace("10000,30", "10000,35")
    changed = write(tmp_path / "b.csv", rows)
    differs = dataex("replay", "--lobster", MESSAGES, "--orderbook", changed)
    assert differs.exit_code == 1
    assert "differs at row 6 (message 34203.000001000,4,2,20,10000,1): bid size 1 is 35" in (
        differs.stdout
    )
    assert differs.stderr == (
        f"error: {MESSAGES}:6: bid size 1 is 35 in the order-book file, 30 in the rebuilt book\n"
    )

    bad = write(tmp_path / "m.csv", ["34200,1,1,5,100,1", "34201,1,2,five,100,1"])
    result = dataex("replay", "--lobster", bad)
    assert (result.exit_code, result.stderr) == (
        2, f"error: {bad}:2: column 4 (size): 'five' is not an integer\n",
    )  # fmt: skip


def test_export_writes_a_table_and_says_where(recorded_sqlite: Recorded, tmp_path: Path) -> None:
    out = tmp_path / "trades.csv"
    result = dataex("export", "--database", recorded_sqlite.url, "--what", "trades", "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"wrote {recorded_sqlite.trades} trades rows to {out} (replayed "
        f"{recorded_sqlite.commands} commands, settlement checked)\n"
    )
    assert len(out.read_text().splitlines()) == recorded_sqlite.trades + 1
    to_stdout = dataex(
        "export", "--database", recorded_sqlite.url, "--what", "ledger", "--format", "jsonl",
        "--out", "-", "--to", "2023-11-14T23:00:00Z",
    )  # fmt: skip
    assert to_stdout.exit_code == 0, to_stdout.output
    ledger_rows = [orjson.loads(line) for line in to_stdout.stdout.splitlines()]
    assert ledger_rows and all(row["ts_ns"] <= 1_700_002_800 * 10**9 for row in ledger_rows)


def test_export_of_every_table_writes_a_directory_from_one_replay(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    out = tmp_path / "tables"
    result = dataex(
        "export", "--database", recorded_sqlite.url, "--what", "all", "--format", "parquet",
        "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"wrote 6 tables (replayed {recorded_sqlite.commands} commands, settlement checked):"
    )
    assert lines[1] == f"  {recorded_sqlite.trades} trades rows to {out / 'trades.parquet'}"
    assert sorted(path.name for path in out.iterdir()) == [
        f"{what}.parquet" for what in ("book", "events", "journal", "ledger", "orders", "trades")
    ]
    again = dataex(
        "export", "--database", recorded_sqlite.url, "--what", "trades, book", "--out", out,
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert (out / "trades.csv").is_file() and (out / "book.csv").is_file()


def test_lobster_files_round_trip_through_export_and_import(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    """Exported in either unit, the files import into the exchange's own book (minor units)."""
    exchange_book = tmp_path / "exchange-book.csv"
    replayed = dataex(
        "replay", "--database", recorded_sqlite.url, "--book-out", exchange_book, "--no-progress"
    )
    assert replayed.exit_code == 0, replayed.output
    with exchange_book.open() as file:
        expected = [row for row in csv.DictReader(file) if row["symbol"] == SYMBOL]
    assert expected, "the symbol has a book at the end"
    files: dict[str, list[Path]] = {}
    for unit, flags in (("lobster", []), ("fen", ["--price-unit", "fen"])):
        out = tmp_path / unit
        result = dataex(
            "export", "--database", recorded_sqlite.url, "--format", "lobster", "--symbol",
            SYMBOL, "--levels", "3", "--out", out, *flags,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        scale = {"lobster": "10,000", "fen": "100"}[unit]
        assert f"(3 levels, prices in yuan x {scale}):" in result.stderr
        files[unit] = sorted(out.iterdir())
        names = [path.name for path in files[unit]]
        assert len(names) == 6 and names[-1].endswith("_units_3.json"), names
        side_car = orjson.loads(files[unit][-1].read_bytes())
        assert (side_car["price_unit"], side_car["symbol"]) == (unit, SYMBOL)
        messages, orderbook = files[unit][-3], files[unit][-2]  # the last day's pair
        book = tmp_path / f"{unit}-book.csv"
        imported = dataex(
            "replay", "--lobster", messages, "--orderbook", orderbook, "--book-out", book,
            "--no-progress",
        )  # fmt: skip
        assert imported.exit_code == 0, imported.output
        assert f"prices:      yuan x {scale}, from the side-car {files[unit][-1]}" in (
            imported.stdout
        )
        with book.open() as file:
            assert list(csv.DictReader(file)) == expected
    # The same messages, prices 100 times the fen files' (halts and dummies as they are).
    for lobster, fen in zip(files["lobster"][:2], files["fen"][:2], strict=True):
        for ours, theirs in zip(lines(lobster), lines(fen), strict=True):
            if "_message_" in lobster.name:
                *head, price, direction = ours.split(",")
                *other_head, other_price, other_direction = theirs.split(",")
                halt = head[1] == "7"
                assert (head, direction) == (other_head, other_direction)
                assert int(price) == int(other_price) * (1 if halt else 100)
            else:
                pairs = zip(ours.split(","), theirs.split(","), strict=True)
                for index, (a, b) in enumerate(pairs):
                    dummy = abs(int(b)) == 9_999_999_999
                    scale = 100 if index % 2 == 0 and not dummy else 1
                    assert int(a) == int(b) * scale


def test_a_lobster_file_without_a_side_car_is_in_lobster_units(tmp_path: Path) -> None:
    book = tmp_path / "book.csv"
    result = dataex("replay", "--lobster", MESSAGES, "--book-out", book, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "prices:      yuan x 10,000, from LOBSTER's convention (no side-car)" in result.stdout
    with book.open() as file:
        assert [(r["side"], r["price"]) for r in csv.DictReader(file)] == [
            ("buy", "100"), ("sell", "101"), ("sell", "102"),
        ]  # fmt: skip
    as_fen = dataex(
        "replay", "--lobster", MESSAGES, "--price-unit", "fen", "--book-out", book,
        "--no-progress",
    )  # fmt: skip
    assert as_fen.exit_code == 0, as_fen.output
    assert "prices:      yuan x 100, from --price-unit" in as_fen.stdout
    with book.open() as file:
        assert [r["price"] for r in csv.DictReader(file)] == ["10000", "10100", "10200"]


def test_export_input_mistakes_exit_2_with_one_line(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    url = recorded_sqlite.url
    cases = [
        (["--what", "trades", "--format", "parquet", "--out", "-"],
         "error: Parquet cannot go to standard output: give --out DIR\n"),
        (["--format", "lobster"], "error: --format lobster needs --symbol\n"),
        (["--format", "lobster", "--what", "trades", "--symbol", SYMBOL],
         "error: --format lobster writes messages and an order book: leave out --what\n"),
        (["--format", "lobster", "--symbol", SYMBOL, "--levels", "0"],
         "error: --levels must be within 1..200\n"),
        (["--what", "trades", "--from", "monday", "--out", tmp_path / "t.csv"],
         "error: --from: 'monday' is not an ISO 8601 time such as 2026-11-28T09:30:00Z\n"),
        (["--what", "ledger", "--symbol", SYMBOL, "--out", tmp_path / "l.csv"],
         "error: --symbol does not apply to ledger: it has rows of every symbol\n"),
        ([], "error: --what is required: trades, orders, events, book, ledger or journal\n"),
        (["--what", "trades,quotes"], "error: --what: 'quotes' is not a table: trades, orders, "
         "events, book, ledger, journal or all\n"),
        (["--what", "trades,trades"], "error: --what: trades is given twice\n"),
        (["--what", "trades,book", "--out", "-"],
         "error: several tables cannot go to standard output: give --out DIR\n"),
        (["--what", "trades", "--price-unit", "fen"],
         "error: --price-unit applies to --format lobster\n"),
        (["--what", "trades,book", "--out", tmp_path / "t.csv"],
         f"error: --out {tmp_path / 't.csv'}: several tables go to a directory, not a file\n"),
    ]  # fmt: skip
    (tmp_path / "t.csv").write_text("a file, not a directory")
    for args, error in cases:
        result = dataex("export", "--database", url, *args)
        assert (result.exit_code, result.stderr) == (2, error), args
    assert [path.name for path in tmp_path.iterdir()] == ["t.csv"]


def test_export_of_a_database_that_does_not_replay_exits_1(
    sqlite_copy: Ledger, tmp_path: Path
) -> None:
    allow_changes(sqlite_copy, "ledger_journal")
    with sqlite_copy.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE ledger_journal SET ts_ns = ts_ns + 1 WHERE seq = 12")
    out = tmp_path / "out.csv"
    url = sqlite_url(sqlite_copy)
    result = dataex("export", "--database", url, "--what", "orders", "--out", out)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: the journal does not replay into the recorded settlement at journal seq 12"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "stopped",
    [WriterStopped("the process writing the tables stopped (exit code -9)"),
     ReaderStopped("the journal reader process stopped (exit code -9)")],
    ids=["writer", "reader"],
)  # fmt: skip
def test_export_whose_helper_process_is_killed_exits_1_with_one_line(
    recorded_sqlite: Recorded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    stopped: Exception,
) -> None:  # fmt: skip
    # Killed by the out-of-memory killer, say (test_export kills one for real).
    def killed(*args: object, **kwargs: object) -> None:
        raise stopped

    monkeypatch.setattr(export_cli, "export_tables", killed)
    out = tmp_path / "out"
    result = dataex("export", "--database", recorded_sqlite.url, "--what", "all", "--out", out)
    assert result.exit_code == 1
    assert result.stderr == f"error: {stopped}\n"


def test_export_of_an_unknown_symbol_exits_2_with_one_line(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    url = recorded_sqlite.url
    for args, symbol in [
        (["--what", "trades", "--out", tmp_path / "t.csv"], "NOPE.NX12.COM"),
        (["--what", "orders", "--format", "jsonl", "--out", tmp_path / "o.jsonl"], "a:b"),
        (["--format", "lobster", "--out", tmp_path / "lobster"], "NOPE.NX12.COM"),
    ]:
        result = dataex("export", "--database", url, "--symbol", symbol, *args)
        assert (result.exit_code, result.stderr) == (
            2,
            f"error: --symbol: no instrument {symbol!r} in the database\n",
        ), args
        assert result.stdout == ""
    assert not list(tmp_path.iterdir())


def test_export_out_makes_its_directories(recorded_sqlite: Recorded, tmp_path: Path) -> None:
    table = tmp_path / "new" / "deeper" / "trades.csv"
    result = dataex(
        "export", "--database", recorded_sqlite.url, "--what", "trades", "--out", table,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(table.read_text().splitlines()) == recorded_sqlite.trades + 1
    directory = tmp_path / "lobster" / "by-day"
    result = dataex(
        "export", "--database", recorded_sqlite.url, "--format", "lobster", "--symbol", SYMBOL,
        "--out", directory,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(list(directory.iterdir())) == 6, "two days: messages, order book, side-car"
