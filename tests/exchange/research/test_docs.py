"""docs/research.md documents every column of every export, in order, with its type."""

from __future__ import annotations

import re
from pathlib import Path

from exchange.research import TABLES

DOC = Path(__file__).resolve().parents[3] / "docs" / "research.md"


def test_every_column_of_every_table_is_documented_in_order() -> None:
    text = DOC.read_text(encoding="utf-8")
    for table, columns in TABLES.items():
        section = text.split(f"\n### {table}\n", 1)[1].split("\n#", 1)[0]
        rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", section, flags=re.MULTILINE)
        assert [name for name, _ in rows] == [column.name for column in columns], table
        for (_, kind), column in zip(rows, columns, strict=True):
            expected = column.kind.value + (" or empty" if column.nullable else "")
            assert kind.lower() == expected, (table, column.name)
