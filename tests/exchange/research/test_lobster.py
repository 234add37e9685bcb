"""LOBSTER: rebuilding the visible book from a message file, row for row against its
order-book file (the hand-made pair in ``data/``), and the mismatches and bad rows named."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange.research import InputError, check_lobster
from exchange.research.lobster import (
    ASK_DUMMY_PRICE,
    BID_DUMMY_PRICE,
    BUY,
    SELL,
    LevelBook,
    LobsterExport,
    Message,
    PriceUnit,
    read_messages,
    read_units,
    units_path,
)
from exchange.research.tables import Window
from tests.exchange.research.conftest import DATA

STEM = "TEST_2026-11-28_34200000_57600000"
MESSAGES = DATA / f"{STEM}_message_2.csv"
ORDERBOOK = DATA / f"{STEM}_orderbook_2.csv"
OTHERWISE = "the message says otherwise"


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(f"{row}\n" for row in rows))
    return path


def test_the_hand_made_pair_rebuilds_row_for_row() -> None:
    report = check_lobster(MESSAGES, ORDERBOOK)
    assert report.ok, report.mismatch
    assert (report.messages, report.rows_checked, report.levels) == (15, 15, 2)
    assert dict(report.by_type) == {1: 6, 2: 1, 3: 2, 4: 2, 5: 1, 6: 1, 7: 2}
    assert report.seeded_units == 0, "the file starts with an empty book"
    assert report.book.depth(BUY) == [(10000, 10)]
    assert report.book.depth(SELL) == [(10100, 25), (10200, 70)]
    assert report.book.orders == {3: [SELL, 10200, 70], 5: [SELL, 10100, 25], 6: [BUY, 10000, 10]}


def test_messages_alone_rebuild_the_same_book() -> None:
    report = check_lobster(MESSAGES)
    assert report.ok and report.rows_checked == 0 and report.levels is None
    assert report.book.row(3) == [
        10100, 25, 10000, 10, 10200, 70, BID_DUMMY_PRICE, 0, ASK_DUMMY_PRICE, 0,
        BID_DUMMY_PRICE, 0,
    ]  # fmt: skip


def test_times_are_read_to_the_nanosecond() -> None:
    messages = [message for _, message in read_messages(MESSAGES)]
    assert messages[0] == Message(34_200_000_000_001, 1, 1, 100, 10100, -1)
    assert messages[1].time_ns == 34_200_500_000_000
    assert str(messages[5]) == "34203.000001000,4,2,20,10000,1"


def test_a_differing_order_book_row_is_reported_at_its_row_and_column(tmp_path: Path) -> None:
    rows = lines(ORDERBOOK)
    rows[8] = "10100,85,10000,30,10200,70,9900,30"  # row 9 forgets the deletion of order 4
    report = check_lobster(MESSAGES, write(tmp_path / "book.csv", rows))
    mismatch = report.mismatch
    assert mismatch is not None
    assert mismatch.row == 9 and mismatch.column == 6
    assert mismatch.message == Message(34_205_000_000_000, 3, 4, 30, 9900, 1)
    assert mismatch.what == (
        "bid price 2 is 9900 in the order-book file, -9999999999 in the rebuilt book"
    )
    assert report.rows_checked == 8


def test_an_order_book_file_shorter_or_longer_than_the_messages_is_a_mismatch(
    tmp_path: Path,
) -> None:
    rows = lines(ORDERBOOK)
    short = check_lobster(MESSAGES, write(tmp_path / "short.csv", rows[:-1]))
    assert short.mismatch is not None and short.mismatch.row == 15
    assert "ends at row 14" in short.mismatch.what
    long = check_lobster(MESSAGES, write(tmp_path / "long.csv", [*rows, rows[-1]]))
    assert long.mismatch is not None and long.mismatch.row == 16


def test_a_file_that_starts_mid_day_is_seeded_from_its_first_book_row(tmp_path: Path) -> None:
    # From message 5 on, orders 1, 2 and 4 were submitted before the file begins.
    messages = write(tmp_path / "m.csv", lines(MESSAGES)[4:])
    orderbook = write(tmp_path / "b.csv", lines(ORDERBOOK)[4:])
    report = check_lobster(messages, orderbook)
    assert report.ok, report.mismatch
    assert report.seeded_units == 100 + 50 + 70 + 30
    assert report.book.depth(BUY) == [(10000, 10)]
    assert report.book.depth(SELL) == [(10100, 25), (10200, 70)]


def test_a_message_on_an_order_not_in_the_book_stops_the_rebuild(tmp_path: Path) -> None:
    messages = write(tmp_path / "m.csv", lines(MESSAGES)[4:])
    report = check_lobster(messages)
    assert report.mismatch is not None and report.mismatch.row == 1
    assert report.mismatch.what == "order 1 is not in the book"


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (Message(0, 1, 1, 5, 100, BUY), "order 1 is already in the book"),
        (Message(0, 2, 1, 11, 100, BUY), "removes 11 of order 1, which has 10 left"),
        (Message(0, 3, 1, 4, 100, BUY), "deletes 4 of order 1, which has 10 left"),
        (Message(0, 2, 1, 2, 101, BUY), f"order 1 is a buy order at 100; {OTHERWISE}"),
        (Message(0, 4, 1, 2, 100, SELL), f"order 1 is a buy order at 100; {OTHERWISE}"),
        (Message(0, 4, 1, 0, 100, BUY), "a message of type 4 needs a positive size, not 0"),
    ],
)
def test_inconsistent_messages_change_nothing_and_say_why(message: Message, problem: str) -> None:
    book = LevelBook()
    assert book.apply(Message(0, 1, 1, 10, 100, BUY)) is None
    assert book.apply(message) == problem
    assert book.row(1) == [ASK_DUMMY_PRICE, 0, 100, 10]


def test_an_execution_at_a_better_price_reduces_the_order_at_its_own() -> None:
    # In an auction the clearing price can be better than a resting order's limit.
    book = LevelBook()
    assert book.apply(Message(0, 1, 1, 10, 100, BUY)) is None
    assert book.apply(Message(0, 4, 1, 4, 95, BUY)) is None
    assert book.depth(BUY) == [(100, 6)]


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ("34200.1,1,1,100,10100", r"m.csv:2: 5 columns; a message has 6"),
        ("34200.1,1,x,100,10100,1", r"m.csv:2: column 3 \(order id\): 'x' is not an integer"),
        ("34200.1,8,1,100,10100,1", r"m.csv:2: column 2 \(type\): 8 is not a message type"),
        ("34200.1,1,1,100,10100,0", r"m.csv:2: column 6 \(direction\): 0 is not 1 \(buy\)"),
        ("34200.1234567891,1,1,1,1,1", r"m.csv:2: column 1 \(time\): .* at most 9 decimals"),
        ("34199,1,1,1,1,1", r"m.csv:2: column 1 \(time\): 34199 is before the row above"),
        ("34200.1,1,1,-5,10100,1", r"m.csv:2: column 4 \(size\): -5 is negative"),
    ],
)
def test_a_row_that_is_not_a_message_names_its_line_and_column(
    tmp_path: Path, row: str, error: str
) -> None:
    path = write(tmp_path / "m.csv", ["34200,1,9,1,1,1", row])
    with pytest.raises(InputError, match=error):
        check_lobster(path)


def test_an_order_book_row_that_cannot_be_read_names_its_line_and_column(
    tmp_path: Path,
) -> None:
    rows = lines(ORDERBOOK)
    rows[2] = rows[2].replace("10200", "10200.5")
    with pytest.raises(InputError, match=r"b.csv:3: column 5 \(ask price 2\): '10200.5' is not"):
        check_lobster(MESSAGES, write(tmp_path / "b.csv", rows))
    with pytest.raises(InputError, match=r"c.csv:1: 6 columns; an order-book row has 4 per"):
        check_lobster(MESSAGES, write(tmp_path / "c.csv", ["1,2,3,4,5,6"]))
    rows = lines(ORDERBOOK)
    rows[3] += ",1,2,3,4"
    with pytest.raises(InputError, match=r"d.csv:4: 12 columns, the first row has 8"):
        check_lobster(MESSAGES, write(tmp_path / "d.csv", rows))


def test_a_side_car_states_the_prices_unit_and_a_reader_may_not_contradict_it(
    tmp_path: Path,
) -> None:
    messages = write(tmp_path / f"{STEM}_message_2.csv", lines(MESSAGES))
    assert read_units(messages) == (PriceUnit.LOBSTER, "LOBSTER's convention (no side-car)")
    assert read_units(messages, PriceUnit.FEN) == (PriceUnit.FEN, "--price-unit")
    side_car = units_path(messages)
    assert side_car.name == f"{STEM}_units_2.json"
    side_car.write_text('{"price_unit": "fen", "prices_per_currency_unit": 100}')
    assert read_units(messages) == (PriceUnit.FEN, f"the side-car {side_car}")
    assert check_lobster(messages).unit is PriceUnit.FEN
    with pytest.raises(InputError, match=r"--price-unit lobster, but .* says fen"):
        read_units(messages, PriceUnit.LOBSTER)
    for text, problem in [
        ('{"price_unit": "fen", "prices_per_currency_unit": 10000}', "is 100 a currency unit"),
        ('{"price_unit": "dollars", "prices_per_currency_unit": 100}', "needs price_unit"),
        ("not json", "not a side-car of LOBSTER units"),
    ]:
        side_car.write_text(text)
        with pytest.raises(InputError, match=problem):
            read_units(messages)


def test_prices_convert_between_units_exactly() -> None:
    assert PriceUnit.LOBSTER.to_minor(1_015_000) == 10_150
    assert PriceUnit.LOBSTER.to_minor(1_015_050) is None, "a fraction of a fen"
    assert PriceUnit.FEN.to_minor(10_150) == 10_150
    export = LobsterExport("S.X", 1, Path("."), Window())
    assert export._scaled(10_150) == 1_015_000
    with pytest.raises(InputError, match=r"beyond its dummy price .* --price-unit fen"):
        export._scaled(100_000_000)
