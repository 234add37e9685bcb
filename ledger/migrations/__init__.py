"""Alembic migrations of the ledger's schema; run them with :func:`ledger.migrate`."""
