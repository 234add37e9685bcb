"""Parquet datasets: one table's rows partitioned by date and symbol, so that a reader loads
only the slices it asks for.

    trades.parquet/
        date=2026-03-02/symbol=TRAFFIC.NX12C/part-0.parquet
        date=2026-03-02/symbol=LOAD.NX12C/part-0.parquet
        date=2026-03-03/...
    ledger.parquet/
        date=2026-03-02/part-0.parquet               (a table without a symbol column)

The layout is Hive's, which pyarrow, pandas, Polars, DuckDB, Dask and Spark read as one
table: ``date`` is the UTC day of the row's time (``ts_ns``, or ``created_ns`` for orders),
``symbol`` the row's instrument (``__HIVE_DEFAULT_PARTITION__`` for a row without one, which
readers take as null). As Hive does, the files hold the other columns: a reader gives back
``symbol`` from the directory names, as a column at the end, with ``date`` beside it.
Within a partition rows keep the table's order (time, then sequence); across partitions,
a reader's order is its own.

Rows arrive in time order, so a day's files are closed as soon as a later day begins: the
open files are one day's symbols, not the whole history's.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from exchange.research.journal import InputError
from exchange.research.tables import Column, Kind, Row

__all__ = [
    "HIVE_NULL",
    "DatasetWriter",
    "read_dataset",
    "writing_dataset",
]

# The directory name of a null partition value, as Hive and its readers spell it.
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
NS_PER_DAY = 86_400 * 10**9
# Rows held for one partition before they are written as a row group.
BATCH_ROWS = 65_536
# Limit: partitions with a file open at once (more, and all are closed and reopened as new
# part files when next written).
MAX_OPEN_PARTITIONS = 512
# The columns whose day partitions a table, the first a table has.
_TIME_COLUMNS = ("ts_ns", "created_ns")
_SYMBOL_COLUMN = "symbol"


def _pyarrow() -> tuple[Any, Any]:
    from exchange.research.formats import require

    return require("pyarrow", "Parquet export"), require("pyarrow.parquet", "Parquet export")


class _Partition:
    """One partition's rows not yet written, its open file, and its part files so far."""

    __slots__ = ("directory", "parts", "rows", "writer")

    def __init__(self, directory: Path, parts: int) -> None:
        self.directory = directory
        self.rows: list[Row] = []
        self.writer: Any = None
        self.parts = parts


