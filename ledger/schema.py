"""Creating and upgrading the ledger's schema with its Alembic migrations, and telling
whether a database holds a ledger at all (without creating one)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from ledger.database import database_url, get_engine
from ledger.errors import LedgerError

__all__ = ["MIGRATIONS_DIR", "VERSION_TABLE", "NoLedger", "migrate", "require_ledger", "shown_url"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The table in which the migrations record the schema's revision: a database holds a
# dataex ledger exactly when it has this table (see migrations/env.py).
VERSION_TABLE = "ledger_alembic_version"


class NoLedger(LedgerError):
    """There is no dataex database at the URL (or the URL is not a database URL)."""


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


def shown_url(url: str | URL) -> str:
    """``url`` as it may be printed: the password, if any, as ``***``."""
    parsed = url if isinstance(url, URL) else make_url(url)
    return parsed.render_as_string(hide_password=True)


def require_ledger(url: str | None = None) -> str:
    """The resolved URL (see :func:`ledger.database.database_url`) if it names a database
    that holds a dataex ledger; otherwise raise :class:`NoLedger`, creating nothing: a
    missing SQLite file stays missing, an empty or mistyped PostgreSQL schema stays empty.

    For the commands that only read: migrating would create the tables they then report on.
    A ledger of an older revision passes (the migrations upgrade it).
    """
    resolved = database_url(url)
    try:
        parsed = make_url(resolved)
    except ArgumentError:
        raise NoLedger(f"not a database URL: {resolved!r}") from None
    if parsed.get_backend_name() == "sqlite":
        found, why = _sqlite_has_ledger(parsed.database)
    else:
        found, why = _has_ledger(get_engine(resolved)), "its schema holds no ledger tables"
    if not found:
        raise NoLedger(f"no dataex database at {shown_url(parsed)} ({why})")
    return resolved


def _sqlite_has_ledger(path: str | None) -> tuple[bool, str]:
    """Whether the SQLite file at ``path`` holds the ledger, and if not, why; read through a
    read-only connection of its own, which cannot create the file (an engine's would)."""
    if not path or path == ":memory:":
        return False, "an in-memory database starts empty"
    if not Path(path).is_file():
        return False, "the file does not exist"
    try:
        connection = sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=ro", uri=True)
        try:
            found = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        return False, f"the file is not a SQLite database: {error}"
    return found is not None, "the file holds no ledger tables"


def _has_ledger(engine: Engine) -> bool:
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # The search path decides where the ledger's tables are; a schema named in it
            # that does not exist finds nothing (and current_schema() is then NULL).
            return bool(
                connection.execute(
                    text("SELECT to_regclass(:table) IS NOT NULL"), {"table": VERSION_TABLE}
                ).scalar()
            )
        return inspect(connection).has_table(VERSION_TABLE)
