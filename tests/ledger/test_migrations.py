"""The migrations: shipped inside the ``ledger`` package, runnable from anywhere, and in step
with the models."""

from __future__ import annotations

from pathlib import Path

import pytest
import setuptools
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from ledger.database import dispose_engines
from ledger.models import BalanceRow, EntryRow, JournalRow, PostingRow, SnapshotRow
from ledger.schema import MIGRATIONS_DIR, migrate
from ledger.store import Ledger

ROOT = Path(__file__).resolve().parents[2]


def test_migration_scripts_are_in_packages_that_a_wheel_includes() -> None:
    packages = setuptools.find_packages(where=str(ROOT), include=["ledger*"])
    assert {"ledger.migrations", "ledger.migrations.versions"} <= set(packages)
    assert (MIGRATIONS_DIR / "versions" / "0001_ledger_tables.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()


def test_migrate_runs_from_another_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    try:
        migrate(url)
        assert Ledger.open(url).size() == 0
    finally:
        dispose_engines()


def test_migrated_schema_matches_the_models(ledger: Ledger) -> None:
    metadata = MetaData()
    for model in (JournalRow, EntryRow, PostingRow, BalanceRow, SnapshotRow):
        model.__table__.to_metadata(metadata)
    with ledger.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": "ledger_alembic_version"}
        )
        differences = [
            d
            for d in compare_metadata(context, metadata)
            if not (d[0] == "remove_table" and d[1].name == "ledger_alembic_version")
        ]
    assert differences == []
