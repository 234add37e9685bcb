"""The engine benchmark times both books, or one alone for a profiler attached from outside."""

from __future__ import annotations

import pytest

from loadtests.bench_engine import main


def test_both_books_alternate_and_the_ratio_is_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["--operations", "3000", "--runs", "2"])
    out = capsys.readouterr().out
    runs = [line.split()[2] for line in out.splitlines() if line.startswith("  run ")]
    assert runs == ["engine", "naive", "naive", "engine"]
    assert "ratio engine/naive (median of 2)" in out


@pytest.mark.parametrize("book", ["engine", "naive"])
def test_only_one_book_runs_it_alone(book: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--operations", "3000", "--runs", "2", "--only", book])
    out = capsys.readouterr().out
    runs = [line.split()[2] for line in out.splitlines() if line.startswith("  run ")]
    assert runs == [book, book]
    assert f"{book} median:" in out
    assert "ratio" not in out
