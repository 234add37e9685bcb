"""One simulation run: build the market through commands, then tick the agents.

:func:`run_simulation` opens a ledger (a fresh SQLite file in a temporary directory unless a
database is given), starts a :class:`~exchange.sequencer.Sequencer` on a
:class:`~exchange.simulation.clock.VirtualClock`, and drives everything through it, one
command stream:

1. **Setup** (an hour before the first session): the simulator's desk (``sim-admin``), its
   reviewer (``sim-review``) and the regulator (``sim-regulator``); the scenario's
   participants and their deposits; the products, each reviewed (approved when the
   compliance gate allows it, rejected with the gate's reason otherwise) and, for
   ``important`` data, decided by the regulator; the listings of approved products; call
   markets opened for collecting.
2. **Ticks**, ``ticks_per_day`` a day, evenly spaced over the session: the fundamental path
   and the noise traders' attention move; continuous instruments open at the first tick of
   each day (their opening auction); quoting agents (providers, market makers) act in
   scenario order, then the other agents' commands follow in an order the scheduler's seeded
   stream shuffles; call auctions due this tick uncross last. The tick's commands are
   submitted together (``Sequencer.submit``) in that order, and all answered before the
   clock moves: the sequencer applies a queue in order, so the journal is the same whether
   it commits them in one batch or several.
3. **Close**: continuous instruments close at the session's end (``close_daily``); the
   desk posts the exchange's valuation (``exchange.pricing``, the market approach on the
   run's own trades, never the true values) of every instrument a lender takes as
   collateral, every ``valuation_every_days`` (and once after the initial offering, so that
   facilities can be drawn from the first day); agents' end-of-day hooks run.

A shock (``[[shocks]]``) reprices its category's true values at the start of its day.

Determinism: time is the virtual clock's; every random choice comes from a stream derived
from the seed (:mod:`exchange.simulation.rng`); agents are kept in lists in scenario order,
never in sets; the sequencer's idle timer is off (``housekeeping=False``: expiries then run,
as always, before the first command due after them, which is a function of the journal). So
the same scenario and seed give the same journal, and the same journal hash.
"""

from __future__ import annotations

import datetime as dt
import gc
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from exchange import commands as cmd
from exchange.compliance import COMPLIANCE_CHECKS, listing_problem
from exchange.errors import ExchangeError
from exchange.money import MINOR_PER_UNIT
from exchange.pricing import (
    DEFAULT_PARAMETERS,
    TargetSpec,
    prepare_market,
    terms_from_catalogue,
    value,
)
from exchange.pricing.cost_income import terms_multiplier
from exchange.sequencer import Sequencer, SequencerStopped
from exchange.service import Exchange, Outcome
from exchange.simulation.agents import (
    Agent,
    AgentContext,
    Buyer,
    Lender,
    MarketMaker,
    NoiseTrader,
    Provider,
)
from exchange.simulation.clock import VirtualClock
from exchange.simulation.recorder import MarketRecorder
from exchange.simulation.rfq_agents import RfqBuyer, RfqProvider
from exchange.simulation.rng import derive_rng
from exchange.simulation.scenario import (
    BuyerParams,
    LenderParams,
    MarketMakerParams,
    NoiseParams,
    ProductSpec,
    ProviderParams,
    RfqBuyerParams,
    RfqProviderParams,
    Scenario,
)
from exchange.simulation.truth import TrueValues
from exchange.simulation.view import MarketView
from exchange.valuation_inputs import book_snapshot, pricing_records
from ledger import accounts
from ledger.database import create_engine
from ledger.store import Ledger
from ledger.verify import verify

__all__ = [
    "ADMIN",
    "REGULATOR",
    "REVIEWER",
    "RunResult",
    "SimulationError",
    "conservation_problems",
    "run_simulation",
]

ADMIN = "sim-admin"
REVIEWER = "sim-review"
REGULATOR = "sim-regulator"
OPERATOR_KIND = "operator"
SETUP_LEAD_NS = 3_600 * 10**9
# Simulated participants never log in: no secret has this digest.
NO_SECRET_SHA256 = "0" * 64
DAYS_PER_MONTH = 365.2425 / 12


class SimulationError(Exception):
    """A run that cannot start or finish (a database in use, a broken sequencer)."""


