"""Locust users that drive the matching engine in process: the engine alone, under locust.

    locust -f loadtests/engine_user.py --headless -u 2 -r 2 -t 20s --only-summary

:class:`EngineClient` wraps one :class:`matching.Engine` and reports every command it applies
to locust's statistics through ``events.request`` (request type ``engine``, named by the
command: ``SubmitOrder``, ``CancelOrder``; response time in milliseconds, response length the
number of events), so the engine shows in locust's tables, charts and CSV files like an endpoint.
An engine that raises is reported as a failure with its exception. A rejection is an answer,
not a failure: the stream holds post-only orders that would take, which the engine rejects.

:class:`EngineUser` replays the engine benchmark's seeded order flow
(``loadtests.bench_engine.generate_stream``: limit orders around the touch, cancels, market
orders, the book near 4,000 resting orders) through an engine of its own, ``BATCH_COMMANDS``
commands per task; at the end of the stream it starts again on a fresh engine. The stream is
generated once per process (``DATAEX_ENGINE_OPERATIONS`` commands, default 20,000, seed 42)
and shared by every user. Nothing here does I/O, so a task never yields to other users
while it runs: the batch bounds how long it holds the process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from locust import User, constant, task

from loadtests.bench_engine import SYMBOL, generate_stream
from matching import AddInstrument, CancelOrder, Engine, InstrumentSpec, Phase, SubmitOrder

__all__ = ["BATCH_COMMANDS", "EngineClient", "EngineUser"]

BATCH_COMMANDS = 100
DEFAULT_OPERATIONS = 20_000
MAX_OPERATIONS = 1_000_000
SEED = 42
_streams: dict[int, list[SubmitOrder | CancelOrder]] = {}


def stream(operations: int) -> Sequence[SubmitOrder | CancelOrder]:
    """The benchmark's stream of ``operations`` commands, generated once per process."""
    if not 1 <= operations <= MAX_OPERATIONS:
        raise ValueError(f"operations must be in 1..{MAX_OPERATIONS}, not {operations}")
    if operations not in _streams:
        _streams[operations] = generate_stream(operations, SEED)
    return _streams[operations]


class EngineClient:
    """One engine; each :meth:`apply` is reported to locust as a request."""

    def __init__(self, request_event: Any) -> None:
        self.request_event = request_event
        self.engine = Engine()
        self.engine.apply(AddInstrument(0, 0, InstrumentSpec(SYMBOL), Phase.CONTINUOUS))

    def apply(self, command: SubmitOrder | CancelOrder) -> int:
        """Apply ``command``; the number of events it produced (0 if the engine raised)."""
        start = time.perf_counter()
        try:
            events = self.engine.apply(command)
        except Exception as error:  # a bug in the engine: reported, not raised into locust
            self._report(command, start, 0, error)
            return 0
        self._report(command, start, len(events), None)
        return len(events)

    def _report(self, command: Any, start: float, events: int, error: Exception | None) -> None:
        self.request_event.fire(
            request_type="engine",
            name=type(command).__name__,
            response_time=(time.perf_counter() - start) * 1000,
            response_length=events,
            exception=error,
            context={},
        )


class EngineUser(User):
    """Replays the benchmark stream through an engine of its own (see the module docstring)."""

    wait_time = constant(0)

    def on_start(self) -> None:
        operations = int(os.environ.get("DATAEX_ENGINE_OPERATIONS", DEFAULT_OPERATIONS))
        self.commands = stream(operations)
        self.client = EngineClient(self.environment.events.request)
        self.position = 0

    @task
    def apply_batch(self) -> None:
        end = min(self.position + BATCH_COMMANDS, len(self.commands))
        apply = self.client.apply
        for command in self.commands[self.position : end]:
            apply(command)
        self.position = end
        if end == len(self.commands):
            # The stream's order ids start again at 1: only a fresh engine accepts them.
            self.client = EngineClient(self.environment.events.request)
            self.position = 0
