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
columns in any order (case-insensitive). Blank lines are skipped. Each row is validated by a
strict pydantic model of its file's columns, whose parsers read the text of each value. A
value that cannot be read raises :class:`CsvFileError` naming the file, the line (the header
is line 1) and the column; so does a trade or target of a product the products file does not
describe.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

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
R = TypeVar("R", bound="_Row")


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


class _Row(BaseModel):
    """One data row, its columns typed: each value is text that a column's parser turns into
    its type (an error raised there names the column); nothing else is coerced."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def _problem(message: str) -> PydanticCustomError:
    # The message travels in the context: a template would read the braces of a value.
    return PydanticCustomError("csv_value", "{message}", {"message": message})


def _text(value: str) -> str:
    text = value.strip()
    if not text:
        raise _problem("is empty")
    if len(text) > MAX_ID_CHARS:
        raise _problem(f"is longer than {MAX_ID_CHARS} characters")
    return text


def _whole(low: int, high: int) -> BeforeValidator:
    def parse(value: str) -> int:
        text = _text(value)
        try:
            number = int(text)
        except ValueError:
            raise _problem(f"{text!r} is not a whole number") from None
        if not low <= number <= high:
            raise _problem(f"{number} is not in {low}..{high}")
        return number

    return BeforeValidator(parse)


def _parse_number(low: float, high: float, open_low: bool, value: str) -> float:
    text = _text(value)
    try:
        number = float(text)
    except ValueError:
        raise _problem(f"{text!r} is not a number") from None
    if not math.isfinite(number):
        raise _problem(f"{text!r} is not a finite number")
    too_low = number <= low if open_low else number < low
    if too_low or number > high:
        bracket = "(" if open_low else "["
        raise _problem(f"{text} is not in {bracket}{low:g}, {high:g}]")
    return number


def _number(low: float, high: float, *, open_low: bool = False) -> BeforeValidator:
    return BeforeValidator(functools.partial(_parse_number, low, high, open_low))


def _optional_number(low: float, high: float) -> BeforeValidator:
    """An empty value is absent (None); any other is a number in ``[low, high]``."""
    return BeforeValidator(
        lambda value: _parse_number(low, high, False, value) if value.strip() else None
    )


def _choice(choices: Mapping[str, E]) -> BeforeValidator:
    def parse(value: str) -> E:
        text = _text(value)
        key = text.lower().replace("-", "_").replace(" ", "_")
        if key not in choices:
            allowed = sorted({member.value for member in choices.values()})
            raise _problem(f"{text!r} is not one of {', '.join(allowed)}")
        return choices[key]

    return BeforeValidator(parse)


def _date(value: str) -> dt.date:
    text = _text(value)
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text).date()
    except ValueError:
        raise _problem(f"{text!r} is not an ISO date (YYYY-MM-DD)") from None


def _cash_flows(value: str) -> tuple[float, ...] | None:
    text = value.strip()
    if not text:
        return None
    try:
        return tuple(float(part) for part in text.split(";"))
    except ValueError:
        raise _problem(f"{text!r} is not numbers separated by ';'") from None


Text = Annotated[str, BeforeValidator(_text)]
Date = Annotated[dt.date, BeforeValidator(_date)]
Share = Annotated[float, _number(0, 1)]


class _ProductRow(_Row):
    product_id: Text
    category: Text
    region: Text
    record_count: Annotated[int, _whole(1, MAX_RECORD_COUNT)]
    coverage_months: Annotated[float, _number(0, 12_000, open_low=True)]
    update_frequency: Annotated[UpdateFrequency, _choice(_FREQUENCIES)]
    completeness: Share
    accuracy: Share
    timeliness: Share
    consistency: Share
    cost_basis: Annotated[float, _number(0, MAX_AMOUNT)]


ExclusivityColumn = Annotated[Exclusivity, _choice(_EXCLUSIVITY)]
DurationColumn = Annotated[int, _whole(1, MAX_DURATION_MONTHS)]
ScopeColumn = Annotated[Scope, _choice(_SCOPES)]
TerritoryColumn = Annotated[Territory, _choice(_TERRITORIES)]


class _TradeRow(_Row):
    trade_id: Text
    product_id: Text
    exclusivity: ExclusivityColumn
    duration_months: DurationColumn
    scope: ScopeColumn
    territory: TerritoryColumn
    price: Annotated[float, _number(0, MAX_AMOUNT, open_low=True)]
    quantity: Annotated[int, _whole(1, 10**12)]
    traded_at: Date


class _TargetRow(_Row):
    product_id: Text
    exclusivity: ExclusivityColumn
    duration_months: DurationColumn
    scope: ScopeColumn
    territory: TerritoryColumn
    as_of: Date
    annual_cash_flows: Annotated[tuple[float, ...] | None, BeforeValidator(_cash_flows)] = None
    discount_rate: Annotated[float | None, _optional_number(-0.99, 10)] = None
    attribution: Annotated[float | None, _optional_number(0, 1)] = None


def _terms(row: _TradeRow | _TargetRow) -> TermsRecord:
    return TermsRecord(row.exclusivity, row.duration_months, row.scope, row.territory)


def _validated(model: type[R], path: str, line: int, values: dict[str, str]) -> R:
    """``values`` as a ``model`` row; the first problem raises :class:`CsvFileError` naming
    its column."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        column = str(first["loc"][0]) if first["loc"] else None
        message = str(first["ctx"]["message"]) if first["type"] == "csv_value" else first["msg"]
        raise CsvFileError(path, line, column, message) from None


