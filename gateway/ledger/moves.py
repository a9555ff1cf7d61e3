"""Ledger moves: the only ways money moves (pure; knows nothing of SQL or HTTP).

A move is one journal entry. Its postings sum to zero, asserted on construction. Postings to a
merchant's own accounts are derived from its balance delta, so the cached balance row and the
postings cannot disagree. Sign convention: a positive posting credits the account; merchant
accounts are liabilities (balances >= 0) except the advance receivable, whose balance is
minus `advance_used`. Platform balances are never cached: they are sums of postings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FEE_INCOME = "platform:fee_income"
DEPOSITS = "platform:deposits"
B2B_IN_TRANSIT = "platform:b2b_in_transit"
RECON_ADJUSTMENTS = "platform:recon_adjustments"


def reserve_account(bank_id: str) -> str:
    return f"platform:reserve:{bank_id}"


def merchant_account(merchant_id: str, kind: str) -> str:
    return f"{merchant_id}:{kind}"


MERCHANT_ACCOUNT_KINDS = ("available", "held", "pending_in", "advance")


@dataclass(frozen=True, slots=True)
class BalanceDelta:
    available_fen: int = 0
    held_fen: int = 0
    pending_in_fen: int = 0
    advance_used_fen: int = 0

    def merchant_postings(self, merchant_id: str) -> list[tuple[str, int]]:
        pairs = (
            ("available", self.available_fen),
            ("held", self.held_fen),
            ("pending_in", self.pending_in_fen),
            # advance_used is a receivable: using credit debits the account.
            ("advance", -self.advance_used_fen),
        )
        return [(merchant_account(merchant_id, kind), amt) for kind, amt in pairs if amt]


@dataclass(frozen=True, slots=True)
class Move:
    kind: str
    merchant_id: str
    ref_id: str
    delta: BalanceDelta
    platform: tuple[tuple[str, int], ...] = ()
    pool_delta_fen: int = 0  # change to the platform advance pool's used amount
    postings: tuple[tuple[str, int], ...] = field(init=False)

    def __post_init__(self) -> None:
        postings = tuple(self.delta.merchant_postings(self.merchant_id)) + tuple(
            (acct, amt) for acct, amt in self.platform if amt
        )
        total = sum(amt for _, amt in postings)
        assert total == 0, f"unbalanced {self.kind} entry for {self.ref_id}: {postings}"
        assert self.pool_delta_fen == self.delta.advance_used_fen, "pool must track advances"
        object.__setattr__(self, "postings", postings)


def credit(merchant_id: str, amount_fen: int, ref_id: str) -> Move:
    """A manual deposit (operator credit): money arrived for the merchant."""
    assert amount_fen > 0
    return Move(
        "credit",
        merchant_id,
        ref_id,
        BalanceDelta(available_fen=amount_fen),
        ((DEPOSITS, -amount_fen),),
    )


def hold(merchant_id: str, payout_id: str, balance_fen: int, advance_fen: int) -> Move:
    """Freeze a payout's amount + fee: the balance part from available, the rest fronted."""
    assert balance_fen >= 0 and advance_fen >= 0 and balance_fen + advance_fen > 0
    return Move(
        "payout_hold",
        merchant_id,
        payout_id,
        BalanceDelta(
            available_fen=-balance_fen,
            held_fen=balance_fen + advance_fen,
            advance_used_fen=advance_fen,
        ),
        pool_delta_fen=advance_fen,
    )


def release(merchant_id: str, payout_id: str, balance_fen: int, advance_fen: int) -> Move:
    """Give back exactly what `hold` took: balance to available, advance to the credit line."""
    return Move(
        "payout_release",
        merchant_id,
        payout_id,
        BalanceDelta(
            available_fen=balance_fen,
            held_fen=-(balance_fen + advance_fen),
            advance_used_fen=-advance_fen,
        ),
        pool_delta_fen=-advance_fen,
    )


def settle(merchant_id: str, payout_id: str, amount_fen: int, fee_fen: int, bank_id: str) -> Move:
    """The bank paid: the amount leaves through the bank's reserve, the fee becomes income."""
    return Move(
        "payout_settle",
        merchant_id,
        payout_id,
        BalanceDelta(held_fen=-(amount_fen + fee_fen)),
        ((reserve_account(bank_id), amount_fen), (FEE_INCOME, fee_fen)),
    )


def refund_return(merchant_id: str, payout_id: str, amount_fen: int, bank_id: str) -> Move:
    """退票: the bank sent the amount back after success; it returns to available, fee kept."""
    return Move(
        "payout_return",
        merchant_id,
        payout_id,
        BalanceDelta(available_fen=amount_fen),
        ((reserve_account(bank_id), -amount_fen),),
    )


def b2b_notified(merchant_id: str, b2b_id: str, amount_fen: int) -> Move:
    """The bank confirmed a B2B payment: funds are on their way (pending_in)."""
    return Move(
        "b2b_notified",
        merchant_id,
        b2b_id,
        BalanceDelta(pending_in_fen=amount_fen),
        ((B2B_IN_TRANSIT, -amount_fen),),
    )


def b2b_cleared(
    merchant_id: str, b2b_id: str, amount_fen: int, advance_used_fen: int, bank_id: str
) -> Move:
    """Funds cleared into the bank's reserve: repay the advance first, the rest to available."""
    repay = min(amount_fen, advance_used_fen)
    return Move(
        "b2b_cleared",
        merchant_id,
        b2b_id,
        BalanceDelta(
            pending_in_fen=-amount_fen,
            advance_used_fen=-repay,
            available_fen=amount_fen - repay,
        ),
        ((reserve_account(bank_id), -amount_fen), (B2B_IN_TRANSIT, amount_fen)),
        pool_delta_fen=-repay,
    )


def b2b_reversed(merchant_id: str, b2b_id: str, amount_fen: int) -> Move:
    """The bank reversed a notified payment: pending_in goes; any advance stays outstanding."""
    return Move(
        "b2b_reversed",
        merchant_id,
        b2b_id,
        BalanceDelta(pending_in_fen=-amount_fen),
        ((B2B_IN_TRANSIT, amount_fen),),
    )


def recon_adjustment(merchant_id: str, exception_id: str, amount_fen: int) -> Move:
    """An operator's correction when resolving a reconciliation exception: positive credits the
    merchant's available, negative debits it, against the platform's adjustments account."""
    assert amount_fen != 0, "an adjustment moves money"
    return Move(
        "recon_adjustment",
        merchant_id,
        exception_id,
        BalanceDelta(available_fen=amount_fen),
        ((RECON_ADJUSTMENTS, -amount_fen),),
    )
