"""How the engine's objects are taken apart and rebuilt as plain values, compiled or not.

Snapshots hold the engine as data (see ``exchange.snapshot``). Compiled classes cannot be
created without running ``__init__``, and the read-only fields of compiled commands, events
and specs refuse attribute writes after it, so each class is rebuilt through its constructor:
an immutable value with all its fields as arguments, a mutable object with the arguments
listed here and then its other attributes set. Both builds describe their objects the same
way, so either reads the other's snapshots.
"""

from __future__ import annotations

import dataclasses

from matching import commands, events
from matching.auction import Clearing
from matching.book import Book, HalfBook, Level, Order
from matching.engine import Engine
from matching.instrument import InstrumentSpec
from matching.levelkeys import LevelKeys

__all__ = ["CONSTRUCTOR_ARGUMENTS", "VALUES", "attribute_names", "constructor_fields"]

# Immutable values: every field is a constructor argument, in order.
VALUES: tuple[type, ...] = (
    *(cls for cls in vars(commands).values()
      if dataclasses.is_dataclass(cls) and cls.__module__ == commands.__name__),
    *(cls for cls in vars(events).values()
      if dataclasses.is_dataclass(cls) and cls.__module__ == events.__name__),
    InstrumentSpec,
    Clearing,
)  # fmt: skip

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


def constructor_fields(cls: type) -> tuple[str, ...]:
    """The fields of an immutable value, in the order its constructor takes them."""
    return tuple(field.name for field in dataclasses.fields(cls))  # type: ignore[arg-type]


def attribute_names(cls: type) -> tuple[str, ...]:
    """Every attribute of a mutable engine class."""
    # A compiled class lists its attributes in ``__mypyc_attrs__`` and drops ``__slots__``.
    return getattr(cls, "__mypyc_attrs__", None) or cls.__slots__  # type: ignore[attr-defined]
