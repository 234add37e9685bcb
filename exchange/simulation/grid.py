"""Parameter grids: fields of a scenario file set to each of several values, for a sweep.

    dataex sweep scenarios/liquid.toml --seeds 1-4 \\
        --set participants.noise.count=10,20,40 --set agents.noise.activity=0.1,0.2

A setting names one field of the scenario file by a dotted path and gives the values it
takes, comma-separated. Tables are entered by name (``scenario.days``,
``terms.NX12C.duration_months``); an array of tables (``participants``, ``products``,
``listings``, ``agents``) by the index of an entry (from 0) or by a word that names exactly
one entry: its ``id``, its ``kind`` or its ``participants`` (``agents.noise`` is the agent
entry of kind, or of participants, ``noise``). Each value is read as a TOML value (``10``,
``0.2``, ``true``, ``"text"``, ``[0.8, 0.9]``); a bare word that is not one is text. Several
settings make a grid: every combination of their values is one point, and a sweep runs each
point once per seed.

Settings change the file's document before it is validated, so a setting is held to the
same rules, and named in the same messages, as the file itself.
"""

from __future__ import annotations

import copy
import itertools
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_GRID_POINTS", "Point", "Setting", "apply_point", "grid_points", "parse_setting"]

# Limit: combinations of values in one grid (a sweep runs each once per seed).
MAX_GRID_POINTS = 1_000
# Limit: values one setting takes.
MAX_VALUES = 100

# One point of a grid: each setting's key with one of its values, in the order given.
Point = tuple[tuple[str, Any], ...]

_KEY = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
# The fields that name an entry of an array of tables, in the order they are tried.
_NAMING_FIELDS = ("id", "kind", "participants")


@dataclass(frozen=True, slots=True)
class Setting:
    """One field (``key``, a dotted path) and the values it takes."""

    key: str
    values: tuple[Any, ...]


def parse_setting(text: str) -> Setting:
    """``"KEY=V1,V2"`` as a :class:`Setting`; ValueError naming what is wrong.

    >>> parse_setting("participants.noise.count=10,20,40")
    Setting(key='participants.noise.count', values=(10, 20, 40))
    >>> parse_setting("products.load.quality=[0.8, 0.9],0.95").values
    ([0.8, 0.9], 0.95)
    >>> parse_setting("listings.0.trading_mode=continuous,call_auction").values
    ('continuous', 'call_auction')
    """
    key, equals, values_text = text.partition("=")
    key = key.strip()
    if not equals:
        raise ValueError(f"{text!r} is not KEY=VALUE[,VALUE...]")
    if not _KEY.fullmatch(key):
        raise ValueError(f"{key!r} is not a dotted path of field names")
    parts = _split_values(values_text)
    if not parts or any(not part.strip() for part in parts):
        raise ValueError(f"{key}: an empty value")
    if len(parts) > MAX_VALUES:
        raise ValueError(f"{key}: at most {MAX_VALUES} values")
    values = tuple(_value(part.strip()) for part in parts)
    if len({repr(value) for value in values}) != len(values):
        raise ValueError(f"{key}: a value is given twice")
    return Setting(key, values)


def grid_points(settings: Sequence[Setting]) -> list[Point]:
    """Every combination of the settings' values, the last setting varying fastest; one
    empty point when there are no settings. ValueError for a key given twice or a grid
    over :data:`MAX_GRID_POINTS`.

    >>> grid_points([Setting("a", (1, 2)), Setting("b", ("x",))])
    [(('a', 1), ('b', 'x')), (('a', 2), ('b', 'x'))]
    """
    keys = [setting.key for setting in settings]
    for key in keys:
        if keys.count(key) > 1:
            raise ValueError(f"{key} is set twice")
    size = 1
    for setting in settings:
        size *= len(setting.values)
    if size > MAX_GRID_POINTS:
        raise ValueError(f"the grid has {size:,} points, at most {MAX_GRID_POINTS:,}")
    combinations = itertools.product(*(setting.values for setting in settings))
    return [tuple(zip(keys, values, strict=True)) for values in combinations]


def apply_point(document: dict[str, Any], point: Point) -> dict[str, Any]:
    """A copy of the TOML ``document`` with each of ``point``'s fields set; ``document`` is
    left as it was. ValueError (``"<key>: <what is wrong>"``) for a path that names nothing
    the file can hold."""
    changed = copy.deepcopy(document)
    for key, value in point:
        _set(changed, key, value)
    return changed


def _set(document: dict[str, Any], key: str, value: Any) -> None:
    *path, field = key.split(".")
    node: Any = document
    where = ""
    for part in path:
        if isinstance(node, list):
            node = node[_entry(node, part, key, where)]
        elif isinstance(node, dict):
            # A table the file leaves out is made, so a setting can give a default table's
            # field (``truth.noise_sd`` in a file without [truth]).
            node = node.setdefault(part, {})
        else:
            raise ValueError(f"{key}: {where} is a value, not a table")
        where = f"{where}.{part}" if where else part
    if isinstance(node, list):
        raise ValueError(f"{key}: names an entry of {where}, not a field")
    if not isinstance(node, dict):
        raise ValueError(f"{key}: {where} is a value, not a table")
    node[field] = value


def _entry(entries: list[Any], part: str, key: str, where: str) -> int:
    """The index of the entry of the array ``where`` that ``part`` names."""
    if part.isdigit():
        index = int(part)
        if index >= len(entries):
            raise ValueError(f"{key}: {where} has {len(entries)} entries")
        return index
    for field in _NAMING_FIELDS:
        found = [
            index
            for index, entry in enumerate(entries)
            if isinstance(entry, dict) and entry.get(field) == part
        ]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            indices = ", ".join(str(index) for index in found)
            raise ValueError(
                f"{key}: {part!r} is the {field} of entries {indices} of {where}: "
                f"name one by its index"
            )
    raise ValueError(f"{key}: no entry of {where} has the id, kind or participants {part!r}")


def _split_values(text: str) -> list[str]:
    """``text`` split at the commas outside brackets, braces and quotes."""
    parts, current, depth, quote = [], [], 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _value(text: str) -> Any:
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        # A bare word (``call_auction``) is meant as text; TOML would want it quoted.
        return text
