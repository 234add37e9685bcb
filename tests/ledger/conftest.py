"""Fixtures: a migrated ledger on each database of ``database_url`` (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy

from ledger.database import create_engine
from ledger.store import Ledger


@pytest.fixture
def engine(database_url: str) -> Iterator[sqlalchemy.Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def ledger(engine: sqlalchemy.Engine) -> Ledger:
    """A migrated, empty ledger."""
    return Ledger.open(engine)


@pytest.fixture
def dialect(engine: sqlalchemy.Engine) -> str:
    return engine.dialect.name
