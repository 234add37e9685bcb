"""Table files: rows written together are the rows written one at a time, in every format."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.research import Format
from exchange.research.formats import TableWriter
from exchange.research.tables import Column, Kind, Row

# One boolean column, or two (a row's booleans are looked up together), beside text that
# needs quoting.
ONE_BOOLEAN = (Column("seq", Kind.INTEGER), Column("kept", Kind.BOOLEAN, nullable=True),
               Column("note", Kind.TEXT, nullable=True))  # fmt: skip
TWO_BOOLEANS = (*ONE_BOOLEAN, Column("post_only", Kind.BOOLEAN, nullable=True))
WITHOUT_BOOLEAN = (Column("seq", Kind.INTEGER), Column("note", Kind.TEXT, nullable=True))

_VALUES = {
    Kind.INTEGER: st.integers(-(2**63), 2**63 - 1),
    Kind.BOOLEAN: st.none() | st.booleans(),
    Kind.TEXT: st.none() | st.text(alphabet='ab,"\n x', max_size=6),
}


def rows_of(columns: tuple[Column, ...]) -> st.SearchStrategy[list[Row]]:
    return st.lists(st.tuples(*(_VALUES[column.kind] for column in columns)), max_size=30)


def written(columns: tuple[Column, ...], format: Format, batches: list[list[Row]]) -> bytes:
    file = io.BytesIO()
    writer = TableWriter(file, format, columns)
    for batch in batches:
        writer.write_rows(batch)
    writer.close()
    assert writer.rows == sum(map(len, batches))
    return file.getvalue()


@pytest.mark.parametrize("format", [Format.CSV, Format.JSONL])
@pytest.mark.parametrize("columns", [ONE_BOOLEAN, TWO_BOOLEANS, WITHOUT_BOOLEAN],
                         ids=["one boolean", "two booleans", "no boolean"])  # fmt: skip
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_rows_written_together_are_the_rows_written_one_at_a_time(
    columns: tuple[Column, ...], format: Format, data: st.DataObject
) -> None:
    rows = data.draw(rows_of(columns))
    cut = data.draw(st.integers(0, len(rows)))
    one_at_a_time = io.BytesIO()
    writer = TableWriter(one_at_a_time, format, columns)
    for row in rows:
        writer.write(row)
    writer.close()
    assert written(columns, format, [rows[:cut], rows[cut:]]) == one_at_a_time.getvalue()
