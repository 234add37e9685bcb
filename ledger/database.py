"""The database: its URL, and one SQLAlchemy engine per database per process.

SQLite connections run in WAL mode with ``synchronous=FULL`` (a commit is on disk when it
returns), foreign keys on, and a busy timeout so that writers queue rather than fail. The
ledger begins its write transactions with ``BEGIN IMMEDIATE`` on SQLite, taking the write
lock before it reads the chain's head. PostgreSQL sessions force ``synchronous_commit`` on.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "WRITE_OPTION",
    "create_engine",
    "database_url",
    "dispose_engines",
    "get_engine",
    "scratch_schema",
]

DATABASE_URL_ENV = "DATAEX_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///dataex.db"
# Execution option that marks a connection's next transaction as a ledger write.
WRITE_OPTION = "dataex_ledger_write"
SQLITE_BUSY_TIMEOUT_MS = 60_000

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def database_url(url: str | None = None) -> str:
    """``url`` if given, else ``$DATAEX_DATABASE_URL``, else ``sqlite:///dataex.db``."""
    return url or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def get_engine(url: str | None = None) -> Engine:
    """The process's engine for ``database_url(url)``, created on first use."""
    resolved = database_url(url)
    with _engines_lock:
        engine = _engines.get(resolved)
        if engine is None:
            engine = _engines[resolved] = create_engine(resolved)
        return engine


def dispose_engines() -> None:
    """Close every engine :func:`get_engine` created (for tests and orderly shutdown)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def scratch_schema(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty schema ``<prefix>_<random>`` on the PostgreSQL server at ``server_url``,
    as a URL whose connections use it; dropped with everything in it on exit, so that tests,
    benchmarks and load tests leave the server as they found it. The engines of
    :func:`get_engine` are disposed first: their pooled connections would hold the schema."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(server_url)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        separator = "&" if "?" in server_url else "?"
        yield f"{server_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        dispose_engines()
        try:
            with admin.begin() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            admin.dispose()


def create_engine(url: str, **kwargs: Any) -> Engine:
    """A new engine for ``url`` with the ledger's connection settings.

    Prefer :func:`get_engine`; this exists for tools that need a second, independent pool
    (tests that contend from several connections, benchmarks).
    """
    engine = sqlalchemy.create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    elif engine.dialect.name == "postgresql":
        _configure_postgresql(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling cannot take the write lock up front, so it
        # is switched off and transactions are begun explicitly in _on_begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # On the driver itself: SQLAlchemy's statement machinery would cost more than the
        # BEGIN, and every append (a dozen commands, on a busy server) begins one.
        driver = connection.connection.driver_connection
        assert driver is not None
        try:
            driver.execute("BEGIN IMMEDIATE" if connection.get_execution_options().get(
                WRITE_OPTION) else "BEGIN")  # fmt: skip
        except sqlite3.Error as error:  # the write lock not taken within the busy timeout
            raise DBAPIError.instance("BEGIN", None, error, sqlite3.Error) from error


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # A server configured for asynchronous commit would make "durable when it returns"
        # false; the session setting overrides it for the ledger's connections.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO on")
        dbapi_connection.commit()
