"""The research tables as pandas DataFrames, for notebooks.

>>> from exchange.research import frames                    # doctest: +SKIP
>>> tables = frames("sqlite:///dataex.db", ["trades", "book"], end="2026-11-28T12:00:00Z")
>>> tables["trades"].groupby("symbol").quantity_units.sum()

The same rows as ``dataex export`` writes, from one replay of the journal (checked against the
recorded settlement, as the export is). pandas is imported only when called; it comes with
the ``research`` extra: ``pip install 'dataex[research]'``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from exchange.research.export import What, collect
from exchange.research.formats import require
from exchange.research.journal import InputError
from exchange.research.tables import TABLES, Column, Kind, Row, Window
from exchange.research.times import parse_time
from ledger.database import database_url
from ledger.store import Ledger

__all__ = ["frames", "to_ns"]

Moment = str | int | datetime | None


def to_ns(moment: Moment) -> int | None:
    """ns since the epoch of an ISO 8601 string, a ``datetime`` (naive: UTC) or ns."""
    if moment is None or type(moment) is int:
        return moment
    if isinstance(moment, datetime):
        return parse_time(moment.isoformat())
    if isinstance(moment, str):
        return parse_time(moment)
    raise TypeError(f"a time is ISO 8601 text, a datetime or ns since the epoch, not {moment!r}")


def frames(
    database: str | Ledger | None = None,
    what: Iterable[str] = tuple(What),
    *,
    start: Moment = None,
    end: Moment = None,
    symbol: str | None = None,
) -> dict[str, Any]:
    """``{table name: DataFrame}`` for each table in ``what`` (default: all six).

    ``database`` is a URL (default ``$DATAEX_DATABASE_URL``, else ``sqlite:///dataex.db``) or
    an open :class:`~ledger.Ledger`. ``start``/``end`` (inclusive) and ``symbol`` narrow the
    rows as ``--from``/``--to``/``--symbol`` do for ``dataex export``. Raises
    :class:`~exchange.research.formats.MissingDependency` without pandas, and
    :class:`~exchange.research.export.ExportError` if the journal does not replay.
    """
    pd = require("pandas", "exchange.research.frames")
    try:
        tables = [What(name) for name in what]
    except ValueError:
        choices = ", ".join(What)
        raise InputError(f"tables are some of: {choices}; got {list(what)}") from None
    ledger = database if isinstance(database, Ledger) else Ledger.open(database_url(database))
    window = Window(to_ns(start), to_ns(end), symbol)
    rows: dict[What, list[Row]] = {table: [] for table in tables}
    collect(ledger, {table: rows[table].append for table in tables}, window)
    return {str(table): _frame(pd, TABLES[table], rows[table]) for table in tables}


_DTYPES = {
    (Kind.INTEGER, False): "int64",
    (Kind.INTEGER, True): "Int64",
    (Kind.BOOLEAN, False): "bool",
    (Kind.BOOLEAN, True): "boolean",
    (Kind.TEXT, False): "string",
    (Kind.TEXT, True): "string",
    (Kind.JSON, False): "string",
    (Kind.JSON, True): "string",
}


def _frame(pd: Any, columns: tuple[Column, ...], rows: list[Row]) -> Any:
    values = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    return pd.DataFrame(
        {
            column.name: pd.array(list(data), dtype=_DTYPES[column.kind, column.nullable])
            for column, data in zip(columns, values, strict=True)
        }
    )
