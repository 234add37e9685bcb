"""The exchange as a state machine: random order flow through ``Exchange.execute``, checked
after every step against what participants can see.

A Hypothesis ``RuleBasedStateMachine`` creates participants, lists instruments (continuous
and call-auction, transferable or not, one month or a year), deposits and withdraws cash,
submits limit and market orders of every time in force, cancels and amends them, changes
phases, uncrosses, and lets time pass with housekeeping (GTD orders and licences expire).
After every step:

- the exchange's own ``check_invariants()`` holds;
- every ledger entry balances per asset, and the entries projected into balances agree with
  what the exchange reports: each participant's cash ``available + held`` is its cash
  account's balance, and the cash of all participants plus the fees is what was deposited
  minus what was withdrawn; per instrument, the units participants hold plus the unsold
  issuance plus the lapsed units are the issuance cap;
- a refused command (``ExchangeError``) changed nothing a participant can see;
- a replica fed only the journalled commands (through the journal's record form, as
  recovery reads them) gives the same result, entries and events, and the same state.

Only the public behaviour is used (``execute``, ``check_invariants``, ``cash_of``,
``holdings_of``, ``orders_of``, ``order`` and the outcomes' entries), so the exchange's
internals (where holds live, which entries it writes beyond the kinds named above) may
change under it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from exchange import commands as c
from exchange.catalogue import MONTH_NS
from exchange.errors import ExchangeError
from exchange.service import OPERATOR, Exchange, Outcome
from ledger import EntryKind, accounts
from tests.exchange.helpers import (
    START_NS,
    bootstrap_participants,
    create_participant,
    create_product,
    list_instrument,
    review,
)

TICK_MINOR = 100
FIRST_SYMBOL = "MODEL.A"
FIRST_CAP_UNITS = 40
MAX_INSTRUMENTS = 3  # enough for every kind of listing to meet the others' orders
OPENING_CASH_MINOR = 60_000  # some dozens of units at the prices below: cash limits bite
PAGE = 10_000  # more orders than any run submits
# Every ledger entry is one of these kinds (compliance decisions come only from setup).
ENTRY_KINDS = frozenset(
    {
        EntryKind.DEPOSIT,
        EntryKind.WITHDRAWAL,
        EntryKind.TRADE_SETTLEMENT,
        EntryKind.LICENCE_ISSUANCE,
        EntryKind.LICENCE_EXPIRY,
        EntryKind.COMPLIANCE_DECISION,
    }
)

price_ticks = st.integers(min_value=5, max_value=15)
quantities = st.integers(min_value=1, max_value=6)
STP = "cancel_newest"
# (market, price ticks, quantity, time in force, GTD life, post-only, self-trade prevention)
OrderTerms = tuple[bool, int, int, str, int, bool, str]
orders_of_any_kind = st.tuples(
    st.sampled_from((False, False, False, True)),
    price_ticks,
    quantities,
    st.sampled_from(("GTC", "GTC", "DAY", "IOC", "FOK", "GTD")),
    st.sampled_from((10, 10_000, 120 * 1_000_000_000)),
    st.sampled_from((False, False, False, True)),
    st.sampled_from(("cancel_newest", "cancel_oldest", "cancel_both")),
)
# Time steps: within a session, past a GTD order's life, past a one-month licence.
waits_ns = st.sampled_from((1_000, 60 * 1_000_000_000, MONTH_NS // 2, MONTH_NS + 1))


class ExchangeModel(RuleBasedStateMachine):
    participants = Bundle("participants")
    instruments = Bundle("instruments")
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.exchange = Exchange()
        self.replica = Exchange()
        self.seq = 0  # the last journalled command's sequence number
        self.now_ns = START_NS
        self.balances: Counter[str] = Counter()  # every entry's postings, projected
        self.deposited_minor = 0
        self.withdrawn_minor = 0
        self.caps: dict[str, int] = {}  # symbol -> issuance cap in units
        self.traders: list[str] = []
        self.submitted: list[tuple[c.SubmitOrder, Any]] = []  # with its first result
        self.next_name = 0
        self.product_id = self.set_up()

    # -- driving -------------------------------------------------------------------------

    def run(self, command: c.Command, *, wait_ns: int = 1) -> Outcome | None:
        """Execute ``command`` ``wait_ns`` after the last; None when refused (and then
        nothing visible changed). An accepted command's entries are projected into the
        balances and its journal record replayed into the replica."""
        self.now_ns += wait_ns
        before = self.visible_state(self.exchange)
        try:
            outcome = self.exchange.execute(command, self.seq + 1, self.now_ns)
        except ExchangeError as error:
            event(f"refused {type(command).__name__}: {error.reason}")
            assert self.visible_state(self.exchange) == before, command
            return None
        event(f"applied {type(command).__name__}")
        for entry in outcome.entries:
            assert entry.kind in ENTRY_KINDS, entry
            event(f"entry {entry.kind}")
            by_asset: Counter[str] = Counter()
            for account, asset, units in entry.postings:
                by_asset[asset] += units
                self.balances[account] += units
            assert set(by_asset.values()) <= {0}, entry
        if outcome.command is None:
            assert outcome.entries == [] and outcome.events == [], "a retry does nothing"
            return outcome
        self.seq += 1
        record = c.command_to_record(outcome.command)
        replayed = self.replica.execute(c.command_from_record(record), self.seq, self.now_ns)
        assert replayed.command is not None and c.command_to_record(replayed.command) == record
        assert replayed.result == outcome.result
        assert replayed.entries == outcome.entries
        assert replayed.events == outcome.events
        return outcome

    def visible_state(self, exchange: Exchange) -> tuple[Any, ...]:
        """What the participants can see of ``exchange``."""
        return tuple(
            (
                exchange.cash_of(who),
                exchange.holdings_of(who),
                exchange.orders_of(who, open_only=False, after_id=0, limit=PAGE),
            )
            for who in self.traders
        )

    def new_name(self) -> str:
        self.next_name += 1
        return f"trader{self.next_name}"

    # -- setup ---------------------------------------------------------------------------

    def set_up(self) -> str:
        """The exchange's people (admin, prov, rev, reg, funded ann and bob) and an approved
        product; returns the product's id."""

        def setup(command: c.Command) -> Outcome:
            outcome = self.run(command)
            assert outcome is not None, command
            return outcome

        self.traders = ["prov", "ann", "bob"]
        bootstrap_participants(setup, buyers=("ann", "bob"))
        product_id = setup(create_product()).result.product_id
        setup(review(product_id))
        for buyer in ("ann", "bob"):
            setup(c.Deposit("admin", buyer, OPENING_CASH_MINOR, "opening"))
            self.deposited_minor += OPENING_CASH_MINOR
        return product_id

    @initialize(target=participants)
    def the_first_traders(self) -> Any:
        return multiple(*self.traders)

    @initialize(target=instruments)
    def list_first(self) -> str:
        outcome = self.run(
            list_instrument(
                self.product_id, FIRST_SYMBOL, issuance_cap_units=FIRST_CAP_UNITS,
                duration_months=1, tick_size_minor=TICK_MINOR,
            )
        )  # fmt: skip
        assert outcome is not None
        self.caps[FIRST_SYMBOL] = FIRST_CAP_UNITS
        assert self.run(c.SetPhase("admin", FIRST_SYMBOL, "continuous")) is not None
        return FIRST_SYMBOL

    # -- rules ---------------------------------------------------------------------------

    @rule(target=participants, market_maker=st.booleans(), cash_minor=st.integers(0, 40_000))
    def create_trader(self, market_maker: bool, cash_minor: int) -> Any:
        name = self.new_name()
        roles = ("buyer", "market_maker") if market_maker else ("buyer",)
        if self.run(create_participant(name, *roles)) is None:
            return multiple()
        self.traders.append(name)
        if cash_minor and self.run(c.Deposit("admin", name, cash_minor, "opening")) is not None:
            self.deposited_minor += cash_minor
        return name

    @precondition(lambda self: len(self.caps) < MAX_INSTRUMENTS)
    @rule(
        target=instruments,
        auction=st.booleans(),
        months=st.sampled_from((1, 12)),
        transferable=st.booleans(),
        cap_units=st.integers(1, 30),
        fee_rate_bp=st.sampled_from((0, 10, 250)),
    )
    def list_another(
        self, auction: bool, months: int, transferable: bool, cap_units: int, fee_rate_bp: int
    ) -> Any:
        symbol = f"MODEL.{chr(ord('A') + len(self.caps))}"
        listed = self.run(
            list_instrument(
                self.product_id, symbol, trading_mode="call_auction" if auction else "continuous",
                duration_months=months, transferable=transferable, issuance_cap_units=cap_units,
                fee_rate_bp=fee_rate_bp, tick_size_minor=TICK_MINOR,
            )
        )  # fmt: skip
        if listed is None:
            return multiple()
        self.caps[symbol] = cap_units
        self.run(c.SetPhase("admin", symbol, "auction" if auction else "continuous"))
        return symbol

    @rule(who=participants, amount_minor=st.integers(-5, 20_000))
    def deposit(self, who: str, amount_minor: int) -> None:
        if self.run(c.Deposit("admin", who, amount_minor, "top-up")) is not None:
            self.deposited_minor += amount_minor

    @rule(who=participants, amount_minor=st.integers(1, 40_000))
    def withdraw(self, who: str, amount_minor: int) -> None:
        if self.run(c.Withdraw("admin", who, amount_minor, "payout")) is not None:
            self.withdrawn_minor += amount_minor

    @rule(target=orders, who=participants, symbol=instruments, order=orders_of_any_kind)
    def buy(self, who: str, symbol: str, order: OrderTerms) -> Any:
        placed = self.submit(who, symbol, "buy", order)
        return multiple() if placed is None else placed

    @rule(
        target=orders,
        who=st.one_of(st.just("prov"), participants),  # the provider sells from issuance
        symbol=instruments,
        order=orders_of_any_kind,
    )
    def sell(self, who: str, symbol: str, order: OrderTerms) -> Any:
        placed = self.submit(who, symbol, "sell", order)
        return multiple() if placed is None else placed

    @rule(
        target=orders,
        seller=st.one_of(st.just("prov"), participants),
        buyer=participants,
        symbol=instruments,
        ticks=price_ticks,
        premium_ticks=st.integers(0, 3),
        sell_quantity=quantities,
        buy_quantity=quantities,
        buy_tif=st.sampled_from(("GTC", "IOC", "FOK", "DAY")),
    )
    def meet(
        self, seller: str, buyer: str, symbol: str, ticks: int, premium_ticks: int,
        sell_quantity: int, buy_quantity: int, buy_tif: str,
    ) -> Any:  # fmt: skip
        """A resting sell, then a buy at its price or above: orders that trade, unless the
        phase, the risk checks or self-trade prevention keep them apart."""
        resting = self.submit(
            seller, symbol, "sell", (False, ticks, sell_quantity, "GTC", 0, False, STP)
        )
        taking = self.submit(
            buyer, symbol, "buy",
            (False, ticks + premium_ticks, buy_quantity, buy_tif, 0, False, STP),
        )  # fmt: skip
        return multiple(*(order for order in (resting, taking) if order is not None))

    def submit(self, who: str, symbol: str, side: str, order: OrderTerms) -> tuple[str, int] | None:
        """Submit an order; (owner, order id) when accepted."""
        market, ticks, quantity, tif, gtd_life_ns, post_only, stp = order
        # A market buy names a protection price (or is refused); a market sell names none.
        price = None if market and side == "sell" else ticks * TICK_MINOR
        command = c.SubmitOrder(
            who, f"{who}-{self.seq}", 0, symbol, side,
            "market" if market else "limit", price, quantity, tif,
            self.now_ns + 1 + gtd_life_ns if tif == "GTD" else None, post_only, stp,
        )  # fmt: skip
        outcome = self.run(command)
        if outcome is None:
            return None
        self.submitted.append((command, outcome.result))
        assert self.exchange.order(who, outcome.result.order_id) == outcome.result
        return (who, outcome.result.order_id)

    @rule(pick=st.integers(0, 1_000))
    def retry_a_submission(self, pick: int) -> None:
        """An identical retry is answered with the first result and journals nothing (unless
        housekeeping is due, which refuses it and changes nothing)."""
        if not self.submitted:
            return
        command, first_result = self.submitted[pick % len(self.submitted)]
        outcome = self.run(command)
        if outcome is not None:
            assert outcome.command is None and outcome.result == first_result

    @rule(order=consumes(orders), by_owner=st.booleans())
    def cancel(self, order: tuple[str, int], by_owner: bool) -> None:
        owner, order_id = order
        self.run(c.CancelOrder(owner if by_owner else "ann", order_id))

    @rule(
        who=participants,
        symbol=instruments,
        any_symbol=st.booleans(),
        side=st.sampled_from((None, "buy", "sell")),
        by_admin=st.booleans(),
    )
    def cancel_all(
        self, who: str, symbol: str, any_symbol: bool, side: str | None, by_admin: bool
    ) -> None:
        only = None if any_symbol else symbol
        outcome = self.run(c.CancelAllOrders("admin" if by_admin else who, who, only, side))
        if outcome is None:
            return
        assert all(order.status == "cancelled" for order in outcome.result)
        left = self.exchange.orders_of(who, open_only=True, after_id=0, limit=PAGE)
        assert not [order for order in left
                    if only in (None, order.symbol) and side in (None, order.side)]  # fmt: skip

    @rule(
        order=orders,
        ticks=st.one_of(st.none(), price_ticks),
        quantity=st.one_of(st.none(), quantities),
    )
    def amend(self, order: tuple[str, int], ticks: int | None, quantity: int | None) -> None:
        owner, order_id = order
        price = None if ticks is None else ticks * TICK_MINOR
        self.run(c.AmendOrder(owner, order_id, price, quantity))

    @rule(
        symbol=instruments,
        # Mostly the trading phases, so that orders meet.
        phase=st.sampled_from(
            ("continuous", "continuous", "auction", "auction", "pre_open", "halted", "closed")
        ),
    )
    def set_phase(self, symbol: str, phase: str) -> None:
        self.run(c.SetPhase("admin", symbol, phase))

    @rule(symbol=instruments)
    def uncross(self, symbol: str) -> None:
        self.run(c.Uncross("admin", symbol))

    @rule(wait_ns=waits_ns)
    def housekeeping(self, wait_ns: int) -> None:
        assert self.run(c.Housekeeping(OPERATOR), wait_ns=wait_ns) is not None

    # -- after every step ----------------------------------------------------------------

    @invariant()
    def exchange_invariants_hold(self) -> None:
        self.exchange.check_invariants()

    @invariant()
    def cash_is_conserved(self) -> None:
        total_minor = 0
        for who in self.traders:
            available_minor, held_minor = self.exchange.cash_of(who)
            assert available_minor >= 0 and held_minor >= 0, who
            assert available_minor + held_minor == self.balances[accounts.cash(who)], who
            total_minor += available_minor + held_minor
        fees_minor = self.balances[accounts.EXCHANGE_FEES]
        assert total_minor + fees_minor == self.deposited_minor - self.withdrawn_minor
        assert -self.balances[accounts.EXTERNAL_CASH] == self.deposited_minor - self.withdrawn_minor

    @invariant()
    def licence_units_are_conserved(self) -> None:
        held: Counter[str] = Counter()
        for who in self.traders:
            for symbol, _expires_ns, units, units_in_sells in self.exchange.holdings_of(who):
                assert 0 <= units_in_sells <= units, (who, symbol)
                held[symbol] += units
        for symbol, cap_units in self.caps.items():
            unsold = self.balances[accounts.issuance(symbol)]
            lapsed = self.balances[accounts.licence_expired(symbol)]
            assert held[symbol] + unsold + lapsed == cap_units, symbol

    @invariant()
    def the_replica_shows_the_same_state(self) -> None:
        assert self.visible_state(self.replica) == self.visible_state(self.exchange)


ExchangeModel.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_exchange_model = ExchangeModel.TestCase
