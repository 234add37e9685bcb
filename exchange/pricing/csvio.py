"""Researchers' CSV files in, valuations out: the batch mode's file adapters.

Formats (docs/valuation.md has every column):

- products: ``product_id,category,region,record_count,coverage_months,update_frequency,
  completeness,accuracy,timeliness,consistency,cost_basis``
- trades: ``trade_id,product_id,exclusivity,duration_months,scope,territory,price,quantity,
  traded_at``
- targets: ``product_id,exclusivity,duration_months,scope,territory,as_of`` and optionally
  ``annual_cash_flows`` (semicolon-separated, year 1 first), ``discount_rate``,
  ``attribution`` for the income approach.

Files are UTF-8 (a byte-order mark is allowed), comma-separated, with a header row naming the
columns in any order (case-insensitive). Blank lines are skipped. A value that cannot be read
raises :class:`CsvFileError` naming the file, the line (the header is line 1) and the column;
so does a trade or target of a product the products file does not describe.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from exchange.catalogue import Exclusivity, Scope, Territory, UpdateFrequency
from exchange.pricing.records import (
    MAX_DURATION_MONTHS,
    MAX_RECORD_COUNT,
    IncomeInputs,
    ProductRecord,
    TermsRecord,
    TradeRecord,
)
from exchange.pricing.report import ValuationReport

__all__ = [
    "PRODUCT_COLUMNS",
    "TARGET_COLUMNS",
    "TRADE_COLUMNS",
    "VALUATION_COLUMNS",
    "CsvFileError",
    "TargetRow",
    "parse_products",
    "parse_targets",
    "parse_trades",
    "read_products",
    "read_targets",
    "read_trades",
    "valuation_row",
]

PRODUCT_COLUMNS = (
    "product_id",
    "category",
    "region",
    "record_count",
    "coverage_months",
    "update_frequency",
    "completeness",
    "accuracy",
    "timeliness",
    "consistency",
    "cost_basis",
)
TRADE_COLUMNS = (
    "trade_id",
    "product_id",
    "exclusivity",
    "duration_months",
    "scope",
    "territory",
    "price",
    "quantity",
    "traded_at",
)
TARGET_REQUIRED_COLUMNS = (
    "product_id",
    "exclusivity",
    "duration_months",
    "scope",
    "territory",
    "as_of",
)
TARGET_COLUMNS = (*TARGET_REQUIRED_COLUMNS, "annual_cash_flows", "discount_rate", "attribution")
VALUATION_COLUMNS = (
    "product_id",
    "exclusivity",
    "duration_months",
    "scope",
    "territory",
    "as_of",
    "method",
    "value",
    "market_value",
    "low",
    "high",
    "expected_error_pct",
    "n_comparables",
    "cost_value",
    "income_value",
    "flags",
)
# Limits: rows per file and characters per identifier.
MAX_PRODUCT_ROWS = 1_000_000
MAX_TRADE_ROWS = 5_000_000
MAX_TARGET_ROWS = 100_000
MAX_ID_CHARS = 200
MAX_AMOUNT = 1e15

# Accepted spellings, case-insensitive, "-" and " " read as "_".
_FREQUENCIES = {
    "realtime": UpdateFrequency.REAL_TIME,
    "real_time": UpdateFrequency.REAL_TIME,
    "daily": UpdateFrequency.DAILY,
    "monthly": UpdateFrequency.MONTHLY,
    "static": UpdateFrequency.STATIC,
}
_EXCLUSIVITY = {
    "exclusive": Exclusivity.EXCLUSIVE,
    "non_exclusive": Exclusivity.NON_EXCLUSIVE,
    "nonexclusive": Exclusivity.NON_EXCLUSIVE,
}
_SCOPES = {scope.value: scope for scope in Scope}
_TERRITORIES = {
    "domestic": Territory.DOMESTIC,
    "cross_border": Territory.CROSS_BORDER,
    "crossborder": Territory.CROSS_BORDER,
}

E = TypeVar("E", bound=StrEnum)


class CsvFileError(Exception):
    """An input file that cannot be read: ``line`` is 1-based (the header is line 1) and
    ``column`` is None when the problem is not one value's (a missing column, say)."""

    def __init__(self, path: str, line: int, column: str | None, message: str) -> None:
        super().__init__(path, line, column, message)
        self.path = path
        self.line = line
        self.column = column
        self.message = message

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:"
        return (
            f"{where} column {self.column!r}: {self.message}"
            if self.column
            else (f"{where} {self.message}")
        )


