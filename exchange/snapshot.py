"""The exchange's state as snapshot bytes, and back.

A snapshot is the whole :class:`~exchange.service.Exchange` (engine, books, catalogue,
participants, orders, holds, market data) pickled and compressed. Pickle runs code
when it loads, so a snapshot is exactly as trusted as the database that holds it; the ledger
returns only a snapshot whose SHA-256 and journal chain hash match, and recovery then checks
the rebuilt state against the ledger's balances as it does after a full replay. The format
is tied to the code that wrote it: a snapshot that does not load is ignored and the journal
is replayed from the start.
"""

from __future__ import annotations

import pickle
import zlib

from exchange.service import Exchange

__all__ = ["dump_state", "load_state"]

# 2: the engine's objects pickle through matching.pickling, the same in compiled and Python
# builds, so either build loads the other's snapshots.
# 3: holds for open orders are risk state, and the exchange is split into its parts.
# 4: the engine keeps its level keys in chunks and its orders point at their levels.
FORMAT = b"dataex-exchange-4:"


def dump_state(exchange: Exchange) -> bytes:
    return FORMAT + zlib.compress(pickle.dumps(exchange, protocol=pickle.HIGHEST_PROTOCOL), 1)


def load_state(state: bytes) -> Exchange:
    """The exchange a snapshot holds; ``ValueError`` if it is not one this code wrote."""
    if not state.startswith(FORMAT):
        raise ValueError("not a snapshot of this format")
    try:
        exchange = pickle.loads(zlib.decompress(state[len(FORMAT) :]))
    except Exception as error:
        raise ValueError(f"the snapshot does not load: {error}") from None
    if not isinstance(exchange, Exchange):
        raise ValueError("the snapshot holds no exchange")
    return exchange
