"""`paygate bench` and its phases: storage ceiling, capacity, cost, transfers, ledger check."""
