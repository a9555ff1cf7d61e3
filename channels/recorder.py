"""What the bank channel records, as the caller gives it: the channel knows no metrics system.

The gateway passes its `gateway.metrics.Metrics` (created at start-up), which has these
methods; tests and tools pass None.
"""

from __future__ import annotations

from typing import Protocol


class BankRecorder(Protocol):
    def bank_request(self, kind: str) -> None:
        """One HTTP request made to a bank (submit, batch, query, statement ...)."""

    def bank_submission(self, bank_id: str, outcome: str) -> None:
        """One order's submission outcome (acked / refused / unknown)."""

    def bank_answer_mismatch(self, bank_id: str, hop: str) -> None:
        """One answer that matched no order, or not its order."""
