"""Suite-wide test settings, and the database every storage test runs against.

Storage tests run on SQLite, and on PostgreSQL when ``DATAEX_TEST_POSTGRES_URL`` is set. Each
test gets a fresh database (a file, or a schema of its own) that is removed afterwards, so the
server is left as it was found. A PostgreSQL URL that is set but unreachable makes the tests
error, never skip.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from hypothesis import settings

POSTGRES_URL_ENV = "DATAEX_TEST_POSTGRES_URL"

# Continuous integration explores the same examples on every run, so a landing never depends
# on the luck of the draw; local runs keep drawing new ones (and remember what failed).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database of the parametrised kind, dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    server_url = os.environ.get(POSTGRES_URL_ENV)
    if not server_url:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set")
    schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(server_url)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        separator = "&" if "?" in server_url else "?"
        yield f"{server_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        try:
            with admin.begin() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            admin.dispose()
