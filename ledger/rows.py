"""Fast reads and bulk work: driver-level row streams, and pausing the garbage collector."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from itertools import chain
from typing import Any

from sqlalchemy.engine import Connection

__all__ = ["gc_paused", "iter_rows", "seq_bounds"]

_STREAM_CHUNK_ROWS = 10_000


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a bulk append or a verification pass.

    Both allocate many short-lived acyclic tuples and bytes, which trigger collections that
    walk every object of the process and cost a third of the append rate (measured); the
    collector resumes afterwards. Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def iter_rows(
    connection: Connection, sql: str, *, binary: bool = False
) -> Iterator[tuple[Any, ...]]:
    """Stream the rows of ``sql`` as plain tuples through the driver's own cursor.

    The hot read path of verification: it skips SQLAlchemy's row objects, and on PostgreSQL
    uses a server-side cursor so memory stays bounded whatever the ledger's size.
    ``binary`` asks PostgreSQL for its binary format, which is cheaper to load for integers
    and ``bytea`` (the entry rows: 72 ms -> 44 ms for 22,000 rows) and dearer for text (the
    posting rows: 78 ms -> 123 ms); SQLite ignores it.
    """
    driver_connection = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        cursor = driver_connection.cursor(name=f"ledger_{uuid.uuid4().hex}", binary=binary)
        cursor.itersize = _STREAM_CHUNK_ROWS
    else:
        cursor = driver_connection.cursor()
    cursor.execute(sql)
    # Chunks are fetched and flattened in C; the cursor closes with its transaction.
    return chain.from_iterable(iter(partial(cursor.fetchmany, _STREAM_CHUNK_ROWS), []))


def seq_bounds(column: str, low: int | None = None, high: int | None = None) -> str:
    """`` WHERE column >= low AND column <= high`` for the bounds given, or nothing.

    The integers are formatted into the text: the drivers disagree on placeholders, and the
    bounds are sequence numbers the caller computed, never outside input.
    """
    bounds = ([f"{column} >= {int(low)}"] if low is not None else []) + (
        [f"{column} <= {int(high)}"] if high is not None else []
    )
    return f" WHERE {' AND '.join(bounds)}" if bounds else ""
