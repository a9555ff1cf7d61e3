"""The lies a bank's synchronous answers may tell (profile `answer_faults`): a batch's items
answered in another order, an amount other than the one the bank holds. Only the answer
lies: the bank's records, statements and callbacks stay true, so a gateway that matches each
answer to its order by reference, bank and amount loses nothing by them.

Drawn from a stream of their own (one per bank), so switching them on does not shift the
fates the bank draws for its payouts.
"""

from __future__ import annotations

import random
from typing import Any, Literal, TypeVar

from channels.bank_sim.distributions import chance
from channels.bank_sim.profile import BankProfile

T = TypeVar("T")
Hop = Literal["submit", "query"]


class AnswerLies:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def order(self, profile: BankProfile, items: list[T]) -> list[T]:
        """The items in the order the answer lists them: shuffled when the fault hits, and
        then never in the order they came (two or more items)."""
        p = profile.answer_faults.shuffle_batch
        if p <= 0 or len(items) < 2 or not chance(p, self._rng):
            return items
        shuffled = list(items)
        self._rng.shuffle(shuffled)
        if all(a is b for a, b in zip(shuffled, items, strict=True)):
            shuffled.reverse()
        return shuffled

    def record(self, profile: BankProfile, hop: Hop, record: dict[str, Any]) -> dict[str, Any]:
        """A record as the answer states it: one fen more than the bank holds when the
        fault hits."""
        faults = profile.answer_faults
        p = faults.wrong_amount_submit if hop == "submit" else faults.wrong_amount_query
        if p <= 0 or not chance(p, self._rng):
            return record
        return record | {"amount": record["amount"] + 1}
