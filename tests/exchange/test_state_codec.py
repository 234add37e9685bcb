"""The data-only codec of snapshots: what it rebuilds, and what a document cannot make it do."""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from enum import StrEnum

import pytest

from exchange.state_codec import Codec


class Colour(StrEnum):
    RED = "red"


@dataclass(slots=True)
class Node:
    name: str
    children: list[Node]
    parent: Node | None = None


class Holder:
    def __init__(self) -> None:
        self.by_colour: defaultdict[Colour, list[int]] = defaultdict(list)
        self.recent: deque[int] = deque(maxlen=3)
        self.keys = {Colour: "class as a key", (1, "a"): frozenset({2})}
        self.handler = self.act

    def act(self) -> str:
        return "acted"


CODEC = Codec(plain=[Colour, Node, Holder])


def test_shared_and_cyclic_references_survive() -> None:
    root = Node("root", [])
    child = Node("child", [], parent=root)
    root.children += [child, child]
    copy = CODEC.decode(CODEC.encode(root))
    assert copy is not root and copy.name == "root"
    assert copy.children[0] is copy.children[1]
    assert copy.children[0].parent is copy


def test_containers_enums_classes_and_bound_methods_survive() -> None:
    holder = Holder()
    holder.by_colour[Colour.RED].append(1)
    holder.recent.extend([1, 2, 3, 4])
    copy = CODEC.decode(CODEC.encode(holder))
    assert copy.by_colour == {Colour.RED: [1]} and copy.by_colour.default_factory is list
    assert list(copy.recent) == [2, 3, 4] and copy.recent.maxlen == 3
    assert copy.keys == holder.keys
    assert copy.handler.__self__ is copy and copy.handler() == "acted"


@pytest.mark.parametrize(
    "value",
    [
        defaultdict(lambda: 0),
        object(),
        Holder().act.__func__,
        print,
    ],
)
def test_values_outside_the_classes_are_not_written(value: object) -> None:
    with pytest.raises(TypeError):
        CODEC.encode(value)


@pytest.mark.parametrize(
    "document",
    [
        ["O", 0, "builtins.object", {}],  # a class not in the codec's list
        ["O", 0, "tests.exchange.test_state_codec.Holder", {"act": 1}],  # replaces a method
        ["O", 0, "tests.exchange.test_state_codec.Holder", {"__class__": 1}],
        ["F", ["O", 0, "tests.exchange.test_state_codec.Holder", {}], "__init_subclass__"],
        ["F", ["O", 0, "tests.exchange.test_state_codec.Holder", {}], "__dict__"],
        ["DD", 0, "eval", []],  # a factory other than list, dict, set, int
        ["@", 7],  # a reference to nothing
        ["L", 0, [["L", 0, []]]],  # an id used twice
        ["E", 0, "tests.exchange.test_state_codec.Node", "red"],  # not an enum
        ["?", 1],
        {"not": "a list"},
    ],
)
def test_a_forged_document_is_refused(document: object) -> None:
    with pytest.raises(ValueError):
        CODEC.decode(document)
