"""Alembic environment: runs the ledger's migrations on the connection it is handed.

:func:`ledger.migrate` passes an open connection in ``config.attributes["connection"]``;
the ``alembic`` command line can instead set ``sqlalchemy.url``. The ledger keeps its own
version table so that other parts of dataex can version their schemas independently.
"""

from __future__ import annotations

from alembic import context

from ledger.database import create_engine

VERSION_TABLE = "ledger_alembic_version"


def _run(connection: object) -> None:
    context.configure(connection=connection, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as opened:
            _run(opened)
            opened.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("the ledger's migrations run online only")
run_migrations_online()
