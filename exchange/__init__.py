"""The exchange service around the matching engine and the ledger."""