@dataclass(slots=True)
class RunResult:
    """What a run did: the journal hash and counts, and the state the report reads."""

    scenario: Scenario
    seed: int
    days: int
    ticks: int
    database_url: str
    journal_hash: str
    journal_commands: int
    commands_by_verb: Counter[str]
    submitted_by_kind: Counter[str]
    refused_by_kind: dict[str, Counter[str]]
    wall_s: float
    exchange: Exchange
    truth: TrueValues
    recorder: MarketRecorder
    agents: list[Agent]
    listed: list[str]
    not_listed: list[tuple[str, str]]
    deposits_minor: int
    withdrawals_minor: int  # paid out of the exchange (borrowers spending their loans)
    commits: int  # the sequencer's group commits (one durable transaction each)
    verify_ok: bool | None = None
    verify_problem: str | None = None
    conservation: list[str] = field(default_factory=list)

    @property
    def orders(self) -> int:
        """Orders journalled (``SubmitOrder``), the benchmark's unit."""
        return self.commands_by_verb.get("submit_order", 0)

    @property
    def refused(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for reasons in self.refused_by_kind.values():
            total.update(reasons)
        return total

    @property
    def submitted(self) -> int:
        return sum(self.submitted_by_kind.values())

    @property
    def lenders(self) -> list[Lender]:
        return [agent for agent in self.agents if isinstance(agent, Lender)]


def run_simulation(
    scenario: Scenario,
    seed: int,
    *,
    days: int | None = None,
    stop_after_ticks: int | None = None,
    database_url: str | None = None,
    check: bool = True,
    one_at_a_time: bool = False,
    tune_collector: bool = True,
    on_tick: Callable[[int], None] | None = None,
) -> RunResult:
    """Run ``scenario`` with ``seed`` for ``days`` (default: the scenario's), stopping early
    after ``stop_after_ticks`` ticks if given. ``check`` verifies the ledger and checks that
    cash and licences are conserved once the run is over (not timed in ``wall_s``).
    ``one_at_a_time`` waits for each command's answer before sending the next (a commit per
    command): slower, and the same journal, which is what it is there to show.
    ``tune_collector`` runs the cyclic garbage collector rarely while the run lasts (see
    ``_collector_for_a_batch_job``); False keeps the interpreter's thresholds.
    ``on_tick(ticks_done)`` is called after every tick, for a progress bar."""
    if database_url is None:
        directory = Path(tempfile.mkdtemp(prefix="dataex-sim-"))
        database_url = f"sqlite:///{directory / 'simulation.db'}"
    engine = create_engine(database_url)
    try:
        ledger = Ledger.open(engine)
        if ledger.journal_head_seq():
            raise SimulationError(
                f"{database_url} already holds a journal: a simulation needs an empty database"
            )
        run = _Run(scenario, seed, ledger, days or scenario.days, stop_after_ticks)
        run.one_at_a_time = one_at_a_time
        run.on_tick = on_tick
        with _collector_for_a_batch_job() if tune_collector else nullcontext():
            result = run.execute(database_url)
        if check:
            report = verify(ledger)
            result.verify_ok = report.ok
            problem = report.first_problem
            result.verify_problem = None if problem is None else str(problem)
            result.conservation = conservation_problems(
                ledger, result.exchange, result.deposits_minor - result.withdrawals_minor
            )
        return result
    finally:
        engine.dispose()


class _Run:
    def __init__(
        self, scenario: Scenario, seed: int, ledger: Ledger, days: int, stop: int | None
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.ledger = ledger
        self.days = days
        self.stop_after_ticks = stop
        start = dt.datetime.combine(scenario.start_date, dt.time(), tzinfo=dt.UTC)
        self.first_session_ns = (
            int(start.timestamp()) + scenario.session_start_hour * 3_600
        ) * 10**9
        self.clock = VirtualClock(self.first_session_ns - SETUP_LEAD_NS)
        self.exchange = Exchange()
        self.sequencer = Sequencer(ledger, self.exchange, clock=self.clock, housekeeping=False)
        self.verbs: Counter[str] = Counter()
        self.sequencer.subscribe(self._count)
        self.submitted: Counter[str] = Counter()
        self.refused: dict[str, Counter[str]] = {}
        self.truth = TrueValues(scenario, seed)
        self.product_ids: dict[str, str] = {}
        self.not_listed: list[tuple[str, str]] = []
        self.deposits_minor = 0
        self.withdrawals_minor = 0
        self.one_at_a_time = False
        self.on_tick: Callable[[int], None] | None = None

    def _count(self, committed: list[tuple[int, Outcome]]) -> None:
        # On the sequencer's thread, after each commit: it also sees the housekeeping
        # commands the sequencer inserts itself.
        self.verbs.update(outcome.command.verb for _, outcome in committed)  # type: ignore[union-attr]
        for _, outcome in committed:
            if type(outcome.command) is cmd.Withdraw:
                self.withdrawals_minor += outcome.command.amount_minor

    # -- the run -------------------------------------------------------------------------

    def execute(self, database_url: str) -> RunResult:
        scenario = self.scenario
        started = time.perf_counter()
        self.sequencer.start()
        try:
            self._setup()
            listings = {
                listing.symbol: listing
                for listing in scenario.listings
                if listing.symbol in self.exchange.instruments
            }
            view = MarketView(self.exchange)
            context = AgentContext(
                view, listings, self.truth, scenario.tick_ns, self.product_ids, ADMIN
            )
            agents = self._agents()
            for agent in agents:
                agent.start(context)
            self._offering(context, agents)
            self._post_valuations(context, agents)
            view.refresh()
            recorder = MarketRecorder(list(listings), scenario)
            ticks = self._trade(context, agents, recorder)
        except SequencerStopped as stopped:
            # A commit failed (the database went away): the run cannot go on.
            raise SimulationError(f"the sequencer stopped: {stopped}") from stopped
        finally:
            self.sequencer.stop()
        if self.sequencer.broken is not None:
            raise SimulationError(f"the sequencer stopped: {self.sequencer.broken}")
        wall_s = time.perf_counter() - started
        head = self.ledger.journal_head_seq()
        record = self.ledger.journal(head, 1)[0]
        return RunResult(
            scenario=scenario,
            seed=self.seed,
            days=self.days,
            ticks=ticks,
            database_url=database_url,
            journal_hash=record.chain_hash.hex(),
            journal_commands=head,
            commands_by_verb=self.verbs,
            submitted_by_kind=self.submitted,
            refused_by_kind=self.refused,
            wall_s=wall_s,
            exchange=self.exchange,
            truth=self.truth,
            recorder=recorder,
            agents=agents,
            listed=list(listings),
            not_listed=self.not_listed,
            deposits_minor=self.deposits_minor,
            withdrawals_minor=self.withdrawals_minor,
            commits=self.sequencer.batches,
        )

    def _round(self, entries: Sequence[tuple[Agent | None, cmd.Command]]) -> None:
        """Submit one round's commands in order, wait for every answer, hand them back."""
        if not entries:
            return
        futures = self._submit([command for _, command in entries])
        submitted, refused = self.submitted, self.refused
        for (agent, command), future in zip(entries, futures, strict=True):
            kind = OPERATOR_KIND if agent is None else agent.kind
            submitted[kind] += 1
            try:
                outcome: Outcome | None = future.result()
                error = None
            except ExchangeError as refusal:
                outcome, error = None, refusal
                refused.setdefault(kind, Counter())[str(refusal.reason)] += 1
            if agent is not None:
                agent.on_result(command, outcome, error)

    def _submit(self, commands: Sequence[cmd.Command]) -> list[Future[Outcome]]:
        """Queue ``commands`` in order (or, one at a time, each after the last's answer)."""
        submit = self.sequencer.submit
        if not self.one_at_a_time:
            return [submit(command) for command in commands]
        futures = []
        for command in commands:
            futures.append(submit(command))
            futures[-1].exception()  # waits for the answer, and so for its commit
        return futures

    def _operator(self, commands: Sequence[cmd.Command]) -> list[Outcome | None]:
        """Submit the desk's commands; return each outcome (None if refused)."""
        futures = self._submit(commands)
        outcomes: list[Outcome | None] = []
        for future in futures:
            self.submitted[OPERATOR_KIND] += 1
            try:
                outcomes.append(future.result())
            except ExchangeError as refusal:
                self.refused.setdefault(OPERATOR_KIND, Counter())[str(refusal.reason)] += 1
                outcomes.append(None)
        return outcomes

    # -- setup ---------------------------------------------------------------------------

    def _setup(self) -> None:
        scenario, exchange = self.scenario, self.exchange
        desk = [
            (ADMIN, "Simulation exchange desk", ["admin"]),
            (REVIEWER, "Simulation compliance review", ["reviewer"]),
            (REGULATOR, "Simulation data regulator", ["regulator"]),
        ]
        people = desk + [(p.participant_id, p.name, list(p.roles)) for p in scenario.participants]
        self._must(
            self._operator(
                [
                    cmd.CreateParticipant(
                        "operator", pid, name, roles, f"sim_{pid}", NO_SECRET_SHA256
                    )
                    for pid, name, roles in people
                ]
            ),
            "create the participants",
        )
        deposits = [
            cmd.Deposit(ADMIN, p.participant_id, p.cash_minor, "simulation opening balance")
            for p in scenario.participants
            if p.cash_minor > 0
        ]
        self._must(self._operator(deposits), "fund the participants")
        self.deposits_minor = sum(d.amount_minor for d in deposits)
        created = self._must(
            self._operator([self._product(p) for p in scenario.products]), "create the products"
        )
        for product, outcome in zip(scenario.products, created, strict=True):
            assert outcome is not None
            self.product_ids[product.key] = outcome.result.product_id
        reviews, important = [], []
        for product in scenario.products:
            product_id = self.product_ids[product.key]
            problem = listing_problem(exchange.products[product_id])
            if problem is None:
                reviews.append(
                    cmd.ReviewProduct(
                        REVIEWER,
                        product_id,
                        "approved",
                        dict.fromkeys(COMPLIANCE_CHECKS, True),
                        "Classification, desensitisation, retention and risk controls reviewed.",
                    )
                )
                if product.classification == "important":
                    important.append(product_id)
            else:
                reason, message = problem
                failed = (
                    "classification"
                    if "CORE" in reason
                    else "desensitisation"
                    if "DESENSITISED" in reason
                    else "risk_controls"
                )
                reviews.append(
                    cmd.ReviewProduct(
                        REVIEWER, product_id, "rejected", {failed: False}, f"Refused: {message}."
                    )
                )
        self._must(self._operator(reviews), "review the products")
        self._must(
            self._operator(
                [
                    cmd.RegulatorDecision(
                        REGULATOR,
                        product_id,
                        "approved",
                        "Important data: approved for the terms listed.",
                    )
                    for product_id in important
                ]
            ),
            "decide on important data",
        )
        listings = []
        for listing in scenario.listings:
            product_id = self.product_ids[listing.product]
            status = exchange.products[product_id].status
            if status != "approved":
                self.not_listed.append((listing.symbol, f"product {listing.product} is {status}"))
                continue
            terms = scenario.terms[listing.terms]
            listings.append(
                cmd.ListInstrument(
                    ADMIN,
                    listing.symbol,
                    product_id,
                    terms.exclusivity,
                    terms.duration_months,
                    terms.scope,
                    terms.territory,
                    terms.transferable,
                    listing.tick_size_minor,
                    listing.lot_size_units,
                    listing.trading_mode,
                    listing.issuance_cap_units,
                    listing.fee_rate_bp,
                    None,
                    None,
                    "first_price",
                )
            )
        self._must(self._operator(listings), "list the instruments")
        self._must(
            self._operator(
                [
                    cmd.SetPhase(ADMIN, listing.symbol, "auction")
                    for listing in scenario.listings
                    if listing.trading_mode == "call_auction"
                    and listing.symbol in exchange.instruments
                ]
            ),
            "open the call markets",
        )

    def _offering(self, context: AgentContext, agents: list[Agent]) -> None:
        """The initial offering, before the first open: each provider sells the licences
        that market makers and noise traders start with (their ``initial_units``) at its
        opening ask, so that they can sell from the first tick; the opening auction (or, in a
        call market, an uncross now) executes it. Through the exchange like any trade."""
        wanted: dict[str, list[tuple[Agent, int]]] = {}
        for agent in agents:
            for symbol, units in agent.endowment():
                listing = context.listings.get(symbol)
                if listing is None or self.scenario.terms[listing.terms].exclusivity == "exclusive":
                    continue
                lots = units // listing.lot_size_units * listing.lot_size_units
                if lots:
                    wanted.setdefault(symbol, []).append((agent, lots))
        sellers = {
            symbol: agent
            for agent in agents
            if isinstance(agent, Provider)
            for symbol in agent.asks
        }
        entries: list[tuple[Agent | None, cmd.Command]] = []
        for symbol, listing in context.listings.items():
            buyers = wanted.get(symbol)
            if not buyers:
                continue
            instrument = self.exchange.instruments[symbol]
            seller = sellers.get(symbol)
            tick = listing.tick_size_minor
            if isinstance(seller, Provider):
                price = seller.opening_price(symbol, tick)
            else:
                product = self.exchange.products[instrument.product_id]
                unit_cost = product.cost_basis_minor * terms_multiplier(
                    terms_from_catalogue(instrument.terms), DEFAULT_PARAMETERS
                )
                price = max(tick, -int(-unit_cost // tick) * tick)
            assert price is not None
            total = sum(units for _, units in buyers)
            entries.append(
                (
                    seller,
                    cmd.SubmitOrder(
                        instrument.provider,
                        f"offer-{symbol}",
                        0,
                        symbol,
                        "sell",
                        "limit",
                        price,
                        total,
                        "GTC",
                        None,
                        False,
                        "cancel_newest",
                    ),
                )
            )
            entries += [
                (agent, agent.order(symbol, "buy", price, units)) for agent, units in buyers
            ]
            if listing.trading_mode == "call_auction":
                entries.append((None, cmd.Uncross(ADMIN, symbol)))
        self._round(entries)

    def _post_valuations(self, context: AgentContext, agents: list[Agent]) -> None:
        """The desk values every listed instrument a lender takes as collateral by the
        market approach on the run's trades so far (``exchange.pricing.value``, as
        ``dataex value`` does), or from the day's own trades (``collateral_valuation``), and
        posts it, value, range and comparables, for the marks. Never the true values."""
        symbols = sorted({
            pledge.symbol for agent in agents if isinstance(agent, Lender)
            for pledge in agent.params.pledged if pledge.symbol in context.listings
        })  # fmt: skip
        if not symbols:
            return
        exchange = self.exchange
        market = None  # prepared once, when an instrument needs the market approach
        postings = []
        day_ago_ns = self.clock.now_ns - 86_400 * 10**9
        for symbol in symbols:
            if self.scenario.market.collateral_valuation == "day_trades":
                today = [(price, units) for _, price, units, ts in
                         exchange.market_data.history[symbol] if ts > day_ago_ns]  # fmt: skip
                if today:
                    volume = sum(units for _, units in today)
                    vwap = sum(price * units for price, units in today) // volume
                    low, high = min(p for p, _ in today), max(p for p, _ in today)
                    postings.append(cmd.PostValuation(ADMIN, symbol, vwap, low, high, 0,
                                                      "day_trades"))  # fmt: skip
                    continue
            if market is None:
                products, trades = pricing_records(exchange)
                market = prepare_market(products, trades, as_of=context.date)
                by_id = {record.product_id: record for record in products}
            instrument = exchange.instruments[symbol]
            terms = terms_from_catalogue(instrument.terms)
            book = book_snapshot(exchange, instrument.product_id, terms)
            report = value(market, TargetSpec(by_id[instrument.product_id], terms, context.date,
                                              book=book))  # fmt: skip
            worth = max(1, round(report.value * MINOR_PER_UNIT))
            low = max(1, min(worth, round(report.low * MINOR_PER_UNIT)))
            high = max(worth, round(report.high * MINOR_PER_UNIT))
            method = report.method[:32]  # the journal's limit on a method's name
            postings.append(
                cmd.PostValuation(ADMIN, symbol, worth, low, high, report.n_comparables, method)
            )
        self._operator(postings)

    def _must(self, outcomes: list[Outcome | None], what: str) -> list[Outcome | None]:
        if any(outcome is None for outcome in outcomes):
            reasons = dict(self.refused.get(OPERATOR_KIND, {}))
            raise SimulationError(f"the exchange refused to {what}: {reasons}")
        return outcomes

    def _product(self, product: ProductSpec) -> cmd.CreateProduct:
        end = self.scenario.start_date - dt.timedelta(days=1)
        start = end - dt.timedelta(days=round(product.coverage_months * DAYS_PER_MONTH))
        quality = dict(
            zip(
                ("completeness", "accuracy", "timeliness", "consistency"),
                product.quality_bp,
                strict=True,
            )
        )
        return cmd.CreateProduct(
            actor=product.provider,
            product_id="",
            title=product.title,
            description=f"Simulated ({self.scenario.name}); scenario id {product.key}",
            category=product.category,
            region=product.region,
            record_count=product.record_count,
            coverage_start=start.isoformat(),
            coverage_end=end.isoformat(),
            update_frequency=product.update_frequency,
            quality_bp=quality,
            personal_information=product.personal_information,
            classification=product.classification,
            desensitised=product.desensitised,
            lawful_source_attestation=(
                "Collected under the provider's operating licence (simulated)"
                if product.lawful_source
                else ""
            ),
            cost_basis_minor=self.truth.cost_basis_minor[product.key],
        )

    def _agents(self) -> list[Agent]:
        cash = {p.participant_id: p.cash_minor for p in self.scenario.participants}
        agents: list[Agent] = []
        for spec in self.scenario.agents:
            for participant in spec.participants:
                rng = derive_rng(self.seed, f"agent:{participant}")
                params = spec.params
                budget = getattr(params, "budget_minor", None)
                budget = cash[participant] if budget is None else budget
                agent: Agent
                if isinstance(params, ProviderParams):
                    agent = Provider(participant, rng, params)
                elif isinstance(params, BuyerParams):
                    agent = Buyer(participant, rng, params, budget)
                elif isinstance(params, MarketMakerParams):
                    agent = MarketMaker(participant, rng, params, budget)
                elif isinstance(params, NoiseParams):
                    agent = NoiseTrader(participant, rng, params, budget)
                elif isinstance(params, RfqBuyerParams):
                    agent = RfqBuyer(participant, rng, params, budget)
                elif isinstance(params, RfqProviderParams):
                    agent = RfqProvider(participant, rng, params)
                else:
                    assert isinstance(params, LenderParams)
                    agent = Lender(participant, rng, params)
                agents.append(agent)
        return agents

    # -- trading -------------------------------------------------------------------------

    def _trade(self, context: AgentContext, agents: list[Agent], recorder: MarketRecorder) -> int:
        scenario = self.scenario
        quoting = [agent for agent in agents if agent.quoting]
        others = [agent for agent in agents if not agent.quoting]
        lenders = [agent for agent in agents if isinstance(agent, Lender)]
        scheduler = derive_rng(self.seed, "scheduler")
        attention = _Attention(scenario, self.seed)
        continuous = [s for s, x in context.listings.items() if x.trading_mode == "continuous"]
        calls = [
            (s, x.auction_every_ticks)
            for s, x in context.listings.items()
            if x.trading_mode == "call_auction"
        ]
        tick_ns, engine = scenario.tick_ns, self.exchange.engine
        session_ns = round(scenario.session_hours * 3_600 * 10**9)
        tick = 0
        for day in range(self.days):
            day_start_ns = self.first_session_ns + day * 86_400 * 10**9
            context.day, context.date = day, scenario.start_date + dt.timedelta(days=day)
            for in_day in range(scenario.ticks_per_day):
                if self.stop_after_ticks is not None and tick >= self.stop_after_ticks:
                    break
                now_ns = day_start_ns + in_day * tick_ns
                self.clock.set(now_ns)
                context.now_ns, context.tick = now_ns, tick
                if tick:
                    self.truth.advance()
                    context.attention = attention.advance()
                if in_day == 0:
                    for shock in scenario.shocks:
                        if shock.day == day:
                            self.truth.reprice(shock.category, shock.factor)
                entries: list[tuple[Agent | None, cmd.Command]] = []
                if in_day == 0:
                    entries += [(None, cmd.SetPhase(ADMIN, s, "continuous")) for s in continuous]
                for agent in quoting:
                    entries += [(agent, command) for command in agent.act(context)]
                acting = [
                    (agent, commands)
                    for agent in others
                    if agent.wake_tick <= tick and (commands := agent.act(context))
                ]
                scheduler.shuffle(acting)
                for agent, commands in acting:
                    entries += [(agent, command) for command in commands]
                for symbol, every in calls:
                    if (tick + 1) % every == 0:
                        bids, asks = engine.depth(symbol, 1)
                        if bids and asks:  # an empty side cannot trade: no call is held
                            entries.append((None, cmd.Uncross(ADMIN, symbol)))
                self._round(entries)
                context.view.refresh()
                if tick % scenario.sample_every_ticks == 0:
                    recorder.sample(tick, context)
                tick += 1
                if self.on_tick is not None:
                    self.on_tick(tick)
            self.clock.set(max(self.clock.now_ns, day_start_ns + session_ns))
            context.now_ns = self.clock.now_ns
            if scenario.market.close_daily:
                self._round([(None, cmd.SetPhase(ADMIN, s, "closed")) for s in continuous])
                context.view.refresh()
            if any(day % lender.params.valuation_every_days == 0 for lender in lenders):
                self._post_valuations(context, agents)
                context.view.refresh()
            for agent in agents:
                agent.end_of_day(context)
            if self.stop_after_ticks is not None and tick >= self.stop_after_ticks:
                break
        return tick


@contextmanager
def _collector_for_a_batch_job() -> Iterator[None]:
    """Run the cyclic garbage collector rarely while the run lasts.

    A run builds a large, long-lived state (every order, fill and trade the exchange keeps)
    and makes little cyclic garbage; with the default thresholds the collector walks that
    whole state again and again (26 full collections in one day of the liquid scenario,
    a quarter of its wall time; docs/benchmarks.md). Reference counting still frees all
    acyclic garbage at once; the thresholds are restored afterwards.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


class _Attention:
    """The noise traders' shared attention: ``exp(a_t - s^2/2)`` with ``a_t = phi a_{t-1} +
    eta e_t``, a persistent level whose mean is about 1, so activity (and with it volatility)
    comes in bursts."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        market = scenario.market
        self.phi, self.eta = market.attention_persistence, market.attention_volatility
        self.level = 0.0
        self.drift = self.eta**2 / (1 - self.phi**2) / 2 if self.eta else 0.0
        self.rng = derive_rng(seed, "attention")

    def advance(self) -> float:
        if not self.eta:
            return 1.0
        self.level = self.phi * self.level + self.eta * self.rng.gauss(0.0, 1.0)
        return math.exp(self.level - self.drift)


def conservation_problems(ledger: Ledger, exchange: Exchange, deposits_minor: int) -> list[str]:
    """What is not conserved, in words (empty when all is well): every asset sums to zero
    over all accounts; the cash on participants' accounts and in fees equals what was
    deposited; each instrument's licences (unsold, held, expired) equal what was issued,
    which is its cap; the exchange's in-memory balances equal the ledger's."""
    problems: list[str] = []
    balances = ledger.balances_from_postings()
    by_asset: Counter[str] = Counter()
    for (_account, asset), units in balances.items():
        by_asset[asset] += units
    problems += [f"asset {asset} sums to {total}" for asset, total in by_asset.items() if total]
    cash = sum(
        units
        for (account, asset), units in balances.items()
        if asset == accounts.CASH and account != accounts.EXTERNAL_CASH
    )
    if cash != deposits_minor:
        problems.append(f"cash on the exchange is {cash}, deposits were {deposits_minor}")
    for symbol, instrument in exchange.instruments.items():
        asset = accounts.licence_asset(symbol)
        issued = -balances.get((accounts.issued(symbol), asset), 0)
        if issued != instrument.issuance_cap_units:
            problems.append(
                f"{symbol}: {issued} licences issued, cap {instrument.issuance_cap_units}"
            )
        inside = sum(
            units
            for (account, a), units in balances.items()
            if a == asset and account != accounts.issued(symbol)
        )
        if inside != issued:
            problems.append(f"{symbol}: {inside} licences accounted for, {issued} issued")
    nonzero = {key: units for key, units in balances.items() if units}
    projected = {key: units for key, units in ledger.balances().items() if units}
    if projected != nonzero:
        problems.append("the balance projection differs from the postings")
    in_memory = {account: units for account, units in exchange.risk.balances.items() if units}
    if in_memory != {account: units for (account, _asset), units in nonzero.items()}:
        problems.append("the exchange's in-memory balances differ from the ledger's")
    try:
        exchange.check_invariants()
    except AssertionError as error:
        problems.append(f"exchange invariant: {error}")
    return problems
