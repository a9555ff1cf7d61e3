"""Scenarios (SPEC 12): the YAML model, the runner, its watch, phases, timeline plots."""
