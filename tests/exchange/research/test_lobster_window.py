"""LOBSTER files of a real day: the order-book file shows N levels, and messages are written
only for events within them, so levels move in and out of view unseen. The check takes a level
that comes into view from beyond the window from the file, and still reports every true
difference within the levels it knows.

The pairs here are written as LOBSTER writes them: a full-depth book (the *truth*) takes every
event, a message is written only when the event touches a level within the N shown (before or
after it), hidden executions and halts always, and each row is the truth's top N levels.
"""

from __future__ import annotations

import random
from pathlib import Path

from typer.testing import CliRunner

from exchange.cli import app
from exchange.research import check_lobster
from exchange.research.lobster import (
    BUY,
    CANCELLATION,
    DELETION,
    EXECUTION,
    HALT,
    HIDDEN_EXECUTION,
    SELL,
    SUBMISSION,
    LevelBook,
    Message,
)

LEVELS = 3
START_NS = 34_200 * 1_000_000_000


def in_view(book: LevelBook, message: Message) -> bool:
    shown = [price for price, _ in book.depth(message.direction)[:LEVELS]]
    order = book.orders.get(message.order_id)
    return message.price in shown or (order is not None and order[1] in shown)


def lobster_pair(
    directory: Path, before: list[Message], events: list[Message]
) -> tuple[Path, Path, LevelBook, int]:
    """The message and order-book files of ``events`` on a book that ``before`` built before
    the file begins; the truth's book at the end, and how many events were left out."""
    truth = LevelBook()
    for message in before:
        assert truth.apply(message) is None
    messages, rows, left_out = [], [], 0
    for number, event in enumerate(events):
        message = event._replace(time_ns=START_NS + number * 1_000_000)
        shown = message.type >= HIDDEN_EXECUTION or in_view(truth, message)
        assert truth.apply(message) is None, message
        if shown or in_view(truth, message):
            messages.append(str(message))
            rows.append(",".join(map(str, truth.row(LEVELS))))
        else:
            left_out += 1
    stem = directory / f"DEEP_2026-11-30_34200000_57600000_{{}}_{LEVELS}.csv"
    paths = []
    for kind, text in (("message", messages), ("orderbook", rows)):
        path = Path(str(stem).format(kind))
        path.write_text("".join(f"{row}\n" for row in text))
        paths.append(path)
    return paths[0], paths[1], truth, left_out


# Five ask and four bid levels rest before the file begins; it shows three of each.
BEFORE = [
    *(Message(0, SUBMISSION, i, 10 * i, 100 + i, SELL) for i in range(1, 6)),  # 101..105
    *(Message(0, SUBMISSION, 10 + i, 10 * i, 100 - i, BUY) for i in range(1, 5)),  # 99..96
]
EVENTS = [
    Message(0, SUBMISSION, 21, 5, 99, BUY),  # row 1: the file's first book
    Message(0, DELETION, 1, 10, 101, SELL),  # row 2: ask 104 comes into view
    Message(0, CANCELLATION, 4, 15, 104, SELL),  # row 3: an order from before, now in view
    Message(0, DELETION, 5, 50, 105, SELL),  # out of view: not written
    Message(0, HIDDEN_EXECUTION, 0, 7, 100, SELL),  # row 4
    Message(0, HALT, 0, 0, -1, SELL),  # row 5
    Message(0, HALT, 0, 0, 1, SELL),  # row 6
    Message(0, EXECUTION, 2, 20, 102, SELL),  # row 7: the asks show two levels, no more
    Message(0, SUBMISSION, 22, 30, 106, SELL),  # row 8: a new third ask level
    Message(0, EXECUTION, 11, 10, 99, BUY),  # row 9
    Message(0, DELETION, 21, 5, 99, BUY),  # row 10: bid 96 comes into view
    Message(0, SUBMISSION, 23, 8, 100, BUY),  # row 11: bid 96 leaves the view
    Message(0, CANCELLATION, 14, 10, 96, BUY),  # out of view: not written
    Message(0, DELETION, 23, 8, 100, BUY),  # row 12: bid 96 is back, 30 now, not 40
    Message(0, CANCELLATION, 14, 5, 96, BUY),  # row 13: and in view again
]


