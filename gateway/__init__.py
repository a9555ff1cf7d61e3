"""Paygate gateway: HTTP API, auth, orchestration, ledger, workers and CLI."""
