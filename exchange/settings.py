"""The exchange's settings: one object, read from the environment once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ledger.database import database_url

__all__ = ["Settings"]

DEFAULT_RATE_LIMIT_PER_S = 500.0
JOURNAL_WRITERS = ("inline", "process")


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    rate_limit_per_s: float = DEFAULT_RATE_LIMIT_PER_S  # per API key, sustained
    rate_limit_burst: int = int(2 * DEFAULT_RATE_LIMIT_PER_S)
    # Where batches are made durable: the sequencer's thread (the default), or a process of
    # their own, pipelined. The process measured no faster on two cores: the interpreter's
    # lock hand-over between the answering, client and sequencer threads eats the overlap
    # (docs/benchmarks.md), so it is an option, not the default.
    journal_writer: str = "inline"
    # The witness file the server checks the database against at start and appends its
    # checkpoints to (ledger.witness); None keeps none. ``dataex serve`` sets it to
    # ``ledger.witness.default_witness_path`` unless told otherwise (--witness, --no-witness).
    witness_path: str | None = None
    # A directory of simulation and load-test reports the dashboard opens at /reports
    # (exchange/web/reports.py); None: none. ``dataex serve --reports DIR`` sets it.
    reports_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.rate_limit_per_s > 0 or self.rate_limit_burst < 1:
            raise ValueError(
                f"the rate limit must be a positive number of requests per second with a "
                f"burst of at least 1, not {self.rate_limit_per_s} and {self.rate_limit_burst}"
            )
        if self.journal_writer not in JOURNAL_WRITERS:
            raise ValueError(
                f"the journal writer is one of {', '.join(JOURNAL_WRITERS)}, "
                f"not {self.journal_writer!r}"
            )

    @classmethod
    def from_env(cls, database: str | None = None) -> Settings:
        """``DATAEX_DATABASE_URL`` (default SQLite ``dataex.db``), ``DATAEX_RATE_LIMIT``
        (requests per second per key) and ``DATAEX_JOURNAL_WRITER`` (inline or process)."""
        text = os.environ.get("DATAEX_RATE_LIMIT", str(DEFAULT_RATE_LIMIT_PER_S))
        try:
            rate = float(text)
        except ValueError:
            raise ValueError(f"DATAEX_RATE_LIMIT={text!r} is not a number") from None
        return cls(
            database_url=database_url(database),
            rate_limit_per_s=rate,
            rate_limit_burst=max(1, int(rate * 2)),
            journal_writer=os.environ.get("DATAEX_JOURNAL_WRITER", "inline"),
        )
