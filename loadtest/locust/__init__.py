"""Locust load for a running `paygate up`: the locustfile, its payloads and target."""
