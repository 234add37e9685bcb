"""The exchange's settings: one object, read from the environment once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ledger import database_url

__all__ = ["Settings"]

DEFAULT_RATE_LIMIT_PER_S = 500.0


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    rate_limit_per_s: float = DEFAULT_RATE_LIMIT_PER_S  # per API key, sustained
    rate_limit_burst: int = int(2 * DEFAULT_RATE_LIMIT_PER_S)
    max_page_size: int = 500
    max_book_depth: int = 50

    @classmethod
    def from_env(cls, database: str | None = None) -> Settings:
        """``DATAEX_DATABASE_URL`` (default SQLite ``dataex.db``) and ``DATAEX_RATE_LIMIT``
        (requests per second per key)."""
        rate = float(os.environ.get("DATAEX_RATE_LIMIT", DEFAULT_RATE_LIMIT_PER_S))
        return cls(
            database_url=database_url(database),
            rate_limit_per_s=rate,
            rate_limit_burst=max(1, int(rate * 2)),
        )
