"""Payouts (代付): state machine, fees, funding, accept (group commit), transitions, queries."""
