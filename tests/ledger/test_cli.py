"""``dataex ledger ...`` through Typer's test runner."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli.ledger import app
from ledger import entries
from ledger.database import dispose_engines
from ledger.store import Ledger
from tests.ledger.helpers import funded_ledger, trade

runner = CliRunner()


@pytest.fixture
def url(ledger: Ledger, database_url: str) -> Iterator[str]:
    """A database with six entries and one journal command, and the CLI's engines closed after."""
    funded_ledger(ledger, "ann")
    ledger.append_entries([entries.deposit("cy", 5, key="dep-cy", ts_ns=3)])
    ledger.append(commands=[(1, {"verb": "new_order"})], entries=[trade(1), trade(2)])
    ledger.append_entries([entries.deposit("bob", 10, key="dep-bob", ts_ns=5)])
    yield database_url
    dispose_engines()


def invoke(*args: str, stdin: str | None = None):
    return runner.invoke(app, list(args), input=stdin)


def test_verify_reports_ok_and_the_digest(url: str, ledger: Ledger) -> None:
    result = invoke("verify", "--database", url)
    assert result.exit_code == 0, result.output
    assert "ledger: 6 entries" in result.stdout
    assert ledger.digest().root_hash.hex() in result.stdout
    assert result.stdout.rstrip().endswith("ok")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_verify_on_a_tampered_database_exits_1_naming_the_row(
    url: str, ledger: Ledger, dialect: str, workers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importlib.import_module("ledger.verify"), "MIN_RANGE_ROWS", 1)
    with ledger.engine.begin() as connection:
        if dialect == "sqlite":
            connection.exec_driver_sql("DROP TRIGGER ledger_entry_no_update")
        else:
            connection.exec_driver_sql(
                "ALTER TABLE ledger_entry DISABLE TRIGGER ledger_entry_no_change"
            )
        connection.exec_driver_sql("UPDATE ledger_entry SET ts_ns = ts_ns + 1 WHERE seq = 3")
    result = invoke("verify", "--database", url, "--workers", workers)
    assert result.exit_code == 1
    assert "error: first bad row: ledger_entry seq 3: hash mismatch" in result.stderr
    assert "Traceback" not in result.output


def test_inclusion_proof_checks_against_the_digest_alone(url: str, tmp_path: Path) -> None:
    digest = invoke("digest", "--database", url)
    proof = invoke("proof", "4", "--database", url)
    assert digest.exit_code == 0 and proof.exit_code == 0, proof.output
    (tmp_path / "digest.json").write_text(digest.stdout)
    checked = invoke(
        "check-proof", "-", "--digest", str(tmp_path / "digest.json"), stdin=proof.stdout
    )
    assert checked.exit_code == 0, checked.output
    assert "ok: entry 4 is in the tree of 6" in checked.stdout


def test_a_corrupted_proof_or_entry_fails_the_check(url: str, tmp_path: Path) -> None:
    (tmp_path / "digest.json").write_text(invoke("digest", "--database", url).stdout)
    good = json.loads(invoke("proof", "4", "--database", url).stdout)
    flipped = dict(
        good,
        hashes=[
            ("1" if good["hashes"][0][0] != "1" else "2") + good["hashes"][0][1:],
            *good["hashes"][1:],
        ],
    )
    altered_entry = dict(good, entry=good["entry"].replace('"seq":4', '"seq":5'), leaf_hash=None)
    wrong_index = dict(good, leaf_index=good["leaf_index"] + 1)
    for bad in (flipped, altered_entry, wrong_index):
        bad = {k: v for k, v in bad.items() if v is not None}
        result = invoke(
            "check-proof", "-", "--digest", str(tmp_path / "digest.json"), stdin=json.dumps(bad)
        )
        assert result.exit_code == 1, bad
        assert "proof does not verify" in result.stderr


def test_consistency_proof_checks_against_both_digests(
    url: str, ledger: Ledger, tmp_path: Path
) -> None:
    old = tmp_path / "old.json"
    old.write_text(invoke("digest", "--database", url).stdout)
    ledger.append_entries([entries.deposit("cy", 1, key="later", ts_ns=9)])
    new = tmp_path / "new.json"
    new.write_text(invoke("digest", "--database", url).stdout)
    proof = invoke("consistency", "6", "--database", url)
    assert proof.exit_code == 0, proof.output
    result = invoke(
        "check-proof", "-", "--digest", str(new), "--old-digest", str(old), stdin=proof.stdout
    )
    assert result.exit_code == 0, result.output
    swapped = invoke(
        "check-proof", "-", "--digest", str(old), "--old-digest", str(new), stdin=proof.stdout
    )
    assert swapped.exit_code == 1


def test_balances_lists_one_participants_accounts(url: str) -> None:
    result = invoke("balances", "--participant", "ann", "--database", url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2  # cash and one licence holding
    assert all(line.startswith("participant:ann:") for line in lines)
    cash = next(line for line in lines if line.split()[0] == "participant:ann:cash")
    assert cash.split()[-1] == str(1_000_000 - 2 * 500)


@pytest.mark.parametrize(
    "args",
    [
        ("verify", "--database", "sqlite:////nonexistent/dir/x.db"),
        ("verify", "--database", "not a url"),
        ("proof", "99", "--database", "{url}"),
        ("check-proof", "/nonexistent.json", "--digest", "/nonexistent.json"),
    ],
)
def test_errors_are_one_line_without_traceback(url: str, args: tuple[str, ...]) -> None:
    result = invoke(*(arg.replace("{url}", url) for arg in args))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_verify_needs_at_least_one_worker(url: str) -> None:
    result = invoke("verify", "--database", url, "--workers", "0")
    assert result.exit_code == 2
    assert "Invalid value for '--workers'" in result.output
    assert "Traceback" not in result.output


def test_verify_names_a_row_whose_text_is_not_utf8(url: str, ledger: Ledger, dialect: str) -> None:
    if dialect != "sqlite":
        pytest.skip("PostgreSQL refuses text that is not UTF-8")
    with ledger.engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER ledger_entry_no_update")
        connection.exec_driver_sql(
            "UPDATE ledger_entry SET body = CAST(X'FF' AS TEXT) || body WHERE seq = 3"
        )
    result = invoke("verify", "--database", url)
    assert result.exit_code == 1
    assert "stopped: not every row could be read" in result.stdout
    assert "error: first bad row: ledger_entry seq 3: body is not UTF-8 text" in result.stderr
    assert "Traceback" not in result.output
