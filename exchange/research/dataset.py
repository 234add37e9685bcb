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
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy

from exchange.research.journal import InputError
from exchange.research.tables import Column, Kind, Row
from exchange.whole_files import temporary_prefix, user_mode

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
# Rows waiting as Python tuples, whatever their partitions, before they are turned into Arrow
# data: few enough that they are still in the processor's cache when converted.
CONVERT_ROWS = 8_192
# Row groups handed to the encoding thread and not yet written, at most: the rows building
# wait beyond this (a row group holds up to BATCH_ROWS rows as Arrow data).
MAX_ENCODING = 4
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
    """One partition's rows not yet written (Arrow batches), its open file, and its part
    files so far."""

    __slots__ = ("batches", "directory", "parts", "rows", "writer")

    def __init__(self, directory: Path, parts: int) -> None:
        self.directory = directory
        self.batches: list[Any] = []
        self.rows = 0
        self.writer: Any = None
        self.parts = parts


class DatasetWriter:
    """Writes rows of one table (``columns``) as a Parquet dataset in ``directory``, which
    must exist and be empty. :func:`writing_dataset` makes it appear whole or not at all.

    Rows wait as Python tuples only until :data:`CONVERT_ROWS` of them have come, whatever
    their partitions: the batch is then turned into Arrow columns at once (in C, the whole
    struct of each row in one conversion) and split into its partitions by Arrow and numpy,
    so that no Python code runs per row but the ``append`` in :meth:`write`. Each partition's
    share waits, as Arrow data, until it has :data:`BATCH_ROWS` rows to write as a row group.
    """

    def __init__(self, directory: Path, columns: tuple[Column, ...]) -> None:
        pa, self._pq = _pyarrow()
        self._pa = pa
        names = [column.name for column in columns]
        time_name = next((name for name in _TIME_COLUMNS if name in names), None)
        assert time_name is not None, f"a table without a time column: {names}"
        self._time_at = names.index(time_name)
        self._symbol_at = names.index(_SYMBOL_COLUMN) if _SYMBOL_COLUMN in names else None
        self._kept = [i for i in range(len(columns)) if i != self._symbol_at]
        types = {Kind.INTEGER: pa.int64(), Kind.TEXT: pa.string(), Kind.BOOLEAN: pa.bool_(),
                 Kind.JSON: pa.string()}  # fmt: skip
        fields = [pa.field(c.name, types[c.kind], nullable=c.nullable) for c in columns]
        # A row as one struct value: pyarrow converts a list of tuples to a struct array
        # in one pass, about twice as fast as transposing the rows into columns in Python
        # and converting each (docs/benchmarks.md, "Export").
        self._row_type = pa.struct(fields)
        self._schema = pa.schema([fields[i] for i in self._kept])
        self.directory = directory
        self._pending: list[Row] = []
        self._partitioned_rows = 0
        self._open: dict[tuple[int, str | None], _Partition] = {}
        self._parts: dict[tuple[int, str | None], int] = {}
        self._day = -1
        self._day_name = ""
        self._encoder: ThreadPoolExecutor | None = None
        self._encoding: deque[Future[None]] = deque()

    @property
    def rows(self) -> int:
        """Rows written so far."""
        return self._partitioned_rows + len(self._pending)

    def write(self, row: Row) -> None:
        # The hot path of a Parquet export, once per row of every table.
        pending = self._pending
        pending.append(row)
        if len(pending) >= CONVERT_ROWS:
            self._partition_pending()

    def write_rows(self, rows: list[Row]) -> None:
        """Write several rows (as :meth:`write` each)."""
        pending = self._pending
        pending += rows
        if len(pending) >= CONVERT_ROWS:
            self._partition_pending()

    def _partition_pending(self) -> None:
        """Turn the waiting rows into Arrow columns and hand each partition its rows, in
        the order they came."""
        pa = self._pa
        rows, self._pending = self._pending, []
        batch = pa.RecordBatch.from_struct_array(pa.array(rows, type=self._row_type))
        del rows  # the tuples are freed here, not when the next batch replaces them
        self._partitioned_rows += batch.num_rows
        days = batch.column(self._time_at).to_numpy() // NS_PER_DAY
        first_day = int(days.min())
        if self._symbol_at is None:
            symbols: list[str | None] = [None]
            keys = days - first_day
        else:
            encoded = batch.column(self._symbol_at).dictionary_encode()
            symbols = [*encoded.dictionary.to_pylist(), None]  # a null symbol: the last
            indices = encoded.indices.fill_null(len(symbols) - 1).to_numpy()
            keys = (days - first_day) * len(symbols) + indices
        kept = batch.select(self._kept)
        width = len(symbols)
        if keys.min() == keys.max():  # one partition, the common case: no reordering
            groups: Iterator[tuple[int, Any]] = iter([(int(keys[0]), kept)])
        else:
            # A stable sort keeps each partition's rows in the order they came; the
            # partitions come out by day, then symbol.
            order = numpy.argsort(keys, kind="stable")
            sorted_keys = keys[order]
            in_order = kept.take(pa.array(order))  # one copy; each partition a slice of it
            starts = [0, *(numpy.flatnonzero(numpy.diff(sorted_keys)) + 1).tolist()]
            groups = (
                (int(sorted_keys[start]), in_order.slice(start, end - start))
                for start, end in zip(starts, [*starts[1:], len(order)], strict=True)
            )
        for key, rows_of_partition in groups:
            self._append(first_day + key // width, symbols[key % width], rows_of_partition)

    def _append(self, day: int, symbol: str | None, batch: Any) -> None:
        if day != self._day:
            self._start_day(day)
        key = (day, symbol)
        partition = self._open.get(key)
        if partition is None:
            partition = self._new_partition(key)
        partition.batches.append(batch)
        partition.rows += batch.num_rows
        if partition.rows >= BATCH_ROWS:
            self._flush(partition)

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
        """Write a partition's waiting rows as one row group."""
        if partition.writer is None:
            partition.directory.mkdir(parents=True, exist_ok=True)
            path = partition.directory / f"part-{partition.parts}.parquet"
            partition.writer = self._pq.ParquetWriter(path, self._schema)
            partition.parts += 1
        table = self._pa.Table.from_batches(partition.batches, schema=self._schema)
        self._encode(partition.writer.write_table, table)
        partition.batches.clear()
        partition.rows = 0

    def _encode(self, work: Callable[..., None], *args: Any) -> None:
        """Run ``work`` (a row group's encoding and writing, or a file's closing) on the
        encoding thread: Parquet's encoding and compression run in C without the GIL, so
        they overlap with the rows this thread goes on building. A writer's files are
        written in the order their work was handed over (one thread); at most
        :data:`MAX_ENCODING` row groups wait, so memory stays bounded."""
        if self._encoder is None:
            self._encoder = ThreadPoolExecutor(1, thread_name_prefix="dataex-parquet")
        encoding = self._encoding
        encoding.append(self._encoder.submit(work, *args))
        while len(encoding) > MAX_ENCODING or (encoding and encoding[0].done()):
            encoding.popleft().result()  # raises the work's error here

    def _close_all(self) -> None:
        for key, partition in self._open.items():
            if partition.rows:
                self._flush(partition)
            self._encode(partition.writer.close)
            self._parts[key] = partition.parts
        self._open.clear()

    def finish(self) -> None:
        """Hand what waits, and the closing of every file, to the encoding thread, without
        waiting for it: an export finishes all its datasets before it closes any, so that
        their last row groups are encoded side by side, not one dataset after another."""
        if self._pending:
            self._partition_pending()
        self._close_all()

    def close(self) -> None:
        """Write what waits, close every file, and wait until all of it is written (again:
        nothing more to do)."""
        self.finish()
        self._finish_encoding()

    def abandon(self) -> None:
        """Stop writing (the dataset is being thrown away): wait for the work in hand, so
        that no file is written after this returns, and drop its errors."""
        for work in self._encoding:
            work.cancel()
        with suppress(Exception):
            self._finish_encoding()

    def _finish_encoding(self) -> None:
        try:
            while self._encoding:
                self._encoding.popleft().result()
        finally:
            if self._encoder is not None:
                self._encoder.shutdown(wait=True, cancel_futures=True)
                self._encoder = None


@contextmanager
def writing_dataset(path: Path, columns: tuple[Column, ...]) -> Iterator[DatasetWriter]:
    """A :class:`DatasetWriter` whose dataset becomes the directory ``path`` if the block
    succeeds, replacing a dataset (or a file) there, and vanishes if it fails. A directory
    at ``path`` that is not a dataset (it holds anything but ``date=`` partitions) is left
    alone: :class:`InputError`."""
    if path.is_dir() and any(not entry.name.startswith("date=") for entry in path.iterdir()):
        raise InputError(f"{path} is a directory that is not a Parquet dataset: not replaced")
    temporary = Path(
        tempfile.mkdtemp(dir=path.parent, prefix=temporary_prefix(path), suffix=".tmp")
    )
    writer = None
    try:
        # mkdtemp makes the directory private; a dataset is as readable as any the user makes.
        temporary.chmod(user_mode(0o777))
        writer = DatasetWriter(temporary, columns)
        yield writer
        writer.close()
        _replace(temporary, path)
    except BaseException:
        if writer is not None:
            writer.abandon()  # its thread writes nothing more into what is removed here
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
