"""Merchants: their settings (funding mode, fees, limits) and storage."""
