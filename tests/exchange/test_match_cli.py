"""``dataex match``: order-flow file in, trades, book, events and a summary out."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
from typer.testing import CliRunner

from exchange.cli import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HEADER = "seq,ts,action,order_id,participant,symbol,side,type,price,quantity,tif,phase"
runner = CliRunner()


def write(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "orders.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def match(*args: object):
    return runner.invoke(app, ["match", *map(str, args)])


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_example_file_runs_and_trades(tmp_path):
    trades = tmp_path / "trades.csv"
    result = match(EXAMPLES / "orders.csv", "--trades-out", trades, "--book-out", tmp_path / "b")
    assert result.exit_code == 0, result.output
    rows = read_csv(trades)
    assert {row["symbol"] for row in rows} == {"ZJPARK.NX12.COM", "WXHRLY.EU5.ACA"}
    assert "" in {row["aggressor"] for row in rows}, "the opening auction trades"
    assert {"buy", "sell"} <= {row["aggressor"] for row in rows}, "continuous trades"


def test_example_file_runs_with_its_instruments_file(tmp_path):
    trades, plain = tmp_path / "trades.csv", tmp_path / "plain.csv"
    instruments = EXAMPLES / "instruments.csv"
    result = match(EXAMPLES / "orders.csv", "--trades-out", trades, "--instruments", instruments)
    assert result.exit_code == 0, result.output
    assert match(EXAMPLES / "orders.csv", "--trades-out", plain).exit_code == 0
    assert trades.read_text() == plain.read_text(), "the example fits its tick and lot sizes"


def test_trades_file_lists_trades_in_execution_order(tmp_path):
    orders = write(
        tmp_path,
        "1,10,new,1,ann,X,sell,limit,101,2,,",
        "2,11,new,2,bob,X,sell,limit,100,2,,",
        "3,12,new,3,cat,X,buy,limit,101,3,,",
        "4,13,new,4,dan,X,buy,limit,101,1,,",
    )
    trades = tmp_path / "trades.csv"
    assert match(orders, "--trades-out", trades).exit_code == 0
    assert read_csv(trades) == [
        {"trade_id": "1", "seq": "3", "ts": "12", "symbol": "X", "price": "100",
         "quantity": "2", "buy_order_id": "3", "sell_order_id": "2", "buyer": "cat",
         "seller": "bob", "aggressor": "buy"},
        {"trade_id": "2", "seq": "3", "ts": "12", "symbol": "X", "price": "101",
         "quantity": "1", "buy_order_id": "3", "sell_order_id": "1", "buyer": "cat",
         "seller": "ann", "aggressor": "buy"},
        {"trade_id": "3", "seq": "4", "ts": "13", "symbol": "X", "price": "101",
         "quantity": "1", "buy_order_id": "4", "sell_order_id": "1", "buyer": "dan",
         "seller": "ann", "aggressor": "buy"},
    ]  # fmt: skip


def test_book_file_lists_every_level_best_first(tmp_path):
    orders = write(
        tmp_path,
        *(f"{i},0,new,{i},ann,X,buy,limit,{90 + i},1,," for i in range(1, 13)),
        "13,0,new,13,bob,X,sell,limit,110,4,,",
    )
    book = tmp_path / "book.csv"
    assert match(orders, "--trades-out", tmp_path / "t.csv", "--book-out", book).exit_code == 0
    rows = read_csv(book)
    assert [(r["side"], r["level"], r["price"]) for r in rows[:2]] == [
        ("buy", "1", "102"),
        ("buy", "2", "101"),
    ]
    assert len(rows) == 13, "every level, beyond the ten a depth snapshot shows by default"
    assert rows[-1] == {
        "symbol": "X",
        "side": "sell",
        "level": "1",
        "price": "110",
        "quantity": "4",
    }


def test_events_file_has_every_event_with_its_line_and_seq(tmp_path):
    orders = write(
        tmp_path, "5,0,new,1,ann,X,sell,limit,100,2,,", "7,0,new,2,bob,X,buy,limit,0,1,,"
    )
    events = tmp_path / "events.jsonl"
    assert match(orders, "--trades-out", tmp_path / "t.csv", "--events-out", events).exit_code == 0
    records = [orjson.loads(text) for text in events.read_text().splitlines()]
    assert [(r["line"], r["seq"], r["event"]) for r in records] == [
        (2, 5, "InstrumentAdded"),
        (2, 5, "Accepted"),
        (2, 5, "BookChanged"),
        (3, 7, "Rejected"),
    ]
    assert records[-1]["reason"] == "VALIDATION_PRICE_NOT_POSITIVE"


def test_engine_rejection_is_counted_and_processing_continues(tmp_path):
    orders = write(
        tmp_path,
        "1,0,new,1,ann,X,sell,limit,100,2,,",
        "2,0,cancel,42,ann,,,,,,,",
        "3,0,new,2,bob,X,buy,limit,100,2,,",
    )
    trades = tmp_path / "trades.csv"
    result = match(orders, "--trades-out", trades)
    assert result.exit_code == 0
    assert len(read_csv(trades)) == 1
    assert "MATCHING_UNKNOWN_ORDER" in result.stdout
    assert f"{orders}:3: order 42 MATCHING_UNKNOWN_ORDER" in result.stdout


def test_summary_counts_rows_orders_trades_and_last_price(tmp_path):
    orders = write(
        tmp_path,
        "1,0,new,1,ann,X,sell,limit,100,5,,",
        "2,0,new,2,bob,X,buy,limit,101,3,,",
        "3,0,new,3,bob,X,buy,market,,1,,",
        "4,0,new,4,bob,Y,buy,limit,7,1,,",
    )
    result = match(orders, "--trades-out", tmp_path / "t.csv")
    lines = result.stdout.splitlines()
    assert "rows:     4" in lines
    assert "orders:   3 accepted, 1 rejected" in lines
    assert "trades:   1, volume 3" in lines
    assert ["X", "continuous", "1", "3", "100"] in [line.split() for line in lines]
    assert ["Y", "continuous", "0", "0", "-"] in [line.split() for line in lines]


def test_bad_price_names_line_and_exits_nonzero(tmp_path):
    orders = write(
        tmp_path, "1,0,new,1,ann,X,sell,limit,100,2,,", "2,0,new,2,bob,X,buy,limit,abc,2,,"
    )
    result = match(orders, "--trades-out", tmp_path / "t.csv")
    assert result.exit_code == 2
    assert result.stderr == f"error: {orders}:3: price 'abc' is not an integer\n"
    assert isinstance(result.exception, SystemExit), "an exit, not a crash"


def test_unknown_action_names_line_and_exits_nonzero(tmp_path):
    orders = write(tmp_path, "1,0,buy,1,ann,X,buy,limit,100,2,,")
    result = match(orders, "--trades-out", tmp_path / "t.csv")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {orders}:2: unknown action 'buy'")


def test_missing_required_column_exits_nonzero(tmp_path):
    orders = write(tmp_path, "1,expire", header="seq,action")
    result = match(orders, "--trades-out", tmp_path / "t.csv")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {orders}:1: missing required column 'ts'\n",
    )


def test_seq_not_increasing_exits_nonzero(tmp_path):
    orders = write(tmp_path, "2,0,expire,,,,,,,,,", "1,0,expire,,,,,,,,,")
    result = match(orders, "--trades-out", tmp_path / "t.csv")
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {orders}:3: seq 1 is not above the previous row's 2\n",
    )


def test_bad_row_leaves_existing_outputs_untouched(tmp_path):
    orders = write(tmp_path, "1,0,new,1,ann,X,sell,limit,100,2,,", "2,0,oops,,,,,,,,,")
    trades, events = tmp_path / "trades.csv", tmp_path / "events.jsonl"
    trades.write_text("yesterday's trades\n")
    result = match(orders, "--trades-out", trades, "--events-out", events)
    assert result.exit_code == 2
    assert trades.read_text() == "yesterday's trades\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.csv", "trades.csv"]


def test_missing_orders_file_is_one_error_line(tmp_path):
    result = match(tmp_path / "nowhere.csv", "--trades-out", tmp_path / "t.csv")
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nowhere.csv'}: No such file or directory\n"


def test_missing_output_directory_is_one_error_line(tmp_path):
    orders = write(tmp_path, "1,0,expire,,,,,,,,,")
    result = match(orders, "--trades-out", tmp_path / "no" / "t.csv")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "does not exist" in result.stderr


def test_output_over_an_input_is_refused(tmp_path):
    orders = write(tmp_path, "1,0,expire,,,,,,,,,")
    result = match(orders, "--trades-out", orders)
    assert result.exit_code == 2
    assert orders.read_text().startswith(HEADER)


def test_instruments_file_sets_tick_and_lot(tmp_path):
    instruments = write(tmp_path, "X,5,10", header="symbol,tick_size,lot_size", name="i.csv")
    orders = write(
        tmp_path, "1,0,new,1,ann,X,sell,limit,101,10,,", "2,0,new,2,ann,X,sell,limit,100,5,,"
    )
    result = match(orders, "--trades-out", tmp_path / "t.csv", "--instruments", instruments)
    assert result.exit_code == 0
    assert "VALIDATION_PRICE_OFF_TICK" in result.stdout
    assert "VALIDATION_QUANTITY_NOT_LOT_MULTIPLE" in result.stdout


def test_bad_instruments_file_names_its_line(tmp_path):
    instruments = write(tmp_path, "X,0", header="symbol,lot_size", name="i.csv")
    orders = write(tmp_path, "1,0,expire,,,,,,,,,")
    result = match(orders, "--trades-out", tmp_path / "t.csv", "--instruments", instruments)
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {instruments}:2: instrument X: lot_size must be positive\n",
    )


def test_documented_example_gives_the_documented_trades(tmp_path):
    doc = (EXAMPLES.parent / "docs" / "order-flow-format.md").read_text(encoding="utf-8")
    example = doc[doc.index("## Example") :]
    blocks = example.split("```")[1::2]  # the fenced blocks: orders, then trades
    orders = tmp_path / "orders.csv"
    orders.write_text(blocks[0].lstrip("\n"), encoding="utf-8")
    trades = tmp_path / "trades.csv"
    assert match(orders, "--trades-out", trades).exit_code == 0
    assert trades.read_text(encoding="utf-8") == blocks[1].lstrip("\n")


def test_byte_order_mark_and_crlf_line_ends_are_read(tmp_path):
    orders = tmp_path / "orders.csv"
    orders.write_bytes(b"\xef\xbb\xbfseq,ts,action\r\n1,0,expire\r\n2,0,expire\r\n")
    result = match(orders, "--trades-out", tmp_path / "t.csv")
    assert result.exit_code == 0, result.output
    assert "rows:     2" in result.stdout.splitlines()


def test_non_utf8_byte_names_its_line(tmp_path):
    orders = tmp_path / "orders.csv"
    orders.write_bytes(b"seq,ts,action,participant\n1,0,expire,ann\n2,0,expire,\xe9ve\n")
    result = match(orders, "--trades-out", tmp_path / "t.csv")
    assert (result.exit_code, result.stderr) == (2, f"error: {orders}:3: not UTF-8 text\n")
