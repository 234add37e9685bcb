"""The engine against the reference model: identical events for any command stream.

A Hypothesis state machine drives both side by side with orders, cancels, amends, expiries,
phase changes and uncrosses over instruments of every trading mode, and after every step
requires identical events, the engine's invariants, per-order quantity conservation and
fills within both orders' limit prices.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from matching import (
    Accepted,
    AddInstrument,
    Amended,
    AmendOrder,
    Cancelled,
    CancelOrder,
    Command,
    Engine,
    Event,
    Expire,
    OrderType,
    Phase,
    SetPhase,
    Side,
    SubmitOrder,
    TimeInForce,
    Trade,
    Uncross,
)
from tests.matching.reference import ReferenceEngine
from tests.strategies import (
    INSTRUMENTS,
    busy_phases,
    busy_symbols,
    order_types,
    participants,
    prices,
    quantities,
    resting_tifs,
    sides,
    stps,
    symbols,
    tifs,
)


class EngineMatchesReference(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = Engine()
        self.model = ReferenceEngine()
        self.seq = 0
        self.ts = 1_000
        self.next_order_id = 1
        self.known_ids: list[int] = []
        # Per accepted order: its total quantity, filled, cancelled and current limit price.
        self.quantity: dict[int, int] = {}
        self.filled: dict[int, int] = {}
        self.cancelled: dict[int, int] = {}
        self.limit: dict[int, int | None] = {}
        self.side: dict[int, Side] = {}
        self.history: list[tuple[Command, list[Event]]] = []

    def run(self, make: type, *args: object, **kwargs: object) -> list[Event]:
        self.seq += 1
        command: Command = make(self.seq, self.ts, *args, **kwargs)
        got = self.engine.apply(command)
        expected = self.model.apply(command)
        assert got == expected, f"{command}\nengine:    {got}\nreference: {expected}"
        self.engine.check_invariants()
        self.history.append((command, got))
        self.account(got)
        return got

    def account(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Accepted):
                self.quantity[event.order_id] = event.quantity
                self.filled[event.order_id] = 0
                self.cancelled[event.order_id] = 0
                self.limit[event.order_id] = event.price
                self.side[event.order_id] = event.side
            elif isinstance(event, Amended):
                self.quantity[event.order_id] = event.quantity
                self.limit[event.order_id] = event.price
            elif isinstance(event, Cancelled):
                self.cancelled[event.order_id] += event.quantity
            elif isinstance(event, Trade):
                self.filled[event.buy_order_id] += event.quantity
                self.filled[event.sell_order_id] += event.quantity
                buy_limit = self.limit[event.buy_order_id]
                sell_limit = self.limit[event.sell_order_id]
                assert buy_limit is None or event.price <= buy_limit, "buyer paid above limit"
                assert sell_limit is None or event.price >= sell_limit, "seller got below limit"

    @initialize()
    def list_instruments(self) -> None:
        for spec, phase in INSTRUMENTS:
            self.run(AddInstrument, spec, phase)

    def submit(self, order_id: int | None = None, **fields: object) -> None:
        if order_id is None:
            order_id = self.next_order_id
            self.next_order_id += 1
        events = self.run(SubmitOrder, order_id, **fields)
        if any(isinstance(e, Accepted) for e in events):
            self.known_ids.append(order_id)

    @rule(
        symbol=busy_symbols,
        participant=participants,
        side=sides,
        steps=st.integers(min_value=-4, max_value=4),
        lots=st.integers(min_value=1, max_value=6),
        tif=resting_tifs,
        post_only=st.booleans(),
        stp=stps,
    )
    def place_limit(self, symbol, participant, side, steps, lots, tif, post_only, stp) -> None:
        """A well-formed limit order near 100 on the instrument's grid."""
        grid = symbol == "GRID"
        price = 100 + steps * (5 if grid else 1)
        quantity = lots * (2 if grid else 1)
        post_only = post_only and tif not in (TimeInForce.IOC, TimeInForce.FOK)
        expire_ts = self.ts + 3 if tif is TimeInForce.GTD else None
        self.submit(
            participant=participant, symbol=symbol, side=side, quantity_units=quantity,
            price_minor=price, tif=tif, expire_ts=expire_ts, post_only=post_only, stp=stp,
        )  # fmt: skip

    @rule(
        symbol=busy_symbols,
        participant=participants,
        side=sides,
        lots=st.integers(min_value=1, max_value=8),
        through=st.integers(min_value=0, max_value=3),
        tif=st.sampled_from(TimeInForce),
        stp=stps,
    )
    def place_crossing_limit(self, symbol, participant, side, lots, through, tif, stp) -> None:
        """A limit order priced through the opposite best price, to make trades."""
        depth = self.engine.depth(symbol, 1)
        opposite = depth[1] if side is Side.BUY else depth[0]
        best = opposite[0][0] if opposite else 100
        step = 5 if symbol == "GRID" else 1
        price = best + through * step if side is Side.BUY else best - through * step
        expire_ts = self.ts + 3 if tif is TimeInForce.GTD else None
        self.submit(
            participant=participant, symbol=symbol, side=side,
            quantity_units=lots * (2 if symbol == "GRID" else 1), price_minor=price, tif=tif,
            expire_ts=expire_ts, stp=stp,
        )  # fmt: skip

    @rule(
        symbol=busy_symbols,
        participant=participants,
        side=sides,
        lots=st.integers(min_value=1, max_value=8),
        protection=st.one_of(st.none(), st.sampled_from([95, 100, 105, 110])),
        tif=st.sampled_from([TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]),
        stp=stps,
    )
    def place_market(self, symbol, participant, side, lots, protection, tif, stp) -> None:
        grid = symbol == "GRID"
        if protection is None and side is Side.BUY and not grid:
            protection = 110
        self.submit(
            participant=participant, symbol=symbol, side=side,
            quantity_units=lots * (2 if grid else 1), price_minor=protection,
            order_type=OrderType.MARKET, tif=tif, stp=stp,
        )  # fmt: skip

    @rule(
        symbol=symbols,
        participant=participants,
        side=sides,
        order_type=order_types,
        price=st.one_of(st.none(), prices),
        quantity=quantities,
        tif=tifs,
        expires_in=st.one_of(st.none(), st.integers(min_value=-2, max_value=30)),
        post_only=st.booleans(),
        stp=stps,
        reuse_id=st.booleans(),
    )
    def place_anything(
        self, symbol, participant, side, order_type, price, quantity, tif, expires_in,
        post_only, stp, reuse_id,
    ) -> None:  # fmt: skip
        """Any order at all, often malformed: it must be rejected exactly as specified."""
        order_id = self.known_ids[-1] if reuse_id and self.known_ids else None
        expire_ts = None if expires_in is None else self.ts + expires_in
        self.submit(
            order_id, participant=participant, symbol=symbol, side=side, quantity_units=quantity,
            price_minor=price, order_type=order_type, tif=tif, expire_ts=expire_ts,
            post_only=post_only, stp=stp,
        )  # fmt: skip

    def some_order_id(self, data: st.DataObject) -> int:
        """Mostly a live order, sometimes a finished or unknown one."""
        live = [i for i in self.known_ids if self.engine.open_order(i) is not None]
        if live and data.draw(st.integers(0, 4)):
            return data.draw(st.sampled_from(live))
        return data.draw(st.sampled_from(self.known_ids) if self.known_ids else st.just(999))

    @rule(data=st.data(), participant=participants)
    def cancel(self, data, participant) -> None:
        order_id = self.some_order_id(data)
        order = self.engine.open_order(order_id)
        if order is not None and data.draw(st.integers(0, 3)):
            participant = order.participant  # mostly cancel one's own live orders
        self.run(CancelOrder, order_id, participant)

    @rule(
        data=st.data(),
        participant=participants,
        price=st.one_of(st.none(), prices),
        quantity=st.one_of(st.none(), quantities),
    )
    def amend(self, data, participant, price, quantity) -> None:
        order_id = self.some_order_id(data)
        order = self.engine.open_order(order_id)
        if order is not None and data.draw(st.integers(0, 3)):
            participant = order.participant  # mostly amend one's own live orders
        self.run(AmendOrder, order_id, participant, price_minor=price, quantity_units=quantity)

    @rule(
        symbol=st.sampled_from(("CALL", "CONT", "SEAL2")),
        orders=st.lists(
            st.tuples(participants, sides, st.integers(-3, 3), st.integers(1, 6), st.booleans()),
            min_size=1,
            max_size=8,
        ),
    )
    def auction_round(self, symbol, orders) -> None:
        """Collect crossing orders (some market, some protected) and uncross them."""
        if symbol == "CONT":
            self.run(SetPhase, symbol, Phase.AUCTION)
        for participant, side, steps, quantity, market in orders:
            price = 100 + steps
            if market and symbol != "SEAL2":
                protection = price if steps % 2 else None
                if protection is None and side is Side.BUY:
                    protection = 110
                self.submit(
                    participant=participant, symbol=symbol, side=side, quantity_units=quantity,
                    price_minor=protection, order_type=OrderType.MARKET,
                )  # fmt: skip
            else:
                self.submit(
                    participant=participant, symbol=symbol, side=side, quantity_units=quantity,
                    price_minor=price,
                )  # fmt: skip
        if symbol == "CONT":
            self.run(SetPhase, symbol, Phase.CONTINUOUS)
        else:
            self.run(Uncross, symbol)

    @rule(advance=st.integers(min_value=0, max_value=10))
    def expire(self, advance) -> None:
        self.ts += advance
        self.run(Expire)

    @rule(symbol=symbols)
    def uncross(self, symbol) -> None:
        self.run(Uncross, symbol)

    @rule(symbol=symbols, phase=busy_phases, cancel_resting=st.booleans())
    def set_phase(self, symbol, phase, cancel_resting) -> None:
        self.run(SetPhase, symbol, phase, cancel_resting=cancel_resting and phase.value == "halted")

    def teardown(self) -> None:
        """Replaying the same commands into a fresh engine gives the same events and state."""
        replica = Engine()
        for command, events in self.history:
            assert replica.apply(command) == events, command
        assert replica.state_hash() == self.engine.state_hash()

    @invariant()
    def quantity_is_conserved(self) -> None:
        for order_id, quantity in self.quantity.items():
            order = self.engine.open_order(order_id)
            resting = order.remaining if order is not None else 0
            assert self.filled[order_id] + self.cancelled[order_id] + resting == quantity, order_id


EngineMatchesReference.TestCase.settings = settings(
    max_examples=400,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_engine_matches_reference_model = EngineMatchesReference.TestCase
