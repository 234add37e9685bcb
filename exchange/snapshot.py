"""The exchange's state as snapshot bytes, and back.

A snapshot is the whole :class:`~exchange.service.Exchange` (engine, books, catalogue,
participants, orders, holds, market data) as a data-only document: JSON built by
:class:`~exchange.state_codec.Codec` from the classes of the modules listed here, compressed.
Reading one runs no code the snapshot chooses (a snapshot is read from the database, which
others may write to); it rebuilds objects of those classes only, then checks the rebuilt
state's invariants, and recovery checks it against the ledger's balances as it does after a
full replay. The format is tied to the code that wrote it: a snapshot that does not load is
ignored and the journal is replayed from the start.
"""

from __future__ import annotations

import inspect
import zlib
from types import ModuleType

import orjson

from exchange import (
    catalogue,
    commands,
    compliance,
    marketdata,
    orders,
    participants,
    risk,
    service,
    settlement,
)
from exchange.service import Exchange
from exchange.state_codec import Codec
from ledger import entries
from matching import enums
from matching import state as engine_state

__all__ = ["dump_state", "load_state"]

# 2: the engine's objects pickle through matching.pickling, the same in compiled and Python
# builds, so either build loads the other's snapshots.
# 3: holds for open orders are risk state, and the exchange is split into its parts.
# 4: the engine keeps its level keys in chunks and its orders point at their levels.
# 5: a data-only JSON document instead of a pickle.
FORMAT = b"dataex-exchange-5:"

# The modules whose classes a snapshot may hold (besides the engine's, listed by the engine).
_STATE_MODULES: tuple[ModuleType, ...] = (
    catalogue, commands, compliance, marketdata, orders, participants, risk, service,
    settlement, entries, enums,
)  # fmt: skip


def _classes_of(module: ModuleType) -> list[type]:
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__
    ]


_CODEC = Codec(
    plain=[cls for module in _STATE_MODULES for cls in _classes_of(module)],
    values=engine_state.VALUES,
    fields=engine_state.constructor_fields,
    mutable=engine_state.CONSTRUCTOR_ARGUMENTS,
    attributes=engine_state.attribute_names,
)


def dump_state(exchange: Exchange) -> bytes:
    document = orjson.dumps(_CODEC.encode(exchange))
    return FORMAT + zlib.compress(document, 1)


def load_state(state: bytes) -> Exchange:
    """The exchange a snapshot holds; ``ValueError`` if it is not one this code wrote."""
    if not state.startswith(FORMAT):
        raise ValueError("not a snapshot of this format")
    try:
        document = orjson.loads(zlib.decompress(state[len(FORMAT) :]))
    except (zlib.error, orjson.JSONDecodeError) as error:
        raise ValueError(f"the snapshot is not a document: {error}") from None
    exchange = _CODEC.decode(document)
    if not isinstance(exchange, Exchange):
        raise ValueError("the snapshot holds no exchange")
    try:
        exchange.check_invariants()
    except Exception as error:
        raise ValueError(f"the snapshot's state breaks an invariant: {error!r}") from None
    return exchange
