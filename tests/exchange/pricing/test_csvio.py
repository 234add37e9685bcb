"""The valuation CSV reader: values are typed by column, and errors name file, line and column."""

from __future__ import annotations

import pytest

from exchange.pricing.csvio import CsvFileError, parse_products, parse_targets

PRODUCTS = [
    "product_id,category,region,record_count,coverage_months,update_frequency,"
    "completeness,accuracy,timeliness,consistency,cost_basis",
    "P1,energy,east,1000,12,daily,0.9,0.9,0.9,0.9,100",
]
TARGETS = "product_id,exclusivity,duration_months,scope,territory,as_of,annual_cash_flows"


def _error(read, *args) -> str:
    with pytest.raises(CsvFileError) as caught:
        read(*args)
    return str(caught.value)


def test_a_number_is_not_read_from_a_whole_number_column():
    row = "P2,energy,east,1000.0,12,daily,0.9,0.9,0.9,0.9,100"
    message = _error(parse_products, "p.csv", [*PRODUCTS, row])
    assert message == "p.csv:3: column 'record_count': '1000.0' is not a whole number"


def test_spellings_of_a_choice_are_read_as_one_member():
    row = "P2,energy,east,1000,12,Real-Time,0.9,0.9,0.9,0.9,100"
    products = parse_products("p.csv", [*PRODUCTS, row])
    assert products["P2"].update_frequency == "real_time"


def test_cash_flows_without_a_discount_rate_name_the_missing_column():
    products = parse_products("p.csv", PRODUCTS)
    lines = [TARGETS, "P1,exclusive,12,internal,domestic,2026-06-30,100;120"]
    message = _error(parse_targets, "g.csv", lines, products)
    assert message == "g.csv:2: column 'discount_rate': is empty"


def test_an_unknown_column_is_named_on_the_header_line():
    lines = [TARGETS + ",colour", "P1,exclusive,12,internal,domestic,2026-06-30,,red"]
    message = _error(parse_targets, "g.csv", lines, parse_products("p.csv", PRODUCTS))
    assert message.startswith("g.csv:1: column 'colour': unknown column")