def test_deletions_that_reveal_deeper_levels_are_taken_from_the_file(tmp_path: Path) -> None:
    messages, orderbook, truth, left_out = lobster_pair(tmp_path, BEFORE, EVENTS)
    assert left_out == 2
    report = check_lobster(messages, orderbook)
    assert report.ok, report.mismatch
    report.book.check_invariants()
    assert (report.messages, report.rows_checked, report.levels) == (13, 13, LEVELS)
    assert report.by_type[HIDDEN_EXECUTION] == 1 and report.by_type[HALT] == 2
    # Ask 104 (row 2), bid 96 (row 10) and bid 96 again (row 12).
    assert report.revealed_levels == 3
    assert report.unseen_messages == 0
    assert report.book.row(LEVELS) == truth.row(LEVELS)
    assert report.book.depth(BUY) == [(98, 20), (97, 30), (96, 25)]


def test_the_pair_shows_a_level_no_message_introduced(tmp_path: Path) -> None:
    # The property of a real day: row 2 shows ask 104, which rested before the file began
    # beyond the three levels of row 1, and no message names it before row 3.
    messages, orderbook, _, _ = lobster_pair(tmp_path, BEFORE, EVENTS)
    rows = [row.split(",") for row in orderbook.read_text().splitlines()]
    assert "104" not in rows[0] and rows[1][8:10] == ["104", "40"]  # ask price 3, ask size 3
    assert [row.split(",")[4] for row in messages.read_text().splitlines()[:2]] == ["99", "101"]


def corrupt(orderbook: Path, row: int, old: str, new: str) -> Path:
    rows = orderbook.read_text().splitlines()
    assert old in rows[row - 1], rows[row - 1]
    rows[row - 1] = rows[row - 1].replace(old, new, 1)
    orderbook.write_text("".join(f"{text}\n" for text in rows))
    return orderbook


def test_a_differing_size_within_the_known_levels_is_reported(tmp_path: Path) -> None:
    messages, orderbook, _, _ = lobster_pair(tmp_path, BEFORE, EVENTS)
    report = check_lobster(messages, corrupt(orderbook, 9, "99,5", "99,6"))
    assert report.mismatch is not None
    assert (report.mismatch.row, report.mismatch.column) == (9, 3)
    assert report.mismatch.what == "bid size 1 is 6 in the order-book file, 5 in the rebuilt book"


def test_a_revealed_level_is_known_from_then_on(tmp_path: Path) -> None:
    # Row 2 reveals ask 104 with 40; row 3 must then show the cancellation of 15.
    messages, orderbook, _, _ = lobster_pair(tmp_path, BEFORE, EVENTS)
    report = check_lobster(messages, corrupt(orderbook, 3, "104,25", "104,40"))
    assert report.mismatch is not None
    assert report.mismatch.row == 3
    assert report.mismatch.what == (
        "ask size 3 is 40 in the order-book file, 25 in the rebuilt book"
    )


def test_a_level_missing_within_the_known_levels_is_reported(tmp_path: Path) -> None:
    # Row 8: the asks showed two levels, so the whole side was known; a third level appearing
    # at 107 instead of the submitted 106 is a difference, not a reveal.
    messages, orderbook, _, _ = lobster_pair(tmp_path, BEFORE, EVENTS)
    report = check_lobster(messages, corrupt(orderbook, 8, "106,30", "107,30"))
    assert report.mismatch is not None
    assert report.mismatch.row == 8
    assert report.mismatch.what == (
        "ask price 3 is 107 in the order-book file, 106 in the rebuilt book"
    )


def test_a_message_on_an_unknown_order_within_the_known_levels_is_reported(
    tmp_path: Path,
) -> None:
    messages, orderbook, _, _ = lobster_pair(tmp_path, BEFORE, EVENTS)
    # Ask 105 is in view and known to be empty: no order of any id can be deleted there.
    unknown = Message(START_NS + 10**9, DELETION, 99, 5, 105, SELL)
    with messages.open("a") as file:
        file.write(f"{unknown}\n")
    with orderbook.open("a") as file:
        file.write(orderbook.read_text().splitlines()[-1] + "\n")
    report = check_lobster(messages, orderbook)
    assert report.mismatch is not None
    assert (report.mismatch.row, report.mismatch.what) == (14, "order 99 is not in the book")


def test_a_message_beyond_the_view_is_taken_on_trust() -> None:
    book = LevelBook()
    assert book.apply(Message(0, SUBMISSION, 1, 10, 101, SELL)) is None
    book.horizon[SELL] = 101
    assert book.beyond_horizon(SELL, 102) and not book.beyond_horizon(SELL, 101)
    assert not book.beyond_horizon(BUY, 1), "the whole bid side is in view"
    assert book.apply(Message(0, DELETION, 7, 5, 103, SELL)) is None, "unseen before the file"
    assert book.apply(Message(0, SUBMISSION, 2, 10, 104, SELL)) is None
    # Order 2 was cancelled in part out of view: its deletion says 4, the book holds 10.
    assert book.apply(Message(0, DELETION, 2, 4, 104, SELL)) is None
    assert (
        book.depth(SELL) == [(101, 10)]
        and 2 not in book.orders
        and not book.resting.get((SELL, 104))
    )
    book.check_invariants()
    assert book.apply(Message(0, DELETION, 1, 4, 101, SELL)) == (
        "deletes 4 of order 1, which has 10 left"
    ), "within the view the book is exact"


