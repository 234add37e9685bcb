"""A graph of objects as plain JSON values, and back, for a fixed list of classes.

Snapshots are read from the database, so reading one must never be able to run code that
the snapshot chooses: this codec is the data-only replacement for pickle. A document holds
numbers, strings, booleans, null and lists; every object in it is a tagged list whose class
is looked up by name in the :class:`Codec`'s allow-list (never imported by name), and is
rebuilt in one of three ways, none of which runs anything the document names:

* a plain Python class: created with ``cls.__new__(cls)`` (no ``__init__``, no
  ``__setstate__``), then its attributes are set one by one; an attribute name that would
  shadow a method or property of the class is refused;
* a class whose objects are immutable values (the engine's commands, events and specs, which
  mypyc compiles and which cannot be created without ``__init__``): its constructor, called
  with the document's values;
* a mutable compiled class (the engine's books, levels and orders): its constructor with the
  arguments it takes, then the other attributes set, which must be exactly the class's.

Enums are rebuilt from their value, classes (as dictionary keys) from the allow-list, a
bound method as ``getattr`` of a function the object's class defines. Lists, dicts, sets,
deques and ``defaultdict`` (with ``list``, ``dict``, ``set`` or ``int`` as its factory) are
plain containers. Shared and cyclic references survive: every object and mutable container
has an id, and later mentions refer to it.

Anything else is refused with ``TypeError`` when writing and ``ValueError`` when reading,
so a document either rebuilds the objects the allow-list permits or nothing.
"""

from __future__ import annotations

import inspect
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from functools import cache
from types import FunctionType, MethodType
from typing import Any

__all__ = ["Codec"]

# Tags: the first item of every list in a document.
_LIST, _TUPLE, _DICT, _DEFAULTDICT, _SET, _FROZENSET, _DEQUE = "L", "T", "D", "DD", "S", "FS", "Q"
_ENUM, _CLASS, _OBJECT, _VALUE, _MUTABLE, _METHOD, _REF = "E", "C", "O", "V", "M", "F", "@"

