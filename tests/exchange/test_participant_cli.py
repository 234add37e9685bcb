"""``dataex participant create``: a participant and its key, printed once, from the console."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli import app
from exchange.participants import ApiKey
from exchange.recovery import recover
from ledger.database import dispose_engines
from ledger.store import Ledger

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'exchange.db'}"
    dispose_engines()


def create(db: str, *args: str):
    return runner.invoke(app, ["participant", "create", *args, "--database", db])


def test_create_prints_a_key_that_authenticates(db: str) -> None:
    result = create(db, "Hangzhou Bank", "--role", "buyer", "--role", "provider")
    assert result.exit_code == 0, result.output
    assert "created hangzhou-bank (buyer, provider)" in result.output
    key = ApiKey.parse(result.output.split("api key:")[1].strip())
    assert key is not None
    exchange = recover(Ledger.open(db))
    participant = exchange.authenticate(key.key_id, key.secret)
    assert participant is not None and participant.participant_id == "hangzhou-bank"
    # Only the digest is kept: the secret is in no participant record.
    assert key.secret not in repr(exchange.participants.by_id)


def test_duplicate_id_is_an_error_line_and_exit_2(db: str) -> None:
    assert create(db, "Ops", "--role", "admin", "--id", "ops").exit_code == 0
    result = create(db, "Ops again", "--role", "admin", "--id", "ops")
    assert result.exit_code == 2
    assert "participant ops already exists" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["X", "--role", "god"], "'god' is not one of"),
        (["X", "--role", "admin", "--id", "Bad Id"], "participant id must be"),
    ],
)
def test_bad_input_is_refused(db: str, args: list[str], message: str) -> None:
    result = create(db, *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
