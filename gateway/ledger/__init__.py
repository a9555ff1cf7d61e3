"""Double-entry ledger: pure moves, the journal writer, balances and the invariant check."""
