"""The layers stay apart: the state machine and the ledger's vocabulary load no database code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATABASE_MODULES = ("sqlalchemy", "sqlmodel", "alembic", "psycopg")


@pytest.mark.parametrize(
    "module", ["ledger", "exchange.service", "exchange.settlement", "exchange.risk"]
)
def test_the_pure_layers_import_no_database_code(module: str) -> None:
    probe = (
        f"import sys, {module}; "
        f"print(','.join(m for m in {DATABASE_MODULES!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "", f"importing {module} loads {loaded}"