class DatasetWriter:
    """Writes rows of one table (``columns``) as a Parquet dataset in ``directory``, which
    must exist and be empty. :func:`writing_dataset` makes it appear whole or not at all."""

    def __init__(self, directory: Path, columns: tuple[Column, ...]) -> None:
        pa, self._pq = _pyarrow()
        names = [column.name for column in columns]
        time_name = next((name for name in _TIME_COLUMNS if name in names), None)
        assert time_name is not None, f"a table without a time column: {names}"
        self._time_at = names.index(time_name)
        self._symbol_at = names.index(_SYMBOL_COLUMN) if _SYMBOL_COLUMN in names else None
        self._kept = [i for i in range(len(columns)) if i != self._symbol_at]
        types = {Kind.INTEGER: pa.int64(), Kind.TEXT: pa.string(), Kind.BOOLEAN: pa.bool_(),
                 Kind.JSON: pa.string()}  # fmt: skip
        self._schema = pa.schema(
            [
                pa.field(columns[i].name, types[columns[i].kind], nullable=columns[i].nullable)
                for i in self._kept
            ]
        )
        self.directory = directory
        self._flushed_rows = 0
        self._open: dict[tuple[int, str | None], _Partition] = {}
        self._parts: dict[tuple[int, str | None], int] = {}
        self._day = -1
        self._day_name = ""
        # The symbol of the last row written, and its partition's rows.
        self._last_symbol: str | None = None
        self._last_rows: list[Row] = []

    @property
    def rows(self) -> int:
        """Rows written so far."""
        return self._flushed_rows + sum(len(p.rows) for p in self._open.values())

    def write(self, row: Row) -> None:
        # The hot path of a Parquet export (once per row of every table): the row is kept
        # whole, and turned into columns a batch at a time, in C (_flush); a run of rows of
        # one partition, the common case, skips the partition's lookup.
        day = row[self._time_at] // NS_PER_DAY
        symbol = None if self._symbol_at is None else row[self._symbol_at]
        if day == self._day and symbol == self._last_symbol:
            rows = self._last_rows
        else:
            if day != self._day:
                self._start_day(day)
            key = (day, symbol)
            partition = self._open.get(key)
            if partition is None:
                partition = self._new_partition(key)
            self._last_symbol = symbol
            rows = self._last_rows = partition.rows
        rows.append(row)
        if len(rows) >= BATCH_ROWS:
            self._flush(self._open[day, symbol])

    def _start_day(self, day: int) -> None:
        if day > self._day:
            # Time order: no row of an earlier day will come (if one does, it opens a new
            # part file of its partition).
            self._close_all()
        self._day = day
        self._day_name = (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()

    def _new_partition(self, key: tuple[int, str | None]) -> _Partition:
        if len(self._open) >= MAX_OPEN_PARTITIONS:
            self._close_all()
        directory = self.directory / f"date={self._day_name}"
        if self._symbol_at is not None:
            symbol = key[1]
            directory /= f"symbol={HIVE_NULL if symbol is None else symbol}"
        partition = _Partition(directory, self._parts.get(key, 0))
        self._open[key] = partition
        return partition

    def _flush(self, partition: _Partition) -> None:
        pa, _ = _pyarrow()
        if partition.writer is None:
            partition.directory.mkdir(parents=True, exist_ok=True)
            path = partition.directory / f"part-{partition.parts}.parquet"
            partition.writer = self._pq.ParquetWriter(path, self._schema)
            partition.parts += 1
        columns = list(zip(*partition.rows, strict=True))
        arrays = [
            pa.array(columns[index], type=field.type)
            for index, field in zip(self._kept, self._schema, strict=True)
        ]
        partition.writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))
        self._flushed_rows += len(partition.rows)
        # Cleared in place: the list may be the one the last row's partition holds.
        partition.rows.clear()

    def _close_all(self) -> None:
        for key, partition in self._open.items():
            if partition.rows:
                self._flush(partition)
            partition.writer.close()
            self._parts[key] = partition.parts
        self._open.clear()
        # Whoever closed them looks the next row's partition up (_start_day, _new_partition)
        # or writes no more (close), so the last partition's list is never used again.
        self._last_rows = []

    def close(self) -> None:
        self._close_all()


@contextmanager
def writing_dataset(path: Path, columns: tuple[Column, ...]) -> Iterator[DatasetWriter]:
    """A :class:`DatasetWriter` whose dataset becomes the directory ``path`` if the block
    succeeds, replacing a dataset (or a file) there, and vanishes if it fails. A directory
    at ``path`` that is not a dataset (it holds anything but ``date=`` partitions) is left
    alone: :class:`InputError`."""
    if path.is_dir() and any(not entry.name.startswith("date=") for entry in path.iterdir()):
        raise InputError(f"{path} is a directory that is not a Parquet dataset: not replaced")
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        # mkdtemp makes the directory private; a dataset is as readable as any the user makes.
        umask = os.umask(0)
        os.umask(umask)
        temporary.chmod(0o777 & ~umask)
        writer = DatasetWriter(temporary, columns)
        yield writer
        writer.close()
        _replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _replace(new: Path, path: Path) -> None:
    if path.is_dir():
        old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
        os.replace(path, old / "dataset")
        os.replace(new, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        if path.exists():
            path.unlink()
        os.replace(new, path)


def read_dataset(path: Path, columns: tuple[Column, ...]) -> list[Row]:
    """The rows of a dataset written by :class:`DatasetWriter`, as the table's tuples in
    column order (``date`` left out), partition by partition in the order of their paths,
    each partition's rows in the order written."""
    _, pq = _pyarrow()
    names = [column.name for column in columns]
    rows = []
    for file in sorted(path.glob("date=*/**/*.parquet"), key=_part_order):
        values = {"symbol": None}
        for part in file.relative_to(path).parts[:-1]:
            key, _, value = part.partition("=")
            values[key] = None if value == HIVE_NULL else value
        table = pq.read_table(file)
        expected = [name for name in names if name != _SYMBOL_COLUMN]
        if table.column_names != expected:
            raise InputError(f"{file}: columns {table.column_names}, expected {expected}")
        for record in table.to_pylist():
            rows.append(
                tuple(values[name] if name == _SYMBOL_COLUMN else record[name] for name in names)
            )
    return rows


def _part_order(file: Path) -> tuple[Any, ...]:
    # part-10 after part-9: by number, not by text.
    return (*file.parent.parts, int(file.stem.removeprefix("part-")))
