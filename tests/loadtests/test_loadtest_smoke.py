"""``dataex loadtest`` end to end, briefly: every phase, every role, every post-run check.

A few users for a few seconds on SQLite: the figures mean nothing at this size, the checks
everything. The command runs as a user runs it (the console script, in a process of its own),
because the load generator monkey-patches its process with gevent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DATAEX = Path(sys.executable).parent / "dataex"
SMOKE_TIMEOUT_S = 120  # a run takes about 15 s; a hung one fails instead of hanging the suite
EVERY_ROLE = "trader=1,market_maker=1,viewer=1,valuer=1"


def test_short_load_test_passes_every_check(tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = subprocess.run(
        [
            str(DATAEX),
            "loadtest",
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
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error:" not in result.stderr, result.stderr

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert [phase["name"] for phase in summary["phases"]] == ["bare", "edge", "orders", "mixed"]
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
    for name in ("bare", "edge", "orders", "mixed"):
        assert (out / f"{name}_stats.csv").read_text(encoding="utf-8").startswith("Type,Name")


def test_bad_duration_is_an_error_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(DATAEX), "loadtest", "--duration", "forever", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 2
    assert "is not a duration" in result.stderr
    assert "Traceback" not in result.stderr
