"""Order-flow files to engine commands, and events back to rows (exchange/orderflow.py)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.orderflow import (
    INSTRUMENT_COLUMNS,
    FlowTally,
    Listing,
    OrderFlowError,
    book_rows,
    event_line,
    parse_instruments,
    parse_order_flow,
    trade_row,
)
from matching import (
    AddInstrument,
    AmendOrder,
    CancelOrder,
    Engine,
    Expire,
    InstrumentSpec,
    OrderType,
    Phase,
    Rejected,
    RejectReason,
    SelfTradePrevention,
    SetPhase,
    Side,
    SubmitOrder,
    TimeInForce,
    Trade,
    TradingMode,
    Uncross,
)

HEADER = "seq,ts,action,order_id,participant,symbol,side,type,price,quantity,tif,phase"


def commands(*rows: str, header: str = HEADER, listings=None) -> list:
    return [c for _, c in parse_order_flow([header, *rows], listings)]


def error(*rows: str, header: str = HEADER) -> OrderFlowError:
    with pytest.raises(OrderFlowError) as caught:
        commands(*rows, header=header)
    return caught.value


def run(*rows: str, listings=None) -> tuple[Engine, list]:
    engine = Engine()
    events = []
    for command in commands(*rows, listings=listings):
        events += engine.apply(command)
        engine.check_invariants()
    return engine, events


# ---------------------------------------------------------------------------- instruments


def test_symbol_first_seen_trades_continuously_with_tick_and_lot_one():
    first = commands("1,0,new,1,a,X,sell,limit,7,3,GTC,")[0]
    assert first == AddInstrument(
        1, 0, InstrumentSpec("X", tick_size=1, lot_size=1), Phase.CONTINUOUS
    )
    _, events = run("1,0,new,1,a,X,sell,limit,7,3,GTC,", "2,1,new,2,b,X,buy,limit,7,3,GTC,")
    assert [e.price for e in events if isinstance(e, Trade)] == [7]


def test_instrument_is_added_once_before_its_first_row():
    listed = commands("1,0,new,1,a,X,buy,limit,7,3,,", "2,0,new,2,a,X,buy,limit,7,3,,")
    assert [type(c) for c in listed] == [AddInstrument, SubmitOrder, SubmitOrder]


def test_phase_row_for_new_symbol_opens_it_in_that_phase():
    assert commands("1,0,phase,,,X,,,,,,pre_open") == [
        AddInstrument(1, 0, InstrumentSpec("X"), Phase.PRE_OPEN)
    ]


def test_listing_phase_opens_the_instrument_and_a_phase_row_then_applies():
    listings = {"X": Listing(InstrumentSpec("X"), Phase.HALTED)}
    assert commands("1,0,phase,,,X,,,,,,pre_open", listings=listings) == [
        AddInstrument(1, 0, InstrumentSpec("X"), Phase.HALTED),
        SetPhase(1, 0, "X", Phase.PRE_OPEN),
    ]


def test_call_auction_instrument_without_phase_opens_in_auction():
    spec = InstrumentSpec("X", trading_mode=TradingMode.CALL_AUCTION)
    listed = commands("1,0,new,1,a,X,buy,limit,7,3,,", listings={"X": Listing(spec)})
    assert listed[0] == AddInstrument(1, 0, spec, Phase.AUCTION)


def test_phase_row_cannot_open_call_auction_instrument_in_continuous():
    spec = InstrumentSpec("X", trading_mode=TradingMode.CALL_AUCTION)
    listed = commands("1,0,phase,,,X,,,,,,continuous", listings={"X": Listing(spec)})
    assert listed == [
        AddInstrument(1, 0, spec, Phase.AUCTION),
        SetPhase(1, 0, "X", Phase.CONTINUOUS),
    ]


def test_listing_spec_reaches_the_engine():
    listings = {"X": Listing(InstrumentSpec("X", tick_size=5))}
    _, events = run("1,0,new,1,a,X,buy,limit,7,3,,", listings=listings)
    assert events[-1] == Rejected(1, "X", RejectReason.VALIDATION_PRICE_OFF_TICK)


def test_cancel_amend_and_expire_rows_add_no_instrument():
    listed = commands("1,0,cancel,1,a,X,,,,,,", "2,0,amend,1,a,X,,,5,,,", "3,0,expire,,,X,,,,,,")
    assert [type(c) for c in listed] == [CancelOrder, AmendOrder, Expire]


# ---------------------------------------------------------------------------- actions


def test_new_row_defaults_to_limit_gtc_cancel_newest():
    order = commands("1,2,new,9,a,X,buy,,7,3,,")[1]
    assert order == SubmitOrder(
        1, 2, 9, "a", "X", Side.BUY, 3, price_minor=7, order_type=OrderType.LIMIT,
        tif=TimeInForce.GTC, stp=SelfTradePrevention.CANCEL_NEWEST,
    )  # fmt: skip


def test_market_order_may_leave_price_empty():
    order = commands("1,0,new,9,a,X,sell,market,,3,IOC,")[1]
    assert (order.order_type, order.price_minor, order.tif) == (
        OrderType.MARKET,
        None,
        TimeInForce.IOC,
    )


def test_optional_order_columns_reach_the_order():
    header = HEADER + ",expire_ts,post_only,stp"
    order = commands("1,0,new,9,a,X,buy,limit,7,3,GTD,,50,true,cancel_both", header=header)[1]
    assert (order.expire_ts, order.post_only, order.stp) == (
        50,
        True,
        SelfTradePrevention.CANCEL_BOTH,
    )


def test_amend_carries_new_price_and_quantity():
    assert commands("1,0,amend,9,a,,,,12,,,", "2,0,amend,9,a,,,,,4,,") == [
        AmendOrder(1, 0, 9, "a", price_minor=12, quantity_units=None),
        AmendOrder(2, 0, 9, "a", price_minor=None, quantity_units=4),
    ]


def test_uncross_and_phase_rows_name_their_symbol():
    header = HEADER + ",cancel_resting"
    listed = commands("1,0,uncross,,,X,,,,,,,", "2,0,phase,,,X,,,,,,halted,yes", header=header)
    assert listed[1:] == [Uncross(1, 0, "X"), SetPhase(2, 0, "X", Phase.HALTED, True)]


def test_values_are_case_insensitive():
    order = commands("1,0,NEW,9,a,X,Buy,LIMIT,7,3,gtc,")[1]
    assert (order.side, order.order_type, order.tif) == (Side.BUY, OrderType.LIMIT, TimeInForce.GTC)


def test_columns_may_be_absent_when_no_row_needs_them():
    assert commands("1,0,expire", "2,5,expire", header="seq,ts,action") == [
        Expire(1, 0),
        Expire(2, 5),
    ]


def test_comment_and_blank_lines_are_skipped_but_keep_line_numbers():
    lines = ["# a note", HEADER, "", "# another", "1,0,new,1,a,X,buy,limit,7,3,,"]
    assert [line for line, _ in parse_order_flow(lines)] == [5, 5]


# ---------------------------------------------------------------------------- file errors


def test_bad_price_names_line_and_problem():
    failure = error("1,0,new,1,a,X,buy,limit,7,3,,", "2,0,new,2,a,X,buy,limit,abc,3,,")
    assert (failure.line, failure.message) == (3, "price 'abc' is not an integer")


def test_unknown_action_names_line():
    failure = error("1,0,buy,1,a,X,buy,limit,7,3,,")
    assert failure.line == 2
    assert failure.message.startswith("unknown action 'buy'; expected new, cancel")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("1,0,new,1,a,X,up,limit,7,3,,", "side 'up' is not buy or sell"),
        ("1,0,new,1,a,X,buy,stop,7,3,,", "type 'stop' is not limit or market"),
        ("1,0,new,1,a,X,buy,limit,7,3,GTX,", "tif 'GTX' is not GTC, DAY, IOC, FOK or GTD"),
        (
            "1,0,phase,,,X,,,,,,open",
            "phase 'open' is not pre_open, auction, continuous, halted or closed",
        ),
        ("1,0,new,1,a,X,buy,limit,7,1.5,,", "quantity '1.5' is not an integer"),
        ("1,0,new,1,,X,buy,limit,7,3,,", "action 'new' needs participant, which is empty"),
        ("1,0,cancel,,a,,,,,,,", "action 'cancel' needs order_id, which is empty"),
        ("x,0,expire,,,,,,,,,", "seq 'x' is not an integer"),
        ("1,,expire,,,,,,,,,", "ts is empty"),
        (
            "1,0,new,1,a,X,buy,limit,9223372036854775808,3,,",
            "price 9223372036854775808 is out of the 64-bit range",
        ),
    ],
)
def test_unreadable_value_names_the_column_and_value(row, message):
    assert error(row).message == message


def test_missing_required_column_in_header_is_an_error():
    failure = error("1,new", header="seq,action")
    assert (failure.line, failure.message) == (1, "missing required column 'ts'")


def test_row_needing_an_absent_column_names_it():
    header = "seq,ts,action,order_id,participant,symbol,price,quantity"
    assert error("1,0,new,1,a,X,7,3", header=header).message == (
        "action 'new' needs side, but the header has no 'side' column"
    )


def test_unknown_column_is_an_error():
    assert error("1,0,expire,x", header="seq,ts,action,postonly").message.startswith(
        "unknown column 'postonly'"
    )


def test_duplicate_column_is_an_error():
    assert error("1,0,expire,1", header="seq,ts,action,seq").message == "column 'seq' appears twice"


def test_row_with_wrong_field_count_is_an_error():
    assert error("1,0,expire").message == "row has 3 fields but the header has 12"


def test_seq_not_increasing_is_an_error():
    failure = error("5,0,expire,,,,,,,,,", "5,0,expire,,,,,,,,,")
    assert (failure.line, failure.message) == (3, "seq 5 is not above the previous row's 5")


def test_ts_going_back_is_an_error():
    assert error("1,9,expire,,,,,,,,,", "2,8,expire,,,,,,,,,").message == (
        "ts 8 is before the previous row's 9"
    )


def test_file_without_header_is_an_error():
    with pytest.raises(OrderFlowError, match="no header"):
        list(parse_order_flow(["# only a comment", ""]))


def test_boolean_column_refuses_other_text():
    header = HEADER + ",post_only"
    assert error("1,0,new,1,a,X,buy,limit,7,3,,,maybe", header=header).message == (
        "post_only 'maybe' is not true or false"
    )


# ---------------------------------------------------------------------------- instruments file


def test_instruments_file_needs_only_symbol():
    assert parse_instruments(["symbol", "X"]) == {"X": Listing(InstrumentSpec("X"), None)}


def test_instruments_file_columns_reach_the_spec():
    header = (
        "symbol,tick_size,lot_size,trading_mode,price_band_low,price_band_high,"
        "max_order_quantity,sealed_bid_pricing,phase"
    )
    listings = parse_instruments([header, "X,5,10,sealed_bid,50,500,1000,second_price,auction"])
    spec = listings["X"].spec
    assert (spec.tick_size, spec.lot_size, spec.trading_mode) == (5, 10, TradingMode.SEALED_BID)
    assert (spec.price_band_low, spec.price_band_high, spec.max_order_quantity) == (50, 500, 1000)
    assert (spec.sealed_bid_pricing.value, listings["X"].phase) == ("second_price", Phase.AUCTION)


def test_instruments_file_refuses_a_spec_the_engine_would_refuse():
    with pytest.raises(OrderFlowError) as caught:
        parse_instruments(["symbol,tick_size", "X,0"])
    assert (caught.value.line, caught.value.message) == (
        2,
        "instrument X: tick_size must be positive",
    )


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        (["symbol,tick_size", "X,5", "Y,five"], 3, "tick_size 'five' is not an integer"),
        (["symbol,trading_mode", "X,auction"], 2,
         "trading_mode 'auction' is not continuous, call_auction or sealed_bid"),
        (["symbol,lot_size", ",10"], 2, "symbol is empty"),
        (["# listed", "symbol,tick", "X,5"], 2, "unknown column 'tick'; known: " + ", ".join(
            INSTRUMENT_COLUMNS)),
        (["tick_size", "5"], 1, "missing required column 'symbol'"),
    ],
)  # fmt: skip
def test_instruments_file_errors_name_the_line_and_the_column(lines, line, message):
    with pytest.raises(OrderFlowError) as caught:
        parse_instruments(lines)
    assert (caught.value.line, caught.value.message) == (line, message)


def test_instruments_file_refuses_continuous_phase_for_call_auction_mode():
    with pytest.raises(OrderFlowError, match="has no continuous phase"):
        parse_instruments(["symbol,trading_mode,phase", "X,call_auction,continuous"])


def test_instruments_file_refuses_a_symbol_listed_twice():
    with pytest.raises(OrderFlowError, match="listed twice"):
        parse_instruments(["symbol", "X", "X"])


# ---------------------------------------------------------------------------- outputs


def test_trade_row_leaves_aggressor_empty_for_auction_trades():
    _, events = run(
        "1,0,phase,,,X,,,,,,pre_open",
        "2,0,new,1,a,X,buy,limit,7,3,,",
        "3,0,new,2,b,X,sell,limit,7,3,,",
        "4,0,phase,,,X,,,,,,continuous",
    )
    (trade,) = [e for e in events if isinstance(e, Trade)]
    assert trade_row(trade) == (1, 4, 0, "X", 7, 3, 1, 2, "a", "b", "")


def test_book_rows_list_every_level_best_first():
    engine, _ = run(
        "1,0,new,1,a,X,buy,limit,5,1,,",
        "2,0,new,2,a,X,buy,limit,6,2,,",
        "3,0,new,3,a,X,sell,limit,9,3,,",
        "4,0,new,4,a,X,sell,limit,8,4,,",
    )
    assert list(book_rows(engine)) == [
        ("X", "buy", 1, 6, 2),
        ("X", "buy", 2, 5, 1),
        ("X", "sell", 1, 8, 4),
        ("X", "sell", 2, 9, 3),
    ]


def test_event_line_is_one_json_object_tagged_with_line_and_seq():
    rejected = Rejected(3, "X", RejectReason.VALIDATION_PRICE_OFF_TICK)
    text = event_line(17, 12, rejected)
    assert text.endswith("\n") and text.count("\n") == 1
    assert orjson.loads(text) == {
        "line": 17,
        "seq": 12,
        "event": "Rejected",
        "order_id": 3,
        "symbol": "X",
        "reason": "VALIDATION_PRICE_OFF_TICK",
    }


def test_tally_counts_rows_orders_rejections_and_volume():
    tally = FlowTally()
    engine = Engine()
    flow = parse_order_flow(
        [
            HEADER,
            "1,0,new,1,a,X,sell,limit,7,5,,",
            "2,0,new,2,b,X,buy,limit,8,2,,",
            "3,0,new,3,b,X,buy,limit,,2,,",
            "4,0,cancel,99,b,,,,,,,",
        ]
    )
    for line, command in flow:
        tally.record(line, command, engine.apply(command))
    assert (tally.rows, tally.orders_accepted, tally.orders_rejected) == (4, 2, 1)
    assert tally.rejections == {
        RejectReason.VALIDATION_PRICE_REQUIRED: 1,
        RejectReason.MATCHING_UNKNOWN_ORDER: 1,
    }
    assert (tally.trades, tally.volume, tally.symbols["X"].last_price) == (1, 2, 7)
    assert [line for line, _ in tally.first_rejections] == [4, 5]


# ---------------------------------------------------------------------------- any input

_junk = st.text(max_size=4)


def _column(*values: str) -> st.SearchStrategy[str]:
    """The column's meaningful values, and now and then a value of the wrong kind."""
    return st.sampled_from((*values, *values, *values, "x", "1.5"))


