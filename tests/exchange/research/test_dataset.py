"""Parquet datasets: rows partitioned by date and symbol come back whole, in order within each
partition, however they were batched into files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.research import dataset
from exchange.research.dataset import HIVE_NULL, read_dataset, writing_dataset
from exchange.research.tables import BOOK_COLUMNS, Row

DAY_NS = 86_400 * 10**9


def test_rows_split_into_batches_days_and_reopened_partitions_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyarrow")
    monkeypatch.setattr(dataset, "BATCH_ROWS", 3)
    monkeypatch.setattr(dataset, "CONVERT_ROWS", 4)
    monkeypatch.setattr(dataset, "MAX_OPEN_PARTITIONS", 2)
    rows: list[Row] = []
    for seq in range(40):
        day = seq // 15  # three days, in time order
        symbol = ("A.X", "B.X", "C.X")[seq % 3]  # three symbols: more than may be open
        rows.append((seq, day * DAY_NS + seq, symbol, "buy", 1, 100 + seq, seq + 1))
    late = (99, 5, "A.X", "sell", 1, 7, 7)  # a row of the first day after the others
    path = tmp_path / "book.parquet"
    with writing_dataset(path, BOOK_COLUMNS) as writer:
        for row in [*rows, late]:
            writer.write(row)
        assert writer.rows == len(rows) + 1
    read = read_dataset(path, BOOK_COLUMNS)
    expected = sorted([*rows, late], key=lambda row: (row[1] // DAY_NS, row[2]))
    assert sorted(read) == sorted(expected)
    for symbol in ("A.X", "B.X", "C.X"):
        first_day = [row for row in read if row[2] == symbol and row[1] < DAY_NS]
        in_order = [row for row in rows if row[2] == symbol and row[1] < DAY_NS]
        if symbol == "A.X":
            in_order.append(late)
        assert first_day == in_order
    first = path / "date=1970-01-01" / "symbol=A.X"
    assert len(list(first.glob("part-*.parquet"))) > 1, "batches and reopenings make parts"


def test_rows_without_a_symbol_go_to_the_null_partition(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "book.parquet"
    with writing_dataset(path, BOOK_COLUMNS) as writer:
        writer.write((1, 5, None, "buy", 1, 100, 1))
    assert (path / "date=1970-01-01" / f"symbol={HIVE_NULL}" / "part-0.parquet").is_file()
    assert read_dataset(path, BOOK_COLUMNS) == [(1, 5, None, "buy", 1, 100, 1)]


def test_a_failed_export_leaves_no_dataset(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "book.parquet"
    with pytest.raises(RuntimeError), writing_dataset(path, BOOK_COLUMNS) as writer:
        writer.write((1, 5, "A.X", "buy", 1, 100, 1))
        raise RuntimeError("the replay failed")
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["A.X", "B.X", None])), max_size=50),
    st.integers(1, 9),
    st.integers(1, 9),
)
def test_each_partition_holds_its_rows_in_the_order_they_came(
    partitions: list[tuple[int, str | None]], batch_rows: int, convert_rows: int
) -> None:
    # Rows of several days and symbols interleaved (days in time order, as an export writes
    # them), whatever the sizes of row groups and of conversions: a batch splits across
    # partitions without reordering.
    pytest.importorskip("pyarrow")
    days = sorted(day for day, _ in partitions)
    rows = [
        (seq, day * DAY_NS + seq, symbol, "buy", 1, 100 + seq, seq + 1)
        for seq, (day, (_, symbol)) in enumerate(zip(days, partitions, strict=True))
    ]
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as directory:
        patch.setattr(dataset, "BATCH_ROWS", batch_rows)
        patch.setattr(dataset, "CONVERT_ROWS", convert_rows)
        path = Path(directory) / "book.parquet"
        with writing_dataset(path, BOOK_COLUMNS) as writer:
            for row in rows:
                writer.write(row)
        read = read_dataset(path, BOOK_COLUMNS) if rows else []
    assert sorted(read) == sorted(rows)
    for day in set(days):
        for symbol in ("A.X", "B.X", None):
            came = [row for row in rows if row[1] // DAY_NS == day and row[2] == symbol]
            back = [row for row in read if row[1] // DAY_NS == day and row[2] == symbol]
            assert back == came