def random_day(seed: int, events: int) -> tuple[list[Message], list[Message]]:
    """A deep book before the file, then ``events`` submissions, cancellations, deletions,
    executions of the first order at a best price, hidden executions and halts, drawn from
    ``seed``."""
    rng = random.Random(seed)
    truth = LevelBook()
    before: list[Message] = []
    next_id = 1
    for direction, prices in ((SELL, range(101, 113)), (BUY, range(88, 100))):
        for price in prices:
            for _ in range(rng.randint(1, 3)):
                before.append(Message(0, SUBMISSION, next_id, rng.randint(1, 9) * 10, price,
                                      direction))  # fmt: skip
                truth.apply(before[-1])
                next_id += 1
    day: list[Message] = []
    while len(day) < events:
        roll = rng.random()
        direction = rng.choice((BUY, SELL))
        if roll < 0.03:
            message = Message(0, rng.choice((HIDDEN_EXECUTION, HALT)), 0, 0, rng.choice((-1, 1)),
                              SELL)  # fmt: skip
            if message.type == HIDDEN_EXECUTION:
                message = message._replace(size=rng.randint(1, 50), price=100)
        elif roll < 0.45 or not truth.orders:
            # A few ticks behind the other side's best price: never crossing, and the
            # spread stays narrow, as on a liquid day.
            other = truth.depth(-direction)
            facing = other[0][0] if other else (99 if direction == SELL else 101)
            price = facing + direction * -rng.randint(1, 7)
            message = Message(0, SUBMISSION, next_id, rng.randint(1, 9) * 10, price, direction)
            next_id += 1
        else:
            kind = rng.choice((CANCELLATION, DELETION, DELETION, EXECUTION))
            if kind == EXECUTION:  # of the order first in line at the best price of a side
                side = direction if truth.depth(direction) else -direction
                order_id = min(truth.resting[side, truth.depth(side)[0][0]])
            elif rng.random() < 0.7 and truth.depth(direction):  # near the top, mostly
                near = rng.choice(truth.depth(direction)[:4])[0]
                order_id = rng.choice(sorted(truth.resting[direction, near]))
            else:
                order_id = rng.choice(sorted(truth.orders))
            side, price, remaining = truth.orders[order_id]
            size = remaining if kind == DELETION else rng.randint(1, remaining)
            if kind == CANCELLATION and size == remaining:
                kind = DELETION
            message = Message(0, kind, order_id, size, price, side)
        assert truth.apply(message) is None, message
        day.append(message)
    return before, day


def test_a_long_day_with_levels_moving_in_and_out_of_view_rebuilds(tmp_path: Path) -> None:
    before, day = random_day(seed=7, events=3_000)
    messages, orderbook, truth, left_out = lobster_pair(tmp_path, before, day)
    report = check_lobster(messages, orderbook)
    assert report.ok, report.mismatch
    report.book.check_invariants()
    assert report.rows_checked == len(day) - left_out
    assert left_out > 500 and report.revealed_levels > 50, (left_out, report.revealed_levels)
    assert report.book.row(LEVELS) == truth.row(LEVELS)

    # The same day with one size within the levels in view changed, far into the file.
    rows = orderbook.read_text().splitlines()
    row = len(rows) * 3 // 4
    fields = rows[row - 1].split(",")
    fields[1] = str(int(fields[1]) + 1)  # ask size 1
    rows[row - 1] = ",".join(fields)
    orderbook.write_text("".join(f"{text}\n" for text in rows))
    report = check_lobster(messages, orderbook)
    assert report.mismatch is not None
    assert (report.mismatch.row, report.mismatch.column) == (row, 1)


def test_the_replay_summary_counts_the_revealed_levels(tmp_path: Path) -> None:
    messages, orderbook, _, _ = lobster_pair(tmp_path, BEFORE, EVENTS)
    result = CliRunner().invoke(
        app, ["replay", "--lobster", str(messages), "--orderbook", str(orderbook),
              "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "order book:  13 rows of 3 levels checked" in result.stdout
    assert (
        "revealed:    3 levels came into view from beyond the file's 3 and were taken from "
        "it; 0 messages fell beyond the levels in view"
    ) in result.stdout
    assert "hidden executions 1" in result.stdout and "halts 2" in result.stdout
