"""A small scenario for fast tests: two products (one traded continuously, one by call
auction), a provider, a market maker, buyers and noise traders, a lender; two days of 30
ticks. Tests change single lines of it to provoke errors."""

from __future__ import annotations

TINY = """
[scenario]
name = "tiny"
days = 2
ticks_per_day = 30
sample_every_ticks = 2
bar_ticks = 2

[market]
attention_volatility = 0.1
collateral_valuation = "day_trades"   # the market approach has too few products here

[truth]
volatility_per_day = 0.02
volatility_of_volatility = 0.1

[terms.NX12C]
scope = "commercial"

[terms.NX12I]
transferable = false

[[participants]]
id = "prov"
roles = ["provider"]

[[participants]]
id = "mm"
roles = ["market_maker"]
cash = 500_000.0

[[participants]]
id = "buyer"
count = 6
roles = ["buyer"]
cash = 50_000.0

[[participants]]
id = "noise"
count = 6
roles = ["buyer"]
cash = 50_000.0

[[participants]]
id = "bank"
roles = ["lender"]
cash = 1_000_000.0

[[products]]
id = "flow"
provider = "prov"
category = "transport"
record_count = 2_000_000
quality = 0.9

[[products]]
id = "geo"
count = 3
provider = "prov"
category = "geospatial"
record_count = [10_000, 1_000_000]
quality = [0.7, 0.95]
update_frequency = ["monthly", "static"]

[[listings]]
products = ["flow"]
terms = "NX12C"
trading_mode = "continuous"
tick_size = 1.0
issuance_cap = 10_000

[[listings]]
products = ["geo"]
terms = ["NX12I"]
trading_mode = "call_auction"
auction_every_ticks = 5
tick_size = 1.0
issuance_cap = 1_000

[[agents]]
kind = "provider"
participants = "prov"
requote_ticks = 3
patience_ticks = 10

[[agents]]
kind = "market_maker"
participants = "mm"
initial_units = 10
quote_units = 2

[[agents]]
kind = "buyer"
participants = "buyer"
budget = 40_000.0
activity = 0.3
max_units = 4
initial_units = 1

[[agents]]
kind = "noise"
participants = "noise"
activity = 0.3
initial_units = 2
trend_weight = 0.2

[[agents]]
kind = "lender"
participants = "bank"
borrower = "prov"
pledged = [{ symbol = "FLOW.NX12C", units = 100 }]
"""


def tiny(replacements: dict[str, str] | None = None) -> str:
    """TINY with the first occurrence of each ``old`` text replaced by ``new``."""
    text = TINY
    for old, new in (replacements or {}).items():
        assert old in text, old
        text = text.replace(old, new, 1)
    return text
