"""Creating and upgrading the ledger's schema with its Alembic migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from ledger.database import get_engine

__all__ = ["MIGRATIONS_DIR", "migrate"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def migrate(database: str | Engine | None = None, revision: str = "head") -> None:
    """Run ``alembic upgrade <revision>`` with the migrations shipped in ``ledger/migrations``.

    ``database`` is an engine, a URL, or None for ``$DATAEX_DATABASE_URL`` (default
    ``sqlite:///dataex.db``). Safe to call on every start: an up-to-date schema is left as is.
    An older ``revision`` builds a database as an earlier version left it (for tests of the
    migrations that follow).
    """
    engine = database if isinstance(database, Engine) else get_engine(database)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
