"""The append-only guards: the triggers that refuse to change or remove a journal, entry or
posting row, which of them a database lacks, and putting them back.

The migrations create them (``ledger/migrations/versions/0001_ledger_tables.py``): on SQLite,
for each append-only table, triggers refusing UPDATE and DELETE and an INSERT that collides
with a stored row (``<table>_no_update``, ``_no_delete``, ``_no_replace``); on PostgreSQL, a
row trigger refusing UPDATE and DELETE and a statement trigger refusing TRUNCATE
(``<table>_no_change``, ``_no_truncate``), both enabled ALWAYS, calling
``ledger_refuse_change()``. Anyone with the database owner's rights can drop or disable them,
and nothing would then stop a later UPDATE. So the server checks them before it serves,
``dataex ledger verify`` reports what is missing, and ``dataex ledger restore-guards``
re-creates exactly these definitions.

The definitions are written out here as the migration wrote them, not imported from it (a
migration is history and does not change); ``tests/ledger/test_guards.py`` checks that a
freshly migrated database holds exactly these, on both backends. A guard counts as in place
only with its full definition: a trigger of the right name that no longer refuses (another
body, a WHEN clause, a column list, disabled, another function) is reported as altered.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from ledger.errors import LedgerError
from ledger.scan import Problem

__all__ = [
    "APPEND_ONLY_TABLES",
    "RESTORE_COMMAND",
    "Guard",
    "GuardsMissing",
    "expected_guards",
    "guard_problems",
    "require_guards",
    "restore_guards",
]

APPEND_ONLY_TABLES = ("ledger_journal", "ledger_entry", "ledger_posting")
RESTORE_COMMAND = "dataex ledger restore-guards --database URL"
# What identifies a row of each append-only table on SQLite (see migration 0001).
_SQLITE_ROW_IDENTITY = {
    "ledger_journal": "seq = NEW.seq",
    "ledger_entry": "seq = NEW.seq OR key = NEW.key",
    "ledger_posting": "entry_seq = NEW.entry_seq AND idx = NEW.idx",
}
_PG_FUNCTION = "ledger_refuse_change"
_PG_FUNCTION_BODY = """
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        """
_PG_CREATE_FUNCTION = (
    f"CREATE OR REPLACE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql "
    f"AS $${_PG_FUNCTION_BODY}$$"
)
# pg_trigger.tgtype bits: ROW 1, BEFORE 2, INSERT 4, DELETE 8, UPDATE 16, TRUNCATE 32.
_PG_ROW_UPDATE_DELETE = 1 | 2 | 8 | 16
_PG_STATEMENT_TRUNCATE = 2 | 32


@dataclass(frozen=True, slots=True)
class Guard:
    """One append-only trigger: its name, its table, and the SQL that creates it."""

    name: str
    table: str
    create_sql: tuple[str, ...]
    # PostgreSQL only: the trigger's pg_trigger.tgtype (0 on SQLite).
    pg_type: int = 0


class GuardsMissing(LedgerError):
    """The database lacks append-only guards its schema defines; the message names them and
    the command that restores them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        named = "; ".join(f"{p.where} on {p.table} {p.what}" for p in problems)
        super().__init__(
            f"the ledger is not append-only: {named}; restore the guards with: {RESTORE_COMMAND}"
        )


def expected_guards(dialect: str) -> tuple[Guard, ...]:
    """The guards the schema defines for ``dialect`` ("sqlite" or "postgresql")."""
    if dialect == "sqlite":
        return tuple(guard for table in APPEND_ONLY_TABLES for guard in _sqlite_guards(table))
    if dialect == "postgresql":
        return tuple(guard for table in APPEND_ONLY_TABLES for guard in _postgresql_guards(table))
    raise LedgerError(f"no append-only guards for the {dialect} dialect")


def _sqlite_guards(table: str) -> list[Guard]:
    guards = [
        Guard(
            f"{table}_no_{operation.lower()}",
            table,
            (
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END",
            ),
        )
        for operation in ("UPDATE", "DELETE")
    ]
    guards.append(
        Guard(
            f"{table}_no_replace",
            table,
            (
                f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
                f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {_SQLITE_ROW_IDENTITY[table]}) "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: row exists'); END",
            ),
        )
    )
    return guards


