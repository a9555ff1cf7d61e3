"""Ledger moves: the only ways money moves (pure; knows nothing of SQL or HTTP).

A move is one journal entry. Its postings sum to zero, asserted on construction. Postings to a
merchant's own accounts are derived from its balance delta, and postings to a customer's
account (`acc_…:available`, `acc_…:frozen`, SPEC 16) from that account's delta, so no cached
balance row and its postings can disagree. Sign convention: a positive posting credits the
account; merchant and customer accounts are liabilities (balances >= 0) except the advance
receivable, whose balance is minus `advance_used`. Platform balances are never cached: they
are sums of postings.
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

    def is_zero(self) -> bool:
        return not (
            self.available_fen or self.held_fen or self.pending_in_fen or self.advance_used_fen
        )


NO_CHANGE = BalanceDelta()


def customer_account(account_id: str, kind: str) -> str:
    """The ledger account of a customer's account (`acc_…`): `available` or `frozen`."""
    return f"{account_id}:{kind}"


CUSTOMER_ACCOUNT_KINDS = ("available", "frozen")


@dataclass(frozen=True, slots=True)
class AccountDelta:
    """A change to a personal account's cached balance row (both columns stay >= 0)."""

    account_id: str
    available_fen: int = 0
    frozen_fen: int = 0

    def postings(self) -> list[tuple[str, int]]:
        pairs = (("available", self.available_fen), ("frozen", self.frozen_fen))
        return [(customer_account(self.account_id, kind), amt) for kind, amt in pairs if amt]


@dataclass(frozen=True, slots=True)
class Move:
    kind: str
    merchant_id: str
    ref_id: str
    delta: BalanceDelta
    platform: tuple[tuple[str, int], ...] = ()
    pool_delta_fen: int = 0  # change to the platform advance pool's used amount
    accounts: tuple[AccountDelta, ...] = ()  # customers' accounts of this merchant
    postings: tuple[tuple[str, int], ...] = field(init=False)

    def __post_init__(self) -> None:
        postings = (
            tuple(self.delta.merchant_postings(self.merchant_id))
            + tuple(p for a in self.accounts for p in a.postings())
            + tuple((acct, amt) for acct, amt in self.platform if amt)
        )
        assert len({a.account_id for a in self.accounts}) == len(self.accounts), self.accounts
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


# Accounts (SPEC 16). An endpoint of a transfer is a personal account's id, or None for the
# merchant's settlement account, whose money is the merchant's `available`.


def transfer(
    merchant_id: str,
    transfer_id: str,
    amount_fen: int,
    from_account: str | None,
    to_account: str | None,
    *,
    from_frozen: bool = False,
) -> Move:
    """个转个 / 个转商 / 商转个: the amount leaves the source's available (or, for a claim
    transfer 债权转让, its frozen money) and arrives in the destination's available."""
    assert amount_fen > 0 and from_account != to_account
    assert not (from_frozen and from_account is None), "a settlement account has no freezes"
    accounts: list[AccountDelta] = []
    delta = NO_CHANGE
    if from_account is None:
        delta = BalanceDelta(available_fen=-amount_fen)
    elif from_frozen:
        accounts.append(AccountDelta(from_account, frozen_fen=-amount_fen))
    else:
        accounts.append(AccountDelta(from_account, available_fen=-amount_fen))
    if to_account is None:
        delta = BalanceDelta(available_fen=amount_fen)
    else:
        accounts.append(AccountDelta(to_account, available_fen=amount_fen))
    return Move("transfer", merchant_id, transfer_id, delta, accounts=tuple(accounts))


def freeze(merchant_id: str, freeze_id: str, account_id: str, amount_fen: int) -> Move:
    """冻结: available -> frozen on one personal account."""
    assert amount_fen > 0
    return Move("freeze", merchant_id, freeze_id, NO_CHANGE,
                accounts=(AccountDelta(account_id, -amount_fen, amount_fen),))  # fmt: skip


def unfreeze(merchant_id: str, freeze_id: str, account_id: str, amount_fen: int) -> Move:
    """解冻: frozen -> available, whole or part of a freeze."""
    assert amount_fen > 0
    return Move("unfreeze", merchant_id, freeze_id, NO_CHANGE,
                accounts=(AccountDelta(account_id, amount_fen, -amount_fen),))  # fmt: skip


def collection_credited(
    merchant_id: str,
    collection_id: str,
    amount_fen: int,
    repay_fen: int,
    line_fen: int,
    account_id: str | None,
    bank_id: str,
) -> Move:
    """代收 succeeded: the payer's money arrived in the bank's reserve. It repays first what
    the company fronted for this payer (`repay_fen`): `line_fen` of it back to the merchant's
    advance line, the rest to the merchant's available (a B2B clearing had already repaid the
    line with the merchant's own money). What is left is credited to the account (None: the
    merchant's settlement account)."""
    assert 0 <= line_fen <= repay_fen <= amount_fen and amount_fen > 0
    rest = amount_fen - repay_fen
    accounts = (AccountDelta(account_id, available_fen=rest),) if account_id and rest else ()
    merchant_available = repay_fen - line_fen + (rest if account_id is None else 0)
    return Move(
        "collection_credited",
        merchant_id,
        collection_id,
        BalanceDelta(available_fen=merchant_available, advance_used_fen=-line_fen),
        ((reserve_account(bank_id), -amount_fen),),
        pool_delta_fen=-line_fen,
        accounts=accounts,
    )


def collection_fronted(
    merchant_id: str, collection_id: str, amount_fen: int, account_id: str | None
) -> Move:
    """还款划扣 failed with advance_on_failure (公司垫付): the company fronts the amount from the
    merchant's advance line to the account, as if the debit had succeeded."""
    assert amount_fen > 0
    accounts = (AccountDelta(account_id, available_fen=amount_fen),) if account_id else ()
    settlement = amount_fen if account_id is None else 0
    return Move(
        "collection_fronted",
        merchant_id,
        collection_id,
        BalanceDelta(available_fen=settlement, advance_used_fen=amount_fen),
        pool_delta_fen=amount_fen,
        accounts=accounts,
    )


def withdrawal(merchant_id: str, payout_id: str, amount_fen: int, account_id: str) -> Move:
    """提现: the amount leaves the personal account for the merchant's available (个转商), in the
    accept transaction, before the payout's hold takes it (代付)."""
    assert amount_fen > 0
    return Move("withdrawal_out", merchant_id, payout_id, BalanceDelta(available_fen=amount_fen),
                accounts=(AccountDelta(account_id, available_fen=-amount_fen),))  # fmt: skip


def withdrawal_back(merchant_id: str, payout_id: str, amount_fen: int, account_id: str) -> Move:
    """A withdrawal that failed, was rejected or returned (退票): the amount, given back to the
    merchant's available by the release or the return, goes on to the personal account."""
    assert amount_fen > 0
    return Move("withdrawal_back", merchant_id, payout_id, BalanceDelta(available_fen=-amount_fen),
                accounts=(AccountDelta(account_id, available_fen=amount_fen),))  # fmt: skip
