"""The dashboard for people, served by ``dataex serve`` at ``/``: markets, an instrument's
live book, tape and candles, a product's compliance and valuation, one's own account and
order ticket, and the ledger's digest with an inclusion-proof checker."""

from .pages import install_dashboard

__all__ = ["install_dashboard"]