_FACTORIES: dict[str, type] = {"list": list, "dict": dict, "set": set, "int": int}
_FACTORY_NAMES = {factory: name for name, factory in _FACTORIES.items()}
_PLAIN = (str, int, float, bool, type(None))


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class Codec:
    """Encode and decode object graphs made of the classes given, and plain containers.

    ``values``: classes rebuilt by calling them with their fields in order (``fields``
    gives the names). ``mutable``: classes rebuilt by calling them with the attributes
    named in the mapping, then setting the rest (``attributes`` lists every attribute of
    such a class). ``plain``: classes rebuilt without ``__init__`` (dataclasses, slotted or
    ordinary classes) and enums.
    """

    def __init__(
        self,
        *,
        plain: Iterable[type],
        values: Iterable[type] = (),
        fields: Callable[[type], tuple[str, ...]] = lambda cls: (),
        mutable: Mapping[type, tuple[str, ...]] | None = None,
        attributes: Callable[[type], tuple[str, ...]] = lambda cls: (),
    ) -> None:
        self._plain = set(plain)
        self._values = {cls: fields(cls) for cls in values}
        self._mutable = dict(mutable or {})
        self._attributes = {cls: attributes(cls) for cls in self._mutable}
        self._by_name = {
            _name(cls): cls for cls in (*self._plain, *self._values, *self._mutable)
        }
        assert len(self._by_name) == len(self._plain) + len(self._values) + len(self._mutable)
        self._names = {cls: name for name, cls in self._by_name.items()}
        # Per class, the attribute names a document may set on a plain object (a name that
        # would shadow a method or property may not): decided once per class and name.
        self._settable: dict[tuple[type, str], bool] = {}

    # -- writing ---------------------------------------------------------------------------

    def encode(self, root: object) -> Any:
        """The document for ``root``: plain values and lists only."""
        ids: dict[int, int] = {}
        keep: list[object] = []  # every object given an id stays alive until the end
        return self._encode(root, ids, keep)

    def _new_id(self, obj: object, ids: dict[int, int], keep: list[object]) -> int:
        ids[id(obj)] = number = len(ids)
        keep.append(obj)
        return number

    def _encode(self, obj: Any, ids: dict[int, int], keep: list[object]) -> Any:
        cls = type(obj)
        if cls in _PLAIN:
            return obj
        known = ids.get(id(obj))
        if known is not None:
            return [_REF, known]
        if isinstance(obj, Enum):
            self._check_allowed(cls)
            # Members are singletons: each is written once, then referred to.
            return [_ENUM, self._new_id(obj, ids, keep), self._names[cls], obj.value]
        if cls is type or isinstance(obj, type):
            self._check_allowed(obj)
            return [_CLASS, self._names[obj]]
        if cls is tuple:
            return [_TUPLE, [self._encode(item, ids, keep) for item in obj]]
        if cls is frozenset:
            return [_FROZENSET, [self._encode(item, ids, keep) for item in obj]]
        if cls is list:
            number = self._new_id(obj, ids, keep)
            encode = self._encode
            items = [item if type(item) in _PLAIN else encode(item, ids, keep) for item in obj]
            return [_LIST, number, items]
        if cls is set:
            number = self._new_id(obj, ids, keep)
            return [_SET, number, [self._encode(item, ids, keep) for item in obj]]
        if cls is deque:
            number = self._new_id(obj, ids, keep)
            items = [self._encode(item, ids, keep) for item in obj]
            return [_DEQUE, number, obj.maxlen, items]
        if cls is dict:
            number = self._new_id(obj, ids, keep)
            return [_DICT, number, self._pairs(obj, ids, keep)]
        if cls is defaultdict:
            factory = _FACTORY_NAMES.get(obj.default_factory)  # type: ignore[arg-type]
            if factory is None:
                raise TypeError(f"a defaultdict of {obj.default_factory!r} is not encodable")
            number = self._new_id(obj, ids, keep)
            return [_DEFAULTDICT, number, factory, self._pairs(obj, ids, keep)]
        if cls is MethodType:
            owner = obj.__self__
            self._check_method(type(owner), obj.__name__)
            return [_METHOD, self._encode(owner, ids, keep), obj.__name__]
        if cls in self._values:
            number = self._new_id(obj, ids, keep)
            args = [self._encode(getattr(obj, name), ids, keep) for name in self._values[cls]]
            return [_VALUE, number, self._names[cls], args]
        if cls in self._mutable:
            arguments = self._mutable[cls]
            number = self._new_id(obj, ids, keep)
            args = [self._encode(getattr(obj, name), ids, keep) for name in arguments]
            rest = {
                name: self._encode(getattr(obj, name), ids, keep)
                for name in self._attributes[cls]
                if name not in arguments
            }
            return [_MUTABLE, number, self._names[cls], args, rest]
        if cls in self._plain:
            number = self._new_id(obj, ids, keep)
            state = {
                name: value if type(value) in _PLAIN else self._encode(value, ids, keep)
                for name, value in _attributes_of(obj)
            }
            return [_OBJECT, number, self._names[cls], state]
        raise TypeError(f"a {_name(cls)} is not encodable")

    def _pairs(self, mapping: dict, ids: dict[int, int], keep: list[object]) -> list:
        encode = self._encode
        return [
            [key if type(key) in _PLAIN else encode(key, ids, keep),
             value if type(value) in _PLAIN else encode(value, ids, keep)]
            for key, value in mapping.items()
        ]  # fmt: skip

    def _check_allowed(self, cls: type) -> None:
        if cls not in self._names:
            raise TypeError(f"{_name(cls)} is not in the codec's classes")

    # -- reading ---------------------------------------------------------------------------

    def decode(self, document: Any) -> Any:
        """The objects ``document`` describes; ``ValueError`` if it is not a document of this
        codec's classes."""
        try:
            return self._decode(document, {})
        except ValueError:
            raise
        except (TypeError, KeyError, IndexError, AttributeError, AssertionError) as error:
            raise ValueError(f"not a document of these classes: {error!r}") from None

    def _decode(self, node: Any, objects: dict[int, Any]) -> Any:
        if type(node) in _PLAIN:
            return node
        if type(node) is not list or not node:
            raise ValueError(f"unexpected {type(node).__name__} in the document")
        tag = node[0]
        if tag == _REF:
            if node[1] not in objects:
                raise ValueError(f"a reference to object {node[1]!r} before it is defined")
            return objects[node[1]]
        if tag == _ENUM:
            cls = self._class(node[2])
            if not issubclass(cls, Enum):
                raise ValueError(f"{node[2]} is not an enum")
            return self._register(cls(node[3]), node[1], objects)
        if tag == _CLASS:
            return self._class(node[1])
        if tag == _TUPLE:
            return tuple(self._decode(item, objects) for item in node[1])
        if tag == _FROZENSET:
            return frozenset(self._decode(item, objects) for item in node[1])
        if tag == _LIST:
            items: list = self._register([], node[1], objects)
            items.extend(self._decode(item, objects) for item in node[2])
            return items
        if tag == _SET:
            members: set = self._register(set(), node[1], objects)
            members.update(self._decode(item, objects) for item in node[2])
            return members
        if tag == _DEQUE:
            queue: deque = self._register(deque(maxlen=node[2]), node[1], objects)
            queue.extend(self._decode(item, objects) for item in node[3])
            return queue
        if tag == _DICT:
            return self._fill(self._register({}, node[1], objects), node[2], objects)
        if tag == _DEFAULTDICT:
            factory = _FACTORIES[node[2]]
            return self._fill(self._register(defaultdict(factory), node[1], objects), node[3],
                              objects)  # fmt: skip
        if tag == _METHOD:
            owner = self._decode(node[1], objects)
            self._check_method(type(owner), node[2])
            return getattr(owner, node[2])
        if tag == _VALUE:
            cls = self._class(node[2])
            if cls not in self._values:
                raise ValueError(f"{node[2]} is not built from values")
            args = [self._decode(item, objects) for item in node[3]]
            if len(args) != len(self._values[cls]):
                raise ValueError(f"{node[2]} takes {len(self._values[cls])} values")
            return self._register(cls(*args), node[1], objects)
        if tag == _MUTABLE:
            return self._decode_mutable(node, objects)
        if tag == _OBJECT:
            return self._decode_object(node, objects)
        raise ValueError(f"unknown tag {tag!r}")

    def _decode_mutable(self, node: list, objects: dict[int, Any]) -> Any:
        _, number, name, raw_args, raw_rest = node
        cls = self._class(name)
        arguments = self._mutable.get(cls)
        if arguments is None:
            raise ValueError(f"{name} is not a mutable engine class")
        expected_rest = set(self._attributes[cls]) - set(arguments)
        if len(raw_args) != len(arguments) or set(raw_rest) != expected_rest:
            raise ValueError(f"a {name} with other attributes than this version's")
        obj = cls(*(self._decode(item, objects) for item in raw_args))
        self._register(obj, number, objects)
        for attribute, value in raw_rest.items():
            setattr(obj, attribute, self._decode(value, objects))
        return obj

    def _decode_object(self, node: list, objects: dict[int, Any]) -> Any:
        _, number, name, state = node
        cls = self._class(name)
        if cls not in self._plain or issubclass(cls, Enum):
            raise ValueError(f"{name} is not built from its attributes")
        if type(state) is not dict:
            raise ValueError(f"the attributes of a {name} are not a mapping")
        obj = self._register(cls.__new__(cls), number, objects)
        settable = self._settable
        for attribute, value in state.items():
            allowed = settable.get((cls, attribute))
            if allowed is None:
                allowed = settable[(cls, attribute)] = _may_set(cls, attribute)
            if not allowed:
                raise ValueError(f"{attribute!r} is not an attribute a {name} may have")
            object.__setattr__(
                obj, attribute, value if type(value) in _PLAIN else self._decode(value, objects)
            )
        return obj

    def _fill(self, mapping: dict, pairs: list, objects: dict[int, Any]) -> dict:
        for key, value in pairs:
            mapping[self._decode(key, objects)] = self._decode(value, objects)
        return mapping

    def _register(self, obj: Any, number: Any, objects: dict[int, Any]) -> Any:
        if type(number) is not int or number in objects:
            raise ValueError(f"object id {number!r} is not new")
        objects[number] = obj
        return obj

    def _class(self, name: Any) -> type:
        cls = self._by_name.get(name) if type(name) is str else None
        if cls is None:
            raise ValueError(f"{name!r} is not in the codec's classes")
        return cls

    def _check_method(self, cls: type, name: Any) -> None:
        if cls not in self._plain:
            raise ValueError(f"methods of {_name(cls)} are not encodable")
        if type(name) is not str or not isinstance(inspect.getattr_static(cls, name, None),
                                                   FunctionType):  # fmt: skip
            raise ValueError(f"{name!r} is not a method of {_name(cls)}")


# What an attribute read from a document may not replace on a plain class.
_BEHAVIOUR = (FunctionType, property, classmethod, staticmethod)


def _may_set(cls: type, attribute: str) -> bool:
    """Whether a document may set ``attribute`` on an object of ``cls``: an identifier, not
    a special name, and not one that would shadow a method or property."""
    return (
        attribute.isidentifier()
        and not attribute.startswith("__")
        and not isinstance(inspect.getattr_static(cls, attribute, None), _BEHAVIOUR)
    )


def _attributes_of(obj: object) -> Iterable[tuple[str, Any]]:
    """Every instance attribute of ``obj``: its ``__dict__`` and its slots."""
    attributes = getattr(obj, "__dict__", None)
    if attributes is not None:
        yield from attributes.items()
    for name in _slots(type(obj)):
        if hasattr(obj, name):
            yield name, getattr(obj, name)


@cache
def _slots(cls: type) -> tuple[str, ...]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__"):
                names.append(name)
    return tuple(names)