@dataclass(frozen=True, slots=True)
class TargetRow:
    """A target as read: its line in the targets file, the product id and the rest."""

    line: int
    product_id: str
    terms: TermsRecord
    as_of: dt.date
    income: IncomeInputs | None


class _Row:
    """One data row with typed accessors whose errors name the file, line and column."""

    __slots__ = ("line", "path", "values")

    def __init__(self, path: str, line: int, values: dict[str, str]) -> None:
        self.path, self.line, self.values = path, line, values

    def fail(self, column: str, message: str) -> CsvFileError:
        return CsvFileError(self.path, self.line, column, message)

    def text(self, column: str) -> str:
        value = self.values.get(column, "").strip()
        if not value:
            raise self.fail(column, "is empty")
        if len(value) > MAX_ID_CHARS:
            raise self.fail(column, f"is longer than {MAX_ID_CHARS} characters")
        return value

    def optional(self, column: str) -> str:
        return self.values.get(column, "").strip()

    def integer(self, column: str, low: int, high: int) -> int:
        text = self.text(column)
        try:
            value = int(text)
        except ValueError:
            raise self.fail(column, f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise self.fail(column, f"{value} is not in {low}..{high}")
        return value

    def number(self, column: str, low: float, high: float, *, open_low: bool = False) -> float:
        text = self.text(column)
        try:
            value = float(text)
        except ValueError:
            raise self.fail(column, f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise self.fail(column, f"{text!r} is not a finite number")
        too_low = value <= low if open_low else value < low
        if too_low or value > high:
            bracket = "(" if open_low else "["
            raise self.fail(column, f"{text} is not in {bracket}{low:g}, {high:g}]")
        return value

    def choice(self, column: str, choices: Mapping[str, E]) -> E:
        text = self.text(column)
        key = text.lower().replace("-", "_").replace(" ", "_")
        if key not in choices:
            allowed = sorted({member.value for member in choices.values()})
            raise self.fail(column, f"{text!r} is not one of {', '.join(allowed)}")
        return choices[key]

    def date(self, column: str) -> dt.date:
        text = self.text(column)
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            return dt.datetime.fromisoformat(text).date()
        except ValueError:
            raise self.fail(column, f"{text!r} is not an ISO date (YYYY-MM-DD)") from None

    def terms(self) -> TermsRecord:
        return TermsRecord(
            exclusivity=self.choice("exclusivity", _EXCLUSIVITY),
            duration_months=self.integer("duration_months", 1, MAX_DURATION_MONTHS),
            scope=self.choice("scope", _SCOPES),
            territory=self.choice("territory", _TERRITORIES),
        )


def _rows(
    path: str,
    lines: Iterable[str],
    required: tuple[str, ...],
    known: tuple[str, ...],
    max_rows: int,
) -> Iterator[_Row]:
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
        if header is None:
            raise CsvFileError(path, 1, None, f"empty file: the header names {', '.join(required)}")
        names = [name.strip().lower() for name in header]
        for name in names:
            if name not in known:
                raise CsvFileError(
                    path, 1, name, f"unknown column; the columns are {', '.join(known)}"
                )
        for name in names:
            if names.count(name) > 1:
                raise CsvFileError(path, 1, name, "appears twice in the header")
        for name in required:
            if name not in names:
                raise CsvFileError(path, 1, name, "the header has no such column")
        count = 0
        for fields in reader:
            line = reader.line_num
            if not any(field.strip() for field in fields):
                continue
            count += 1
            if count > max_rows:
                raise CsvFileError(path, line, None, f"more than {max_rows} rows")
            if len(fields) != len(names):
                raise CsvFileError(
                    path, line, None, f"{len(fields)} values for {len(names)} columns"
                )
            yield _Row(path, line, dict(zip(names, fields, strict=True)))
    except csv.Error as error:
        raise CsvFileError(path, reader.line_num, None, f"not readable as CSV: {error}") from None


def parse_products(path: str, lines: Iterable[str]) -> dict[str, ProductRecord]:
    """Products by id, in file order."""
    products: dict[str, ProductRecord] = {}
    for row in _rows(path, lines, PRODUCT_COLUMNS, PRODUCT_COLUMNS, MAX_PRODUCT_ROWS):
        product_id = row.text("product_id")
        if product_id in products:
            raise row.fail("product_id", f"{product_id!r} appears twice")
        products[product_id] = ProductRecord(
            product_id=product_id,
            category=row.text("category"),
            region=row.text("region"),
            record_count=row.integer("record_count", 1, MAX_RECORD_COUNT),
            coverage_months=row.number("coverage_months", 0, 12_000, open_low=True),
            update_frequency=row.choice("update_frequency", _FREQUENCIES),
            completeness=row.number("completeness", 0, 1),
            accuracy=row.number("accuracy", 0, 1),
            timeliness=row.number("timeliness", 0, 1),
            consistency=row.number("consistency", 0, 1),
            cost_basis=row.number("cost_basis", 0, MAX_AMOUNT),
        )
    return products


def parse_trades(
    path: str, lines: Iterable[str], products: Mapping[str, ProductRecord]
) -> list[TradeRecord]:
    """Trades in file order; each must name a product of ``products``."""
    trades: list[TradeRecord] = []
    seen: set[str] = set()
    for row in _rows(path, lines, TRADE_COLUMNS, TRADE_COLUMNS, MAX_TRADE_ROWS):
        trade_id = row.text("trade_id")
        if trade_id in seen:
            raise row.fail("trade_id", f"{trade_id!r} appears twice")
        seen.add(trade_id)
        product_id = row.text("product_id")
        if product_id not in products:
            raise row.fail("product_id", f"{product_id!r} is not in the products file")
        trades.append(
            TradeRecord(
                trade_id=trade_id,
                product_id=product_id,
                terms=row.terms(),
                price=row.number("price", 0, MAX_AMOUNT, open_low=True),
                quantity=row.integer("quantity", 1, 10**12),
                traded_at=row.date("traded_at"),
            )
        )
    return trades


def parse_targets(
    path: str, lines: Iterable[str], products: Mapping[str, ProductRecord]
) -> list[TargetRow]:
    """Targets in file order; each must name a product of ``products``."""
    targets: list[TargetRow] = []
    for row in _rows(path, lines, TARGET_REQUIRED_COLUMNS, TARGET_COLUMNS, MAX_TARGET_ROWS):
        product_id = row.text("product_id")
        if product_id not in products:
            raise row.fail("product_id", f"{product_id!r} is not in the products file")
        terms = row.terms()
        as_of = row.date("as_of")
        income = None
        if row.optional("annual_cash_flows"):
            flows_text = row.optional("annual_cash_flows")
            try:
                flows = tuple(float(part) for part in flows_text.split(";"))
            except ValueError:
                raise row.fail(
                    "annual_cash_flows", f"{flows_text!r} is not numbers separated by ';'"
                ) from None
            income = IncomeInputs(
                annual_cash_flows=flows,
                discount_rate=row.number("discount_rate", -0.99, 10),
                attribution=row.number("attribution", 0, 1) if row.optional("attribution") else 1,
            )
            problem = income.problem()
            if problem is not None:
                raise row.fail("annual_cash_flows", problem)
        elif row.optional("discount_rate") or row.optional("attribution"):
            raise row.fail("annual_cash_flows", "is empty, but a discount rate is given")
        targets.append(TargetRow(row.line, product_id, terms, as_of, income))
    return targets


def _read(path: Path, parse: Callable[[str, Iterable[str]], object]):
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise CsvFileError(str(path), line, None, "is not UTF-8 text") from None
    return parse(str(path), io.StringIO(text, newline=""))


def read_products(path: Path) -> dict[str, ProductRecord]:
    return _read(path, parse_products)


def read_trades(path: Path, products: Mapping[str, ProductRecord]) -> list[TradeRecord]:
    return _read(path, lambda name, lines: parse_trades(name, lines, products))


def read_targets(path: Path, products: Mapping[str, ProductRecord]) -> list[TargetRow]:
    return _read(path, lambda name, lines: parse_targets(name, lines, products))


def _amount(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def valuation_row(report: ValuationReport) -> tuple[str, ...]:
    """A report as a row under ``VALUATION_COLUMNS``."""
    terms = report.terms
    return (
        report.product.product_id,
        terms.exclusivity.value,
        str(terms.duration_months),
        terms.scope.value,
        terms.territory.value,
        report.as_of.isoformat(),
        report.method,
        _amount(report.value),
        _amount(report.market_value),
        _amount(report.low),
        _amount(report.high),
        f"{report.expected_error_pct:.2f}",
        str(report.n_comparables),
        _amount(report.cost.value),
        _amount(None if report.income is None else report.income.value),
        str(len(report.flags)),
    )
