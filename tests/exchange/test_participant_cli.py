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


# -- the operator's commands -------------------------------------------------------------


def run(db: str, *args: str):
    return runner.invoke(app, ["participant", *args, "--database", db])


def _key_of(output: str) -> ApiKey:
    key = ApiKey.parse(output.split("api key:")[1].strip())
    assert key is not None
    return key


def test_list_disable_enable_rotate_and_revoke(db: str) -> None:
    assert create(db, "Ops", "--role", "admin", "--id", "ops").exit_code == 0
    first = _key_of(create(db, "Hangzhou Bank", "--role", "buyer", "--id", "hzb").output)

    listed = run(db, "list")
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines() == [
        f"hzb\tactive\tbuyer\t{first.key_id}\tHangzhou Bank",
        f"ops\tactive\tadmin\t{recover(Ledger.open(db)).participants.by_id['ops'].key_id}\tOps",
    ]
    assert run(db, "list", "--role", "buyer").output.count("\n") == 1

    result = run(db, "disable", "hzb", "--reason", "fees unpaid")
    assert result.exit_code == 0, result.output
    assert "hzb is disabled; 0 open orders cancelled" in result.output
    assert run(db, "list", "--disabled").output.startswith("hzb\tdisabled\t")
    assert recover(Ledger.open(db)).authenticate(first.key_id, first.secret) is None
    assert run(db, "enable", "hzb").exit_code == 0
    assert recover(Ledger.open(db)).authenticate(first.key_id, first.secret) is not None

    rotated = run(db, "rotate-key", "hzb")
    assert rotated.exit_code == 0, rotated.output
    second = _key_of(rotated.output)
    exchange = recover(Ledger.open(db))
    assert exchange.authenticate(first.key_id, first.secret) is None
    assert exchange.authenticate(second.key_id, second.secret).participant_id == "hzb"
    assert second.secret not in repr(exchange.participants.by_id)

    revoked = run(db, "revoke-key", "hzb", second.key_id)
    assert revoked.exit_code == 0, revoked.output
    assert recover(Ledger.open(db)).authenticate(second.key_id, second.secret) is None
    assert "hzb\tactive\tbuyer\t-\t" in run(db, "list").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["disable", "nobody"], "no participant 'nobody'"),
        (["enable", "nobody"], "no participant 'nobody'"),
        (["rotate-key", "nobody"], "no participant 'nobody'"),
        (["revoke-key", "ops", "dxk_0000000000000000"], "is not ops's key"),
        (["disable", "ops", "--reason", "x" * 300], "reason must be"),
        (["list", "--role", "god"], "'god' is not one of"),
    ],
)
def test_bad_operator_commands_are_one_error_line_and_exit_2(
    db: str, args: list[str], message: str
) -> None:
    assert create(db, "Ops", "--role", "admin", "--id", "ops").exit_code == 0
    result = run(db, *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
