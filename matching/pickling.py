"""How the engine's objects pickle, whether mypyc compiled them or not.

The exchange snapshots its whole state with pickle. Compiled classes cannot be created
without running ``__init__``, and the read-only fields of compiled events, commands and specs
refuse the attribute writes of pickle's default restore, so each class here pickles as a
constructor call plus, for the mutable ones, the attributes to set afterwards (the same code
path in both builds, so either loads the other's pickles). A mutable object pickled with
other attributes than its class now has (by an older engine) is refused at load with a
``ValueError``, rather than loaded half-formed.
"""

from __future__ import annotations

import copyreg
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from matching.auction import Clearing
from matching.book import Book, HalfBook, Level, Order
from matching.commands import (
    AddInstrument,
    AmendOrder,
    CancelOrder,
    Expire,
    SetPhase,
    SubmitOrder,
    Uncross,
)
from matching.engine import Engine
from matching.events import (
    Accepted,
    Amended,
    AuctionResult,
    BookChanged,
    Cancelled,
    InstrumentAdded,
    PhaseChanged,
    Rejected,
    Trade,
)
from matching.instrument import InstrumentSpec
from matching.levelkeys import LevelKeys

READ_ONLY = (  # every field is a constructor argument, in order
    Accepted,
    AddInstrument,
    AmendOrder,
    Amended,
    AuctionResult,
    BookChanged,
    CancelOrder,
    Cancelled,
    Clearing,
    Expire,
    InstrumentAdded,
    InstrumentSpec,
    PhaseChanged,
    Rejected,
    SetPhase,
    SubmitOrder,
    Trade,
    Uncross,
)

# Mutable classes: the attributes their constructor takes (it sets the others to defaults).
CONSTRUCTOR_ARGUMENTS: dict[type, tuple[str, ...]] = {
    Order: (
        "order_id",
        "participant",
        "symbol",
        "side",
        "price",
        "quantity",
        "tif",
        "expire_ts",
        "stp",
        "is_market",
        "post_only",
        "priority",
    ),
    Level: ("price", "key"),
    LevelKeys: (),
    HalfBook: ("side",),
    Book: ("spec", "phase"),
    Engine: (),
}


def _reduce_read_only(obj: Any) -> tuple[type, tuple[Any, ...]]:
    return type(obj), tuple(getattr(obj, f.name) for f in fields(obj))


def _attribute_names(cls: type) -> tuple[str, ...]:
    # A compiled class lists its attributes in ``__mypyc_attrs__`` and drops ``__slots__``.
    return getattr(cls, "__mypyc_attrs__", None) or cls.__slots__  # type: ignore[attr-defined]


def _set_attributes(obj: Any, state: dict[str, Any]) -> None:
    cls = type(obj)
    expected = set(_attribute_names(cls)) - set(CONSTRUCTOR_ARGUMENTS[cls])
    if set(state) != expected:
        raise ValueError(f"a {cls.__name__} pickled by another version of the engine")
    for name, value in state.items():
        setattr(obj, name, value)


def _reduce_mutable(obj: Any) -> tuple[Any, ...]:
    cls = type(obj)
    arguments = CONSTRUCTOR_ARGUMENTS[cls]
    state = {name: getattr(obj, name) for name in _attribute_names(cls) if name not in arguments}
    args = tuple(getattr(obj, name) for name in arguments)
    return cls, args, state, None, None, _set_attributes


def register() -> None:
    reducers: list[tuple[type, Callable[[Any], tuple[Any, ...]]]] = [
        *((cls, _reduce_read_only) for cls in READ_ONLY),
        *((cls, _reduce_mutable) for cls in CONSTRUCTOR_ARGUMENTS),
    ]
    for cls, reducer in reducers:
        copyreg.pickle(cls, reducer)
