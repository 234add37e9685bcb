"""The crash test: a short run end to end, its interruption, and its checker catching losses.

The run goes as a newcomer runs it, ``python -m loadtests.crash`` in a process of its own,
from a directory outside the checkout with the checkout on ``PYTHONPATH``: three kills on
SQLite, a few seconds of flow. The checker's tests feed it what a lost acknowledgement
looks like, so that a run passing is known to mean something.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from loadtests.crash_checks import (
    check_acknowledgements,
    check_conservation,
    check_replay_output,
    check_retries,
)
from loadtests.crash_flow import RequestRecord
from loadtests.crash_run import DURING_START_UP, UNDER_LOAD, kill_schedule

CHECKOUT = Path(__file__).resolve().parents[2]
POSTGRES_URL_ENV = "DATAEX_TEST_POSTGRES_URL"
RUN_TIMEOUT_S = 300  # a 3-kill run takes about 20 s; a hung one fails instead of hanging
TRADER = "lt-t0"


def _crash(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT)}
    env.pop("DATAEX_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "loadtests.crash", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _processes_in(directory: Path) -> list[int]:
    """Processes whose working directory is under ``directory`` (the servers run there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = (entry / "cwd").resolve()
            except OSError:
                continue  # gone, or not ours to read
            if cwd.is_relative_to(directory):
                found.append(int(entry.name))
    return found


def test_three_kills_on_sqlite_lose_nothing_and_leave_no_server(tmp_path: Path) -> None:
    process = _crash("--kills", "3", "--seed", "3", "--clients", "3", cwd=tmp_path)
    stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    assert process.returncode == 0, stdout + stderr
    assert "error:" not in stderr, stderr
    assert [line.split(":")[0] for line in stdout.splitlines() if line.startswith("kill ")] == [
        "kill 1",
        "kill 2",
        "kill 3",
    ], stdout
    assert "0 failed" in stdout, stdout
    (run_dir,) = (tmp_path / "crash-results").iterdir()
    assert (run_dir / "requests.jsonl").stat().st_size > 0
    assert (run_dir / "crash.db").exists()
    # Four starts of the server (one per kill and the last), each logged.
    assert (run_dir / "server.log").read_text().count("--- start ") >= 4
    assert not _processes_in(run_dir)


def test_three_kills_on_postgresql_lose_nothing_and_drop_their_schema(tmp_path: Path) -> None:
    server_url = os.environ.get(POSTGRES_URL_ENV)
    if not server_url:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set")
    process = _crash("--kills", "3", "--seed", "5", "--clients", "2", "--database", server_url,
                     cwd=tmp_path)  # fmt: skip
    stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    assert process.returncode == 0, stdout + stderr
    assert "0 failed" in stdout, stdout
    (schema,) = re.findall(r"search_path%3D(dataex_crash_\w+)", stdout)
    engine = sqlalchemy.create_engine(server_url)
    try:
        with engine.connect() as connection:
            left = connection.execute(
                sqlalchemy.text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"),
                {"schema": schema},
            ).all()
    finally:
        engine.dispose()
    assert not left, f"schema {schema} was left behind"


def test_ctrl_c_kills_the_server_and_exits_130(tmp_path: Path) -> None:
    process = _crash("--kills", "50", "--seed", "4", "--clients", "2", cwd=tmp_path)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + RUN_TIMEOUT_S
        for line in process.stdout:  # wait until the flow runs against a server
            if line.startswith("server:") or time.monotonic() > deadline:
                break
        time.sleep(2.0)
        (run_dir,) = (tmp_path / "crash-results").iterdir()
        assert _processes_in(run_dir), "no server was running to be killed"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr, stderr
    assert not _processes_in(run_dir)


def test_bad_options_are_one_error_line_and_exit_2(tmp_path: Path) -> None:
    process = _crash("--kills", "0", cwd=tmp_path)
    _, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    assert process.returncode == 2, stderr
    assert "Traceback" not in stderr
    process = _crash("--kills", "1", "--database", "notaurl", cwd=tmp_path)
    _, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    assert process.returncode == 2, stderr
    assert "Traceback" not in stderr and "error:" in stderr, stderr


# -- the checker -----------------------------------------------------------------------------


def _order(order_id: int, **changes: Any) -> dict[str, Any]:
    order = {
        "order_id": order_id,
        "client_order_id": f"c1-{order_id}",
        "symbol": "LT-1",
        "side": "buy",
        "price": "99.00",
        "quantity": 3,
        "filled_quantity": 0,
        "status": "open",
    }
    return {**order, **changes}


def _submit(order_id: int, step: int, **answer: Any) -> RequestRecord:
    body = {"client_order_id": f"c1-{order_id}", "symbol": "LT-1", "side": "buy",
            "price": "99.00", "quantity": 3}  # fmt: skip
    return RequestRecord("submit", TRADER, step, order_id, body, 201, _order(order_id, **answer))


def _failed(checks: list[Any]) -> dict[str, str]:
    return {check.name: check.detail for check in checks if not check.ok}


def test_checker_fails_on_an_acknowledged_order_that_does_not_exist() -> None:
    final = {(TRADER, 1): _order(1)}
    failed = _failed(check_acknowledgements([_submit(1, 1), _submit(7, 2)], final))
    assert list(failed) == ["every acknowledged order is in the final state"]
    assert "order 7" in failed["every acknowledged order is in the final state"]
    assert "no such order" in failed["every acknowledged order is in the final state"]
    # The same acknowledgements, both kept: nothing fails.
    final[(TRADER, 7)] = _order(7)
    assert not _failed(check_acknowledgements([_submit(1, 1), _submit(7, 2)], final))


def test_checker_fails_on_a_cancel_undone_or_fills_gone_back() -> None:
    cancel = RequestRecord("cancel", TRADER, 2, 1, None, 200, _order(1, status="cancelled"))
    failed = _failed(check_acknowledgements([_submit(1, 1), cancel], {(TRADER, 1): _order(1)}))
    assert list(failed) == ["every acknowledged cancel is in the final state"]
    filled = _submit(2, 1, filled_quantity=2, status="partially_filled")
    failed = _failed(check_acknowledgements([filled], {(TRADER, 2): _order(2)}))
    assert (
        "0 filled, acknowledged 2 filled"
        in failed["every acknowledged order is in the final state"]
    )


def test_checker_takes_a_later_state_for_an_amend_but_not_an_earlier_one() -> None:
    amended = RequestRecord("amend", TRADER, 2, 1, {"price": "98.00", "quantity": 4}, 200,
                            _order(1, price="98.00", quantity=4))  # fmt: skip
    # The amendment lost: the order still shows what was submitted.
    failed = _failed(check_acknowledgements([_submit(1, 1), amended], {(TRADER, 1): _order(1)}))
    assert list(failed) == ["every acknowledged amend is in the final state"]
    # Filled since, at the amended terms: a later state.
    final = {(TRADER, 1): _order(1, price="98.00", quantity=4, filled_quantity=4,
                                 status="filled")}  # fmt: skip
    assert not _failed(check_acknowledgements([_submit(1, 1), amended], final))
    # A later amend whose answer a kill lost may have been journalled: a later state too.
    unanswered = RequestRecord("amend", TRADER, 3, 1, {"price": "97.00", "quantity": 5})
    final = {(TRADER, 1): _order(1, price="97.00", quantity=5)}
    assert not _failed(check_acknowledgements([_submit(1, 1), amended, unanswered], final))


def test_checker_fails_on_a_retry_answered_differently() -> None:
    original = _submit(1, 1)
    assert check_retries([(original, 201, _order(1))], "at once").ok
    other = check_retries([(original, 201, _order(2))], "at once")
    assert not other.ok and "c1-1" in other.detail
    assert not check_retries([(original, None, None)], "at once").ok
    assert not check_retries([], "at once").ok  # nothing retried proves nothing


def test_checker_fails_on_cash_or_licences_created_or_destroyed() -> None:
    balances = {
        ("external:cash", "cash"): -1_000,
        ("participant:a:cash", "cash"): 990,
        ("exchange:fees", "cash"): 10,
        ("instrument:LT-1:issued", "licence:LT-1"): -50,
        ("instrument:LT-1:issuance", "licence:LT-1"): 40,
        ("participant:a:licence:LT-1:9", "licence:LT-1"): 10,
    }
    kept = check_conservation(
        balances, deposits_minor=1_000, withdrawals_minor=0, issuance_units={"LT-1": 50}
    )
    assert all(check.ok for check in kept), kept
    lost = check_conservation(
        {**balances, ("participant:a:cash", "cash"): 989},
        deposits_minor=1_000,
        withdrawals_minor=0,
        issuance_units={"LT-1": 51},
    )
    assert [check.ok for check in lost] == [False, False]


def test_replay_check_compares_the_state_hash_with_recovery() -> None:
    output = (
        f"state hash:  {'ab' * 32}\nresult:      the replay reproduces the recorded settlement\n"
    )
    assert check_replay_output(0, output, "ab" * 32).ok
    assert not check_replay_output(0, output, "cd" * 32).ok
    assert not check_replay_output(1, output, "ab" * 32).ok


def test_kill_schedule_starts_under_load_holds_both_kinds_and_follows_the_seed() -> None:
    for kills in range(2, 12):
        kinds = kill_schedule(random.Random(kills), kills)
        assert len(kinds) == kills
        assert kinds[0] == UNDER_LOAD
        assert DURING_START_UP in kinds
    assert kill_schedule(random.Random(5), 1) == [UNDER_LOAD]
    assert kill_schedule(random.Random(9), 50) == kill_schedule(random.Random(9), 50)
