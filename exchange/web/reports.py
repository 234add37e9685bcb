"""Simulation and load-test reports, opened from the dashboard when the server is given their
directory (``dataex serve --reports DIR``).

A simulation's report is a directory holding ``index.html`` and ``summary.json``
(``dataex simulate --report``); a load test's holds ``report.md`` and ``chart.png`` (the
load-test runner, docs/benchmarks.md). :func:`find_reports` lists those under the directory,
itself included, down to :data:`MAX_DEPTH` levels; :func:`report_file` resolves a file of one,
refusing anything outside the directory and any kind of file reports do not hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["MEDIA_TYPES", "Report", "find_reports", "report_file"]

MAX_DEPTH: Final = 3
MAX_REPORTS: Final = 200
# The files a report holds, and how each is served (Markdown as plain text: it reads as is).
MEDIA_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".md": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".csv": "text/csv; charset=utf-8",
}
_KINDS: Final = (("simulation", "index.html"), ("load test", "report.md"))


@dataclass(frozen=True, slots=True)
class Report:
    kind: str  # "simulation" or "load test"
    path: str  # the report's directory, relative to the reports directory ("" for itself)
    main: str  # its page: the file to open first
    files: tuple[str, ...]  # every file of it the dashboard serves, by name
    modified: float  # the main file's modification time (seconds since the epoch)


def find_reports(base: Path) -> list[Report]:
    """The reports under ``base``, newest first, at most :data:`MAX_REPORTS`."""
    found: list[Report] = []
    for directory in _directories(base, MAX_DEPTH):
        for kind, main in _KINDS:
            page = directory / main
            if page.is_file():
                files = tuple(sorted(
                    f.name for f in directory.iterdir()
                    if f.is_file() and f.suffix in MEDIA_TYPES and not f.name.startswith(".")
                ))  # fmt: skip
                relative = directory.relative_to(base).as_posix()
                found.append(Report(kind, "" if relative == "." else relative, main, files,
                                    page.stat().st_mtime))  # fmt: skip
        if len(found) >= MAX_REPORTS:
            break
    return sorted(found, key=lambda r: r.modified, reverse=True)[:MAX_REPORTS]


def _directories(base: Path, depth: int) -> list[Path]:
    out = [base]
    if depth > 0:
        for child in sorted(base.iterdir()):
            # Not followed: a link could lead out of the directory, or round in a loop.
            if child.is_dir() and not child.is_symlink() and not child.name.startswith("."):
                out += _directories(child, depth - 1)
    return out


def report_file(base: Path, relative: str) -> Path | None:
    """The file ``relative`` names under ``base``, if it is one a report may hold; None for
    anything else (outside ``base``, a directory, a hidden file or another kind of file)."""
    candidate = (base / relative).resolve()
    root = base.resolve()
    if not candidate.is_relative_to(root) or candidate == root:
        return None
    parts = candidate.relative_to(root).parts
    if any(part.startswith(".") for part in parts) or candidate.suffix not in MEDIA_TYPES:
        return None
    return candidate if candidate.is_file() else None
