"""``python -m loadtests`` end to end, briefly: every phase, every role, every post-run check.

A few users for a few seconds on SQLite: the figures mean nothing at this size, the checks
everything. The command runs as a newcomer runs it, in a process of its own (the load
generator monkey-patches its process with gevent), from a directory outside the checkout with
the checkout on ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
SMOKE_TIMEOUT_S = 120  # a run takes about 15 s; a hung one fails instead of hanging the suite
EVERY_ROLE = "trader=1,market_maker=1,viewer=1,valuer=1"


def _loadtests(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m loadtests ARGS`` run from ``cwd`` with the checkout on ``PYTHONPATH``."""
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT)}
    return subprocess.run(
        [sys.executable, "-m", "loadtests", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_S,
        check=False,
    )


def _untracked(checkout: Path) -> set[str]:
    """Files in the checkout that git does not track and does not ignore."""
    listed = subprocess.run(
        ["git", "-C", str(checkout), "ls-files", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(listed.stdout.splitlines())


def test_short_load_test_from_elsewhere_passes_every_check_and_writes_only_there(
    tmp_path: Path,
) -> None:
    untracked_before = _untracked(CHECKOUT)
    # No --out: the default, relative, is the working directory's.
    result = _loadtests(
        "--users",
        "4",
        "--spawn-rate",
        "20",
        "--duration",
        "5s",
        "--steps",
        "1",
        "--mix",
        EVERY_ROLE,
        "--rates",
        "trader=20,market_maker=20,viewer=20,valuer=2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error:" not in result.stderr, result.stderr
    out = tmp_path / "loadtest-results"
    assert f"report: {out / 'report.md'}" in result.stdout
    # Others may add files to a shared checkout meanwhile: look for the run's own names only.
    written = {path.name for path in out.iterdir()} | {"loadtest-results", "loadtest.db"}
    new_files = _untracked(CHECKOUT) - untracked_before
    assert not [path for path in new_files if set(Path(path).parts) & written], new_files

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert [phase["name"] for phase in summary["phases"]] == [
        "bare", "edge", "orders", "mixed", "ws-orders"]  # fmt: skip
    edge = summary["phases"][1]
    # The edge answers every order as resting.
    assert set(edge["statuses"]) == {"POST /v1/loadtest/order-edge"}, edge["statuses"]
    assert set(edge["statuses"]["POST /v1/loadtest/order-edge"]) == {"201"}, edge["statuses"]
    mixed = summary["phases"][3]
    seen = set(mixed["statuses"])
    # Traders and market makers trade, viewers read market data, valuers value.
    assert {
        "POST /v1/orders",
        "PATCH /v1/orders/{id}",
        "GET /v1/fills",
        "GET /v1/market/{symbol}/book",
        "POST /v1/valuations",
    } <= seen, seen
    # The session's traders place orders, acknowledged (as journalled) like REST's.
    assert "WS new_order" in summary["phases"][4]["statuses"], summary["phases"][4]
    assert summary["phases"][4]["statuses"]["WS new_order"].get("200", 0) > 0
    for phase in summary["phases"]:
        assert phase["windows"][-1]["total"]["requests"] > 0, phase["name"]
        assert not any(int(s) >= 500 for st in phase["statuses"].values() for s in st), phase
    assert summary["acked_orders"] > 0

    report = (out / "report.md").read_text(encoding="utf-8")
    assert "FAILED" not in report
    for check in (
        "the ledger verifies",
        "every acknowledged order is in the journal",
        "no response was a 5xx",
        "cash is conserved",
        "licence units are conserved",
    ):
        assert f"| {check}" in report, check
    assert (out / "chart.png").read_bytes().startswith(b"\x89PNG")
    assert "The order endpoint's edge without the exchange" in report
    for name in ("bare", "edge", "orders", "mixed", "ws-orders"):
        assert (out / f"{name}_stats.csv").read_text(encoding="utf-8").startswith("Type,Name")


def test_bad_duration_is_an_error_line_and_exit_2(tmp_path: Path) -> None:
    result = _loadtests("--duration", "forever", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: 'forever' is not a duration such as 60s or 2m"
    assert not (tmp_path / "loadtest-results").exists()


def test_unknown_phase_is_an_error_line_and_exit_2(tmp_path: Path) -> None:
    result = _loadtests("--phases", "orders,ws", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: phases are some of bare, edge, orders, mixed, ws-orders, not ws"
    )


def test_help_names_the_subcommands_and_run_takes_the_options(tmp_path: Path) -> None:
    top = _loadtests("--help", cwd=tmp_path)
    assert top.returncode == 0, top.stderr
    for command in ("run", "serve", "locustfile"):
        assert command in top.stdout
    run = _loadtests("run", "--help", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "--duration" in run.stdout and "--profile-server" in run.stdout
    assert "<bool>" not in top.stdout + run.stdout


def test_locustfile_is_the_packages_own(tmp_path: Path) -> None:
    result = _loadtests("locustfile", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == CHECKOUT / "loadtests" / "locustfile.py"
