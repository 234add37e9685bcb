"""Commands that only read create nothing: where there is no dataex database (a missing SQLite
file, an empty or mistyped PostgreSQL schema) they say so in one line naming the URL, without
its password, and exit non-zero; the file still does not exist, the schema holds no table."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy
from typer.testing import CliRunner

from exchange.cli import app
from ledger.database import dispose_engines

runner = CliRunner()

COMMANDS = [
    ["value", "product", "p-1"],
    ["ledger", "verify", "--workers", "1"],
    ["ledger", "digest"],
    ["ledger", "balances"],
    ["ledger", "proof", "1"],
    ["ledger", "consistency", "1"],
    ["replay", "--no-progress"],
]
IDS = [" ".join(command[:2]) for command in COMMANDS]


@pytest.fixture(autouse=True)
def _engines_closed() -> Iterator[None]:
    yield
    dispose_engines()


def run(command: list[str], url: str):
    return runner.invoke(app, [*command, "--database", url])


def assert_refused_in_one_line(result, shown_url: str) -> None:
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "no dataex database at" in lines[0], lines
    assert shown_url in lines[0], lines
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_a_missing_sqlite_file_is_refused_and_not_created(
    command: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "missing.db"
    result = run(command, f"sqlite:///{path}")
    assert_refused_in_one_line(result, str(path))
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_a_sqlite_file_without_a_ledger_is_refused_and_left_as_it_was(
    command: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "other.db"
    path.write_bytes(b"")  # an empty file: a SQLite database with no table
    result = run(command, f"sqlite:///{path}")
    assert_refused_in_one_line(result, str(path))
    assert path.read_bytes() == b""


def _server_url() -> str:
    server_url = os.environ.get("DATAEX_TEST_POSTGRES_URL")
    if not server_url:
        pytest.skip("DATAEX_TEST_POSTGRES_URL is not set")
    return server_url


def _tables_in(server_url: str, schema: str) -> list[str]:
    engine = sqlalchemy.create_engine(server_url)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    sqlalchemy.text(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = :schema"
                    ),
                    {"schema": schema},
                ).scalars()
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_an_empty_postgresql_schema_is_refused_and_left_empty(
    command: list[str], database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL schema")
    server_url = _server_url()
    schema = parse_qs(urlsplit(database_url).query)["options"][0].split("=")[1]
    result = run(command, database_url)
    assert_refused_in_one_line(result, "127.0.0.1:5432/test")
    assert _tables_in(server_url, schema) == []


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_a_mistyped_postgresql_schema_is_refused_and_not_created(command: list[str]) -> None:
    server_url = _server_url()
    schema = f"no_such_schema_{uuid.uuid4().hex[:8]}"
    with_password = server_url.replace("postgres@", "postgres:secret-pw@", 1)
    url = f"{with_password}?options=-csearch_path%3D{schema}"
    result = run(command, url)
    assert_refused_in_one_line(result, "127.0.0.1:5432/test")
    assert "secret-pw" not in result.output
    assert _tables_in(server_url, schema) == []
