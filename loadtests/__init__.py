"""Benchmarks and load tests of the engine, the ledger and the API."""
