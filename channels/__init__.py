"""Paygate channels: the bank simulator, channel clients and routing."""