def _rows(
    path: str,
    lines: Iterable[str],
    required: tuple[str, ...],
    known: tuple[str, ...],
    max_rows: int,
) -> Iterator[tuple[int, dict[str, str]]]:
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
            yield line, dict(zip(names, fields, strict=True))
    except csv.Error as error:
        raise CsvFileError(path, reader.line_num, None, f"not readable as CSV: {error}") from None


def parse_products(path: str, lines: Iterable[str]) -> dict[str, ProductRecord]:
    """Products by id, in file order."""
    products: dict[str, ProductRecord] = {}
    for line, values in _rows(path, lines, PRODUCT_COLUMNS, PRODUCT_COLUMNS, MAX_PRODUCT_ROWS):
        row = _validated(_ProductRow, path, line, values)
        if row.product_id in products:
            raise CsvFileError(path, line, "product_id", f"{row.product_id!r} appears twice")
        products[row.product_id] = ProductRecord(**row.model_dump())
    return products


def parse_trades(
    path: str, lines: Iterable[str], products: Mapping[str, ProductRecord]
) -> list[TradeRecord]:
    """Trades in file order; each must name a product of ``products``."""
    trades: list[TradeRecord] = []
    seen: set[str] = set()
    for line, values in _rows(path, lines, TRADE_COLUMNS, TRADE_COLUMNS, MAX_TRADE_ROWS):
        row = _validated(_TradeRow, path, line, values)
        if row.trade_id in seen:
            raise CsvFileError(path, line, "trade_id", f"{row.trade_id!r} appears twice")
        seen.add(row.trade_id)
        _check_product(path, line, row.product_id, products)
        trades.append(
            TradeRecord(
                trade_id=row.trade_id,
                product_id=row.product_id,
                terms=_terms(row),
                price=row.price,
                quantity=row.quantity,
                traded_at=row.traded_at,
            )
        )
    return trades


def parse_targets(
    path: str, lines: Iterable[str], products: Mapping[str, ProductRecord]
) -> list[TargetRow]:
    """Targets in file order; each must name a product of ``products``."""
    targets: list[TargetRow] = []
    rows = _rows(path, lines, TARGET_REQUIRED_COLUMNS, TARGET_COLUMNS, MAX_TARGET_ROWS)
    for line, values in rows:
        row = _validated(_TargetRow, path, line, values)
        _check_product(path, line, row.product_id, products)
        income = None
        if row.annual_cash_flows is not None:
            if row.discount_rate is None:
                raise CsvFileError(path, line, "discount_rate", "is empty")
            income = IncomeInputs(
                annual_cash_flows=row.annual_cash_flows,
                discount_rate=row.discount_rate,
                attribution=1 if row.attribution is None else row.attribution,
            )
            problem = income.problem()
            if problem is not None:
                raise CsvFileError(path, line, "annual_cash_flows", problem)
        elif row.discount_rate is not None or row.attribution is not None:
            raise CsvFileError(
                path, line, "annual_cash_flows", "is empty, but a discount rate is given"
            )
        targets.append(TargetRow(line, row.product_id, _terms(row), row.as_of, income))
    return targets


def _check_product(path: str, line: int, product_id: str, products: Mapping[str, object]) -> None:
    if product_id not in products:
        raise CsvFileError(path, line, "product_id", f"{product_id!r} is not in the products file")


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
