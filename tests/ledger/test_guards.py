"""The append-only guards: a dropped, disabled or altered trigger is named by ``verify``, refused
by the writers that check it, and re-created exactly by ``dataex ledger restore-guards``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy
from typer.testing import CliRunner

from exchange.api.runtime import Runtime
from exchange.cli import app
from exchange.settings import Settings
from ledger import entries
from ledger.database import dispose_engines
from ledger.guards import GuardsMissing, expected_guards, guard_problems, require_guards
from ledger.store import Ledger
from ledger.verify import verify
from tests.ledger.helpers import funded_ledger

runner = CliRunner()

# One way each backend's guard can be defeated, and the trigger it defeats.
DROP = {
    "sqlite": ("DROP TRIGGER ledger_entry_no_update", "ledger_entry_no_update", "missing"),
    "postgresql": (
        "DROP TRIGGER ledger_entry_no_change ON ledger_entry",
        "ledger_entry_no_change",
        "missing",
    ),
}
WEAKEN = {
    # Same name, same table, but it no longer refuses anything.
    "sqlite": (
        "DROP TRIGGER ledger_posting_no_delete\n"
        "CREATE TRIGGER ledger_posting_no_delete BEFORE DELETE ON ledger_posting "
        "BEGIN SELECT 1; END",
        "ledger_posting_no_delete",
        "altered",
    ),
    # Fires everywhere except under session_replication_role = replica.
    "postgresql": (
        "ALTER TABLE ledger_posting ENABLE TRIGGER ledger_posting_no_change",
        "ledger_posting_no_change",
        "disabled",
    ),
}


@pytest.fixture
def filled(ledger: Ledger, database_url: str) -> Iterator[Ledger]:
    funded_ledger(ledger, "ann")
    yield ledger
    dispose_engines()


def run_sql(ledger: Ledger, statements: str) -> None:
    """Run ``statements``, one a line, behind the ledger's back."""
    with ledger.engine.begin() as connection:
        for statement in statements.splitlines():
            connection.exec_driver_sql(statement)


def problems_of(ledger: Ledger) -> list[str]:
    with ledger.engine.connect() as connection:
        return [str(problem) for problem in guard_problems(connection)]


def test_a_migrated_database_holds_every_guard_the_schema_defines(
    ledger: Ledger, dialect: str
) -> None:
    assert problems_of(ledger) == []
    assert verify(ledger).guard_problems == []
    names = {guard.name for guard in expected_guards(dialect)}
    assert len(names) == (9 if dialect == "sqlite" else 6)


@pytest.mark.parametrize("change", [DROP, WEAKEN], ids=["dropped", "weakened"])
def test_verify_names_a_defeated_guard(
    filled: Ledger, dialect: str, change: dict[str, tuple[str, str, str]]
) -> None:
    sql, name, state = change[dialect]
    run_sql(filled, sql)
    report = verify(filled)
    assert not report.ok
    assert report.problems == []  # every row is still as written
    table = name.rsplit("_no_", 1)[0]
    assert [str(p) for p in report.guard_problems] == [f"{table} trigger {name}: {state}"]


def test_an_altered_postgresql_function_defeats_every_trigger_and_is_restored(
    filled: Ledger, database_url: str, dialect: str
) -> None:
    if dialect != "postgresql":
        pytest.skip("the triggers of PostgreSQL share one function")
    run_sql(
        filled,
        "CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    )
    assert len(problems_of(filled)) == 6
    assert all(p.endswith(": altered") for p in problems_of(filled))
    assert invoke("ledger", "restore-guards", "--database", database_url).exit_code == 0
    assert problems_of(filled) == []
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
        run_sql(filled, "UPDATE ledger_entry SET ts_ns = ts_ns + 1")


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_verify_command_fails_naming_the_guard_and_the_restore_command(
    filled: Ledger, database_url: str, dialect: str
) -> None:
    sql, name, _ = DROP[dialect]
    run_sql(filled, sql)
    result = invoke("ledger", "verify", "--database", database_url, "--workers", "1")
    assert result.exit_code == 1, result.output
    assert f"problem: ledger_entry trigger {name}: missing" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the ledger is not append-only:")
    assert name in last and "dataex ledger restore-guards --database URL" in last
    assert "Traceback" not in result.output


def test_restore_guards_recreates_exactly_the_missing_ones_and_is_idempotent(
    filled: Ledger, database_url: str, dialect: str
) -> None:
    for change in (DROP, WEAKEN):
        run_sql(filled, change[dialect][0])
    assert len(problems_of(filled)) == 2
    first = invoke("ledger", "restore-guards", "--database", database_url)
    assert first.exit_code == 0, first.output
    restored = sorted(
        line.split()[1] for line in first.stdout.splitlines() if line.startswith("restored ")
    )
    assert restored == sorted([DROP[dialect][1], WEAKEN[dialect][1]])
    assert problems_of(filled) == []
    again = invoke("ledger", "restore-guards", "--database", database_url)
    assert again.exit_code == 0
    assert again.stdout.strip() == "every append-only guard is in place"
    assert invoke("ledger", "verify", "--database", database_url).exit_code == 0
    # And they refuse again: an UPDATE and a DELETE are stopped by the database.
    for statement in ("UPDATE ledger_entry SET ts_ns = 0", "DELETE FROM ledger_posting"):
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
            run_sql(filled, statement)


def test_writers_refuse_a_ledger_without_its_guards(
    filled: Ledger, database_url: str, dialect: str
) -> None:
    sql, name, _ = DROP[dialect]
    run_sql(filled, sql)
    with pytest.raises(GuardsMissing, match=name):
        require_guards(filled.engine)
    with pytest.raises(GuardsMissing, match="restore-guards"):
        Runtime.open(Settings(database_url))
    result = invoke("participant", "create", "Ops", "--role", "admin", "--database", database_url)
    assert result.exit_code == 2
    assert name in result.output and "Traceback" not in result.output
    # Nothing was journalled by the refused writer.
    assert filled.journal_head_seq() == 0


def test_the_server_refuses_to_start_in_one_line_naming_the_command(
    filled: Ledger, database_url: str, dialect: str, run_serve: Callable[[str], tuple[int, str]]
) -> None:
    sql, name, _ = DROP[dialect]
    run_sql(filled, sql)
    code, output = run_serve(database_url)
    assert code == 1, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert name in lines[0] and "dataex ledger restore-guards" in lines[0]
    assert "serving" not in output


@pytest.fixture
def run_serve() -> Callable[[str], tuple[int, str]]:
    """``dataex serve`` on a free port, bounded in time: its exit status and output."""
    import subprocess

    from tests.exchange.serverproc import DATAEX, HOST, free_port

    def run(url: str) -> tuple[int, str]:
        result = subprocess.run(
            [str(DATAEX), "serve", "--host", HOST, "--port", str(free_port()),
             "--database", url, "--no-witness"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        return result.returncode, result.stdout + result.stderr

    return run


def test_entries_append_again_once_restored(
    filled: Ledger, database_url: str, dialect: str
) -> None:
    run_sql(filled, DROP[dialect][0])
    assert invoke("ledger", "restore-guards", "--database", database_url).exit_code == 0
    filled.append_entries([entries.deposit("bob", 5, key="dep-bob", ts_ns=9)])
    assert verify(filled).ok
