"""Table files: CSV, JSON lines and Parquet writers for the research tables, and a reader.

Every format holds the same values (see ``docs/research.md``):

- **CSV**: a header row of the column names, then one row per record, UTF-8, ``\\n`` line
  ends. Integers in decimal; booleans ``true``/``false``; JSON columns as their canonical
  JSON text; an absent value (null) is an empty field.
- **JSON lines**: one JSON object per record with the columns as keys, in column order;
  JSON columns are embedded as JSON values (objects, lists), absent values are ``null``.
- **Parquet**: a dataset, a directory partitioned by date and symbol (``dataset.py``), one
  column per table column: ``int64``, ``string`` (text and JSON text), ``bool``; absent
  values are nulls. Needs ``pyarrow`` (``pip install 'dataex[research]'``).

:func:`read_table` reads any of them back into the same Python values, so an export can be
checked against its source.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

import orjson

from exchange.research.dataset import DatasetWriter, read_dataset, writing_dataset
from exchange.research.journal import InputError
from exchange.research.tables import Column, Kind, Row
from exchange.whole_files import replacing
from ledger.canonical import CanonicalJSONError, canonical_json

__all__ = [
    "Format",
    "MissingDependency",
    "TableWriter",
    "read_table",
    "require",
    "write_table",
]


class Format(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"


class MissingDependency(ImportError):
    """An optional package that this feature needs is not installed."""


def require(module: str, feature: str) -> Any:
    """Import ``module`` (pandas, pyarrow), or say how to install it."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise MissingDependency(
            f"{feature} needs {module.split('.')[0]}, which is not installed: "
            "pip install 'dataex[research]'"
        ) from None


class TableWriter:
    """Writes rows of one table as CSV or JSON lines to an open file (see :func:`write_table`)."""

    def __init__(self, file: IO[bytes], format: Format, columns: tuple[Column, ...]) -> None:
        assert format is not Format.PARQUET, "Parquet is a dataset: dataset.DatasetWriter"
        self.columns = columns
        self.format = format
        self.rows = 0
        self._file = file
        self._closed = False
        self._names = [column.name for column in columns]
        self._json_at = [i for i, column in enumerate(columns) if column.kind is Kind.JSON]
        self._boolean_at = [i for i, c in enumerate(columns) if c.kind is Kind.BOOLEAN]
        # A row's booleans in one call, and what they are when none is set.
        self._booleans = itemgetter(*self._boolean_at) if self._boolean_at else None
        self._unset = None if len(self._boolean_at) == 1 else (None,) * len(self._boolean_at)
        if format is Format.CSV:
            self._text = io.TextIOWrapper(file, encoding="utf-8", newline="", write_through=True)
            self._csv = csv.writer(self._text, lineterminator="\n")
            self._csv.writerow(self._names)

    def write(self, row: Row) -> None:
        self.rows += 1
        if self.format is Format.CSV:
            # The csv module writes None as an empty field and integers in decimal already;
            # only booleans need spelling (true/false, not True/False), and a row is copied
            # only when it holds one (an event's boolean is empty but in one kind of row).
            for index in self._boolean_at:
                if row[index] is not None:
                    row = self._spelled(row)
                    break
            self._csv.writerow(row)
        else:
            values = list(row)
            for index in self._json_at:
                if values[index] is not None:
                    values[index] = orjson.Fragment(values[index])
            self._file.write(
                orjson.dumps(dict(zip(self._names, values, strict=True)),
                             option=orjson.OPT_APPEND_NEWLINE)
            )  # fmt: skip

    def write_rows(self, rows: list[Row]) -> None:
        """Write several rows (as :meth:`write` each): as CSV, in one call of the csv module
        (15% less time than a call a row)."""
        if self.format is not Format.CSV:
            for row in rows:
                self.write(row)
            return
        self.rows += len(rows)
        booleans = self._booleans
        if booleans is not None:
            unset, spelled = self._unset, self._spelled
            rows = [row if booleans(row) == unset else spelled(row) for row in rows]
        self._csv.writerows(rows)

    def _spelled(self, row: Row) -> Row:
        values = list(row)
        for index in self._boolean_at:
            value = values[index]
            if value is not None:
                values[index] = "true" if value else "false"
        return tuple(values)

    def close(self) -> None:
        """Write what waits (again: nothing more to do)."""
        if self.format is Format.CSV and not self._closed:
            self._text.flush()
            self._text.detach()
        self._closed = True


