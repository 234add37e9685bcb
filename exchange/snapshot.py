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
from dataclasses import fields, is_dataclass
from types import ModuleType

import orjson

from exchange import (
    catalogue,
    collateral,
    commands,
    compliance,
    confidential,
    facility,
    haircut,
    marketdata,
    negotiated,
    orders,
    participants,
    publication,
    rfq,
    risk,
    service,
    settlement,
)
from exchange.service import Exchange
from exchange.state_codec import Codec
from ledger import entries
from ledger.rows import gc_paused
from matching import enums
from matching import state as engine_state

__all__ = ["dump_state", "load_state"]

# 2: the engine's objects pickled the same way in compiled and Python builds, so either
# build loaded the other's snapshots.
# 3: holds for open orders are risk state, and the exchange is split into its parts.
# 4: the engine keeps its level keys in chunks and its orders point at their levels.
# 5: a data-only JSON document instead of a pickle.
# 6: the exchange's slotted dataclasses as their constructors' arguments, without names.
# 7: confidential trading's requests, quotes, reports, trades and publications.
# 8: confidential requests, quotes and reports carry their client ids, kept for retries.
# 9: participants carry when they were disabled, and a revoked key as none.
# 10: loan facilities, pledges, valuations posted for marks, and alerts.
FORMAT = b"dataex-exchange-10:"

# The modules whose classes a snapshot may hold (besides the engine's, listed by the engine).
_STATE_MODULES: tuple[ModuleType, ...] = (
    catalogue, commands, compliance, marketdata, orders, participants, risk, service,
    settlement, entries, enums, confidential, rfq, negotiated, publication, collateral,
    facility, haircut,
)  # fmt: skip


def _classes_of(module: ModuleType) -> list[type]:
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__
    ]


def _built_from_fields(cls: type) -> bool:
    """Whether ``cls`` is a slotted dataclass whose every field is a constructor argument:
    its constructor given the fields in order rebuilds an object completely, with no names
    in the document and no attribute set one by one (orders, fills, commands: most of a
    snapshot's objects)."""
    return (
        is_dataclass(cls)
        and cls.__dictoffset__ == 0  # no attributes beyond the slots
        and all(field.init for field in fields(cls))
    )


_EXCHANGE_CLASSES = [cls for module in _STATE_MODULES for cls in _classes_of(module)]
_BUILT_FROM_FIELDS = [cls for cls in _EXCHANGE_CLASSES if _built_from_fields(cls)]


def _constructor_fields(cls: type) -> tuple[str, ...]:
    if cls in engine_state.VALUES:
        return engine_state.constructor_fields(cls)
    return tuple(field.name for field in fields(cls))


_CODEC = Codec(
    plain=[cls for cls in _EXCHANGE_CLASSES if cls not in _BUILT_FROM_FIELDS],
    values=[*engine_state.VALUES, *_BUILT_FROM_FIELDS],
    fields=_constructor_fields,
    mutable=engine_state.CONSTRUCTOR_ARGUMENTS,
    attributes=engine_state.attribute_names,
)


def dump_state(exchange: Exchange) -> bytes:
    # The collector paused: a document is hundreds of thousands of small lists, whose
    # allocation would trigger collections that walk the whole state, to free nothing.
    with gc_paused():
        document = orjson.dumps(_CODEC.encode(exchange))
    return FORMAT + zlib.compress(document, 1)


def load_state(state: bytes) -> Exchange:
    """The exchange a snapshot holds; ``ValueError`` if it is not one this code wrote."""
    if not state.startswith(FORMAT):
        raise ValueError("not a snapshot of this format")
    with gc_paused():  # as in dump_state
        try:
            document = orjson.loads(zlib.decompress(state[len(FORMAT) :]))
        except (zlib.error, orjson.JSONDecodeError) as error:
            raise ValueError(f"the snapshot is not a document: {error}") from None
        exchange = _CODEC.decode(document)
        del document
    if not isinstance(exchange, Exchange):
        raise ValueError("the snapshot holds no exchange")
    try:
        exchange.check_invariants()
    except Exception as error:
        raise ValueError(f"the snapshot's state breaks an invariant: {error!r}") from None
    return exchange
