"""Paygate risk: rate limits, funds and credit checks, rules."""