_row = st.tuples(
    _column("new", "new", "new", "cancel", "amend", "phase", "uncross", "expire"),
    _column("", "1", "2", "3", "4"),
    _column("", "a", "b"),
    _column("", "S", "T"),
    _column("", "buy", "sell"),
    _column("", "limit", "market"),
    _column("", "99", "100", "101", "0", "-1", "99999999999999999999"),
    _column("", "1", "5", "0", "-2"),
    _column("", "GTC", "IOC", "FOK", "DAY", "GTD"),
    _column("", "pre_open", "auction", "continuous", "halted", "closed"),
).map(",".join)
_rows = st.lists(st.one_of(_row, _row, _row, _junk), max_size=15)


@settings(max_examples=300, deadline=None)
@given(rows=_rows)
def test_any_file_either_runs_or_names_its_bad_line(rows):
    """Whatever a file holds, reading it gives commands the engine takes without an
    exception, or one OrderFlowError naming a line of the file; nothing else escapes."""
    lines = [HEADER, *(f"{i + 1},{i},{row}" for i, row in enumerate(rows))]
    engine = Engine()
    try:
        for _, command in parse_order_flow(lines):
            engine.apply(command)
            engine.check_invariants()
    except OrderFlowError as problem:
        assert 1 <= problem.line <= len(lines)