def _postgresql_guards(table: str) -> list[Guard]:
    def trigger(suffix: str, when: str, each: str, pg_type: int) -> Guard:
        name = f"{table}_{suffix}"
        return Guard(
            name,
            table,
            (
                f"CREATE TRIGGER {name} BEFORE {when} ON {table} "
                f"FOR EACH {each} EXECUTE FUNCTION {_PG_FUNCTION}()",
                # ALWAYS: the trigger fires under session_replication_role = replica too.
                f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {name}",
            ),
            pg_type,
        )

    return [
        trigger("no_change", "UPDATE OR DELETE", "ROW", _PG_ROW_UPDATE_DELETE),
        trigger("no_truncate", "TRUNCATE", "STATEMENT", _PG_STATEMENT_TRUNCATE),
    ]


def guard_problems(connection: Connection) -> list[Problem]:
    """One :class:`Problem` per guard the database lacks or holds altered, in the schema's
    order; empty when every guard is in place. Reads only the catalogue."""
    dialect = connection.dialect.name
    found = _sqlite_found(connection) if dialect == "sqlite" else _postgresql_found(connection)
    problems = []
    for guard in expected_guards(dialect):
        state = found.get((guard.table, guard.name), "missing")
        if state != "in place":
            problems.append(Problem(guard.table, f"trigger {guard.name}", state))
    return problems


def _normal(sql: str) -> str:
    return " ".join(sql.split())


def _sqlite_found(connection: Connection) -> dict[tuple[str, str], str]:
    """(table, trigger) -> "in place" or "altered", for the triggers stored."""
    expected = {(g.table, g.name): _normal(g.create_sql[0]) for g in expected_guards("sqlite")}
    rows = connection.exec_driver_sql(
        "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'trigger'"
    )
    return {
        (table, name): "in place"
        if _normal(sql or "") == expected.get((table, name))
        else "altered"
        for table, name, sql in rows
    }


def _postgresql_found(connection: Connection) -> dict[tuple[str, str], str]:
    """(table, trigger) -> "in place", "disabled" or "altered", for the triggers on the
    append-only tables of the schema the connection's search path finds first."""
    expected = {(g.table, g.name): g.pg_type for g in expected_guards("postgresql")}
    found = {}
    for table in APPEND_ONLY_TABLES:
        rows = connection.execute(
            text(
                "SELECT t.tgname, t.tgenabled, t.tgtype, t.tgqual IS NULL AS unconditional, "
                "t.tgattr::text AS columns, p.proname, p.prosrc "
                "FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
                "WHERE t.tgrelid = to_regclass(:table) AND NOT t.tgisinternal"
            ),
            {"table": table},
        )
        for row in rows:
            intact = (
                row.tgtype == expected.get((table, row.tgname))
                and row.unconditional
                and row.columns == ""
                and row.proname == _PG_FUNCTION
                and _normal(row.prosrc) == _normal(_PG_FUNCTION_BODY)
            )
            # 'A' is ENABLE ALWAYS; 'O' fires except under replication, 'D' never.
            state = "altered" if not intact else "in place" if row.tgenabled == "A" else "disabled"
            found[(table, row.tgname)] = state
    return found


def require_guards(engine: Engine) -> None:
    """Raise :class:`GuardsMissing` unless every guard of the schema is in place."""
    with engine.connect() as connection:
        problems = guard_problems(connection)
    if problems:
        raise GuardsMissing(problems)


def restore_guards(engine: Engine) -> list[str]:
    """Re-create every guard the database lacks or holds altered, exactly as the schema
    defines it, in one transaction; the names of those re-created (none when all were in
    place: running it again changes nothing)."""
    with engine.begin() as connection:
        dialect = connection.dialect.name
        problems = {(p.table, p.where.removeprefix("trigger ")) for p in guard_problems(connection)}
        restored = []
        if dialect == "postgresql" and problems:
            # An altered function body would defeat every trigger calling it. Through text(),
            # which escapes its '%' for the driver (exec_driver_sql would take them for
            # placeholders).
            connection.execute(text(_PG_CREATE_FUNCTION))
        for guard in expected_guards(dialect):
            if (guard.table, guard.name) not in problems:
                continue
            on_table = f" ON {guard.table}" if dialect == "postgresql" else ""
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {guard.name}{on_table}")
            for statement in guard.create_sql:
                connection.exec_driver_sql(statement)
            restored.append(guard.name)
    return restored
