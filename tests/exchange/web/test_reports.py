"""``/reports``: the simulation and load-test reports under the directory ``dataex serve
--reports DIR`` names, listed and served; nothing outside it, nothing else in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.exchange.api.helpers import serve
from tests.exchange.serverproc import free_port
from tests.exchange.test_cli_errors import dataex, one_error_line

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    """A simulation's report and a load test's, laid out as ``dataex simulate --report`` and
    ``python -m loadtests`` write them, and files that are no report's."""
    base = tmp_path / "reports"
    simulation = base / "thin-7"
    simulation.mkdir(parents=True)
    (simulation / "index.html").write_text("<!doctype html><title>thin, seed 7</title>")
    (simulation / "summary.json").write_text('{"seed": 7}')
    load = base / "load" / "2026-12-01"
    load.mkdir(parents=True)
    (load / "report.md").write_text("# Load test\n\n1,512 orders/s\n")
    (load / "chart.png").write_bytes(PNG_MAGIC)
    (load / "locust.log").write_text("not served")
    (base / "notes").mkdir()
    (base / "notes" / "todo.html").write_text("<p>no report</p>")
    (tmp_path / "secret.json").write_text("{}")
    return base


def test_the_reports_are_listed_and_served(database_url: str, reports: Path):
    with serve(database_url, reports_dir=str(reports)) as api:
        page = api.client.get("/reports")
        assert page.status_code == 200
        assert 'href="/reports/files/thin-7/index.html"' in page.text
        assert 'href="/reports/files/load/2026-12-01/report.md"' in page.text
        assert "load/2026-12-01/chart.png" in page.text and "simulation" in page.text
        assert "notes" not in page.text and "locust.log" not in page.text
        html = api.client.get("/reports/files/thin-7/index.html")
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        markdown = api.client.get("/reports/files/load/2026-12-01/report.md")
        assert markdown.headers["content-type"].startswith("text/plain")
        assert "1,512 orders/s" in markdown.text
        assert api.client.get("/reports/files/load/2026-12-01/chart.png").content == PNG_MAGIC


@pytest.mark.parametrize("path", [
    "load/2026-12-01/locust.log", "thin-7", "../secret.json", "thin-7/../../secret.json",
    "%2e%2e/secret.json", "missing/index.html",
])  # fmt: skip
def test_nothing_else_is_served(database_url: str, reports: Path, path: str):
    with serve(database_url, reports_dir=str(reports)) as api:
        response = api.client.get(f"/reports/files/{path}")
        assert response.status_code == 404, (path, response.text)


def test_without_a_directory_the_page_says_how_to_give_one(database_url: str):
    with serve(database_url) as api:
        assert "--reports DIR" in api.client.get("/reports").text
        assert api.client.get("/reports/files/index.html").status_code == 404


def test_serve_refuses_a_reports_directory_that_is_not_one(tmp_path: Path):
    line = one_error_line(dataex(
        "serve", "--port", str(free_port()), "--database", f"sqlite:///{tmp_path / 'x.db'}",
        "--reports", str(tmp_path / "missing"),
    ))  # fmt: skip
    assert "--reports" in line and "not a directory" in line
