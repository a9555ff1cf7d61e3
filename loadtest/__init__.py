"""Paygate load tools: open-loop generator, Locust files, reports."""
