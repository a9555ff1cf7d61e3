"""The bench's cost table: CPU per 1,000 payouts per process, the total, and the gateway's own
share (its processes and stores, not the simulated world around it)."""

from __future__ import annotations

from loadtest.bench.cost import Reading, cost_lines, cost_summary


def test_the_gateways_own_share_counts_its_processes_and_stores_only() -> None:
    before = Reading(0.0, {"gateway": 1.0, "worker": 1.0, "bank-sim": 1.0, "webhook-sink": 1.0,
                           "postgres": 1.0, "redis": 1.0, "up": 1.0})  # fmt: skip
    after = Reading(10.0, {"gateway": 1.5, "worker": 1.3, "bank-sim": 1.1, "webhook-sink": 1.1,
                           "postgres": 1.6, "redis": 1.05, "up": 1.0})  # fmt: skip
    cost = cost_summary(before, after, payouts=1000, generator_cpu_s=0.2)
    ms = cost["cpu_ms_per_1000_payouts"]
    assert ms["gateway"] == 500 and ms["load generator"] == 200
    assert ms["total"] == 500 + 300 + 100 + 100 + 600 + 50 + 0 + 200
    assert cost["product_cpu_ms_per_1000_payouts"] == 500 + 300 + 600 + 50
    rows = dict(cost_lines(cost))
    assert rows["cost per 1,000 payouts  TOTAL"].startswith("1,850 CPU ms")
    assert rows["  of which the gateway's own"].startswith("1,450 CPU ms (gateway, worker,")
