"""The funds decision (SPEC 5), pure: where a payout's amount + fee comes from, or why not.

prefunded (提前充值): accepted only if available >= total.
advance (垫资): the balance first, the rest fronted, if the credit line and the platform's
advance pool both have room.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class FundsState:
    """A merchant's funds as the accept transaction sees them (mutated as items are held)."""

    funding_mode: str
    available_fen: int
    advance_limit_fen: int
    advance_used_fen: int


@dataclass(frozen=True, slots=True)
class Funding:
    balance_fen: int
    advance_fen: int


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str


def decide(funds: FundsState, total_fen: int, pool_room_fen: int) -> Funding | Refusal:
    assert total_fen > 0
    if total_fen <= funds.available_fen:
        return Funding(balance_fen=total_fen, advance_fen=0)
    if funds.funding_mode == "prefunded":
        return Refusal(
            "insufficient_funds",
            f"available {funds.available_fen} is less than amount + fee {total_fen}",
        )
    balance_part = max(0, funds.available_fen)
    need = total_fen - balance_part
    credit_room = funds.advance_limit_fen - funds.advance_used_fen
    if need > credit_room:
        return Refusal(
            "advance_limit_exceeded",
            f"needs {need} of advance, the credit line has {max(0, credit_room)} left",
        )
    if need > pool_room_fen:
        return Refusal(
            "advance_limit_exceeded", "the platform advance pool has no room for this payout"
        )
    return Funding(balance_fen=balance_part, advance_fen=need)


def apply_hold(funds: FundsState, funding: Funding) -> None:
    funds.available_fen -= funding.balance_fen
    funds.advance_used_fen += funding.advance_fen
