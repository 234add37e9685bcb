"""Suite-wide test settings, and the database every storage test runs against.

Storage tests run on SQLite, and on PostgreSQL when ``DATAEX_TEST_POSTGRES_URL`` is set. Each
test gets a fresh database (a file, or a schema of its own) that is removed afterwards, so the
server is left as it was found. A PostgreSQL URL that is set but unreachable makes the tests
error, never skip.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

import matching
from ledger.database import scratch_schema

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
    with scratch_schema(server_url, "ledger_test") as url:
        yield url


@pytest.fixture(autouse=True, scope="session")
def data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The user's data directory, where a server on PostgreSQL keeps its witness by default
    (``ledger.witness.default_witness_path``): a temporary one, so that the servers the tests
    start leave no witness files in the home directory."""
    path = tmp_path_factory.mktemp("data-home")
    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(path)
    yield path
    if before is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = before


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test a compiled engine older than its source: the source would not run."""
    stale = stale_compiled_modules()
    if stale:
        pytest.exit(
            f"matching/{', matching/'.join(stale)} changed after the engine was compiled; "
            "build it again with `pip install -e .` (or remove matching/*.so to run it as "
            "Python)",
            returncode=4,
        )


def stale_compiled_modules() -> list[str]:
    package = Path(matching.__file__).parent
    return sorted(
        source.name
        for source in package.glob("*.py")
        for built in package.glob(f"{source.stem}.*.so")
        if source.stat().st_mtime > built.stat().st_mtime
    )
