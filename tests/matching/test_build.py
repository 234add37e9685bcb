"""The engine as installed: compiled by mypyc (unless built as Python), and written to and
read from a data-only document either way.

Exchange snapshots hold the engine whole (``exchange/state_codec.py``, with the classes
``matching/state.py`` describes), so a restored engine must carry on exactly as the original
would have, whichever build wrote it.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import matching
from exchange.state_codec import Codec
from loadtests.bench_engine import SYMBOL, generate_stream
from matching import (
    AddInstrument,
    Cancelled,
    CancelReason,
    Engine,
    Event,
    InstrumentAdded,
    InstrumentSpec,
    OrderType,
    Phase,
    PhaseChanged,
    SealedBidPricing,
    Side,
    SubmitOrder,
    TimeInForce,
    Trade,
    TradingMode,
    enums,
    event_to_dict,
    is_compiled,
    state,
)

# setup.py compiles every module of the package but this one.
INTERPRETED = {"state"}
PURE_BUILD = os.environ.get("DATAEX_PURE_PYTHON") == "1"
# The engine's part of the snapshot codec: its enums, values and mutable classes.
ENGINE_CODEC = Codec(
    plain=[cls for cls in vars(enums).values() if isinstance(cls, type)
           and cls.__module__ == enums.__name__],
    values=state.VALUES,
    fields=state.constructor_fields,
    mutable=state.CONSTRUCTOR_ARGUMENTS,
    attributes=state.attribute_names,
)  # fmt: skip


def round_trip(value: object) -> object:
    """``value`` written as a document, through JSON, and read back."""
    return ENGINE_CODEC.decode(orjson.loads(orjson.dumps(ENGINE_CODEC.encode(value))))


@pytest.mark.skipif(PURE_BUILD, reason="installed with DATAEX_PURE_PYTHON=1")
def test_the_installed_engine_is_compiled() -> None:
    assert is_compiled()
    sources = Path(matching.__file__).parent.glob("*.py")
    names = [path.stem for path in sources if path.stem not in INTERPRETED]
    assert "engine" in names and "events" in names
    for name in names:
        module = importlib.import_module("matching" if name == "__init__" else f"matching.{name}")
        assert not module.__file__.endswith(".py"), f"{module.__name__} runs as Python"


# Runs in a child process whose ``matching`` is a copy of the sources alone.
EVENTS_OF_A_STREAM = """
import json, sys
from loadtests.bench_engine import SYMBOL, generate_stream
from matching import AddInstrument, Engine, InstrumentSpec, Phase, event_to_dict, is_compiled
from tests.matching.test_build import ENGINE_CODEC
assert not is_compiled()
engine = Engine()
engine.apply(AddInstrument(0, 0, InstrumentSpec(SYMBOL), Phase.CONTINUOUS))
events = [event_to_dict(e) for c in generate_stream(6_000, 11)[:3_000] for e in engine.apply(c)]
json.dump({"events": events, "engine": ENGINE_CODEC.encode(engine)}, sys.stdout, default=str)
"""


@pytest.mark.skipif(PURE_BUILD, reason="installed with DATAEX_PURE_PYTHON=1")
def test_the_python_build_gives_the_compiled_builds_events_and_snapshots(tmp_path: Path) -> None:
    # A journal written by either build must replay on the other, event for event.
    source = Path(matching.__file__).parent
    shutil.copytree(source, tmp_path / "matching", ignore=shutil.ignore_patterns("*.so"))
    repository = source.parent
    result = subprocess.run(
        [sys.executable, "-c", EVENTS_OF_A_STREAM],
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{repository}"},
        cwd=tmp_path,  # not the repository, whose compiled matching would come first
        capture_output=True,
        text=True,
        check=True,
    )
    engine = Engine()
    engine.apply(AddInstrument(0, 0, InstrumentSpec(SYMBOL), Phase.CONTINUOUS))
    stream = generate_stream(6_000, 11)
    compiled = [event_to_dict(e) for c in stream[:3_000] for e in engine.apply(c)]
    interpreted = json.loads(result.stdout)
    assert len(interpreted["events"]) > 3_000
    assert interpreted["events"] == json.loads(json.dumps(compiled, default=str))
    # The Python build's engine loads here and carries on as the compiled one does.
    restored = ENGINE_CODEC.decode(interpreted["engine"])
    restored.check_invariants()
    assert restored.depth(SYMBOL, 100) == engine.depth(SYMBOL, 100)
    for command in stream[3_000:]:
        assert restored.apply(command) == engine.apply(command)


def _engine_with_every_kind_of_state(commands: list) -> Engine:
    """A continuous book from ``commands``, plus a pre-open book holding a market order and a
    GTD order, and a sealed-bid book holding a bid."""
    engine = Engine()
    engine.apply(AddInstrument(0, 0, InstrumentSpec(SYMBOL), Phase.CONTINUOUS))
    engine.apply(AddInstrument(0, 0, InstrumentSpec("OPEN"), Phase.PRE_OPEN))
    sealed = InstrumentSpec(
        "SEALED",
        trading_mode=TradingMode.SEALED_BID,
        sealed_bid_pricing=SealedBidPricing.SECOND_PRICE,
    )
    engine.apply(AddInstrument(0, 0, sealed, Phase.PRE_OPEN))
    for command in commands:
        engine.apply(command)
    base = 10_000_000
    engine.apply(SubmitOrder(1, 5, base, "m", "OPEN", Side.BUY, 3, order_type=OrderType.MARKET))
    engine.apply(
        SubmitOrder(2, 5, base + 1, "g", "OPEN", Side.SELL, 4, price_minor=90,
                    tif=TimeInForce.GTD, expire_ts=50)
    )  # fmt: skip
    engine.apply(SubmitOrder(3, 5, base + 2, "b", "SEALED", Side.BUY, 1, price_minor=700))
    return engine


def test_a_restored_engine_carries_on_as_the_original() -> None:
    stream = generate_stream(4_000, seed=7)
    original = _engine_with_every_kind_of_state(stream[:2_000])
    restored = round_trip(original)
    assert isinstance(restored, Engine)
    restored.check_invariants()
    assert restored.depth(SYMBOL, 100) == original.depth(SYMBOL, 100)
    for command in stream[2_000:]:
        assert restored.apply(command) == original.apply(command)
    restored.check_invariants()
    assert restored.next_expiry() == original.next_expiry() == 50


def test_commands_events_and_specs_round_trip_to_equal_values() -> None:
    values = [
        InstrumentSpec("X", tick_size=5, price_band_low=5, price_band_high=500),
        SubmitOrder(
            1, 2, 3, "a", "X", Side.SELL, 5, price_minor=100, tif=TimeInForce.GTD, expire_ts=9
        ),
        Trade(1, "X", 100, 5, 2, 3, "b", "a", None, 7, 70),
        Cancelled(3, "a", "X", 2, CancelReason.SELF_TRADE),
    ]
    for value in values:
        assert round_trip(value) == value


def test_events_are_equal_only_to_events_of_their_own_type() -> None:
    cancelled = Cancelled(3, "a", "X", 2, CancelReason.USER)
    assert cancelled == Cancelled(3, "a", "X", 2, CancelReason.USER)
    assert hash(cancelled) == hash(Cancelled(3, "a", "X", 2, CancelReason.USER))
    assert cancelled != Cancelled(3, "a", "X", 1, CancelReason.USER)
    fields = [getattr(cancelled, f.name) for f in dataclasses.fields(cancelled)]
    assert cancelled != tuple(fields)
    added: Event = InstrumentAdded("X", Phase.CONTINUOUS)
    assert added != PhaseChanged("X", Phase.CONTINUOUS)


@pytest.mark.skipif(PURE_BUILD, reason="Python does not enforce Final at run time")
def test_compiled_events_are_read_only() -> None:
    trade = Trade(1, "X", 100, 5, 2, 3, "b", "a", None, 7, 70)
    with pytest.raises(AttributeError):
        trade.price = 1  # type: ignore[misc]


def test_a_document_of_another_engine_layout_is_refused() -> None:
    # A snapshot written by an engine whose levels had other attributes must not load half-formed.
    engine = _engine_with_every_kind_of_state(generate_stream(200, seed=3)[:100])
    document = ENGINE_CODEC.encode(engine)
    dropped = _drop_attribute(document, "matching.book.Level", "head")
    assert dropped
    with pytest.raises(ValueError, match="other attributes than this version"):
        ENGINE_CODEC.decode(document)


def _drop_attribute(node: object, class_name: str, attribute: str) -> int:
    """Remove ``attribute`` from every mutable object of ``class_name`` in a document; how
    many it was removed from."""
    if not isinstance(node, list):
        return 0
    count = 0
    if len(node) == 5 and node[0] == "M" and node[2] == class_name:
        count += node[4].pop(attribute, None) is not None
    return count + sum(_drop_attribute(item, class_name, attribute) for item in node) + sum(
        _drop_attribute(value, class_name, attribute)
        for item in node if isinstance(item, dict) for value in item.values()
    )