@contextmanager
def write_table(
    path: Path | None, format: Format, columns: tuple[Column, ...]
) -> Iterator[TableWriter | DatasetWriter]:
    """A writer of ``columns`` rows to ``path`` (None: standard output, not for Parquet);
    Parquet is a dataset, the directory ``path`` (``dataset.writing_dataset``).

    The file appears only when the block succeeds, so a failed export leaves nothing behind.
    """
    if format is Format.PARQUET:
        if path is None:
            raise InputError("Parquet cannot go to standard output: give --out DIR")
        with writing_dataset(path, columns) as dataset:
            yield dataset
        return
    if path is None:
        writer = TableWriter(sys.stdout.buffer, format, columns)
        yield writer
        writer.close()
        sys.stdout.buffer.flush()
        return
    with replacing(path) as file:
        writer = TableWriter(file, format, columns)
        yield writer
        writer.close()


# -- reading back ----------------------------------------------------------------------------


def read_table(path: Path, format: Format, columns: tuple[Column, ...]) -> list[Row]:
    """The rows of a table file written by :func:`write_table`, as the same Python values
    (JSON columns as canonical JSON text). Raises :class:`InputError` naming the row and
    column of a value that does not fit."""
    if format is Format.PARQUET:
        return read_dataset(path, columns)
    rows = []
    with path.open("rb") as file:
        if format is Format.CSV:
            reader = csv.reader(io.TextIOWrapper(file, encoding="utf-8", newline=""))
            header = next(reader, None)
            if header != [column.name for column in columns]:
                raise InputError(f"{path}:1: header {header}, expected the table's columns")
            for number, fields in enumerate(reader, start=2):
                rows.append(_csv_row(fields, columns, f"{path}:{number}"))
        else:
            for number, line in enumerate(file, start=1):
                rows.append(_jsonl_row(line, columns, f"{path}:{number}"))
    return rows


def _csv_row(fields: list[str], columns: tuple[Column, ...], where: str) -> Row:
    if len(fields) != len(columns):
        raise InputError(f"{where}: {len(fields)} fields, expected {len(columns)}")
    values = []
    for number, (text, column) in enumerate(zip(fields, columns, strict=True), start=1):
        values.append(_value(text, column, f"{where}: column {number} ({column.name})"))
    return tuple(values)


def _value(text: str, column: Column, where: str) -> Any:
    if text == "" and column.nullable:
        return None
    if column.kind is Kind.INTEGER:
        try:
            return int(text)
        except ValueError:
            raise InputError(f"{where}: {text!r} is not an integer") from None
    if column.kind is Kind.BOOLEAN:
        if text not in ("true", "false"):
            raise InputError(f"{where}: {text!r} is not true or false")
        return text == "true"
    if column.kind is Kind.JSON:
        return _canonical(text, where)
    return text


def _canonical(text: str | bytes, where: str) -> str:
    try:
        return canonical_json(orjson.loads(text)).decode()
    except (orjson.JSONDecodeError, CanonicalJSONError) as error:
        raise InputError(f"{where}: not canonical JSON: {error}") from None


def _jsonl_row(line: bytes, columns: tuple[Column, ...], where: str) -> Row:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise InputError(f"{where}: column {error.colno}: not JSON: {error.msg}") from None
    if not isinstance(value, dict) or list(value) != [column.name for column in columns]:
        raise InputError(f"{where}: expected an object with the table's columns in order")
    values = []
    for column in columns:
        item = value[column.name]
        if item is not None and column.kind is Kind.JSON:
            item = _canonical(orjson.dumps(item), f"{where}: {column.name}")
        values.append(item)
    return tuple(values)
