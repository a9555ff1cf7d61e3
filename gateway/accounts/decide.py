"""Funds decisions for accounts (SPEC 16), pure: may this much leave an account, and which
kind of transfer is it. No I/O; the transfer and freeze writers apply the answers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class AccountFunds:
    """An account's money as a transaction sees it (mutated as items are applied). For the
    merchant's settlement account: the merchant's available, and held as frozen."""

    available_fen: int
    frozen_fen: int


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str


def debit(funds: AccountFunds, amount_fen: int) -> Refusal | None:
    """Spend from available only: frozen money stays where it is."""
    assert amount_fen > 0
    if amount_fen <= funds.available_fen:
        return None
    if amount_fen <= funds.available_fen + funds.frozen_fen:
        return Refusal(
            "account_frozen_funds",
            f"available {funds.available_fen} is less than {amount_fen}; the rest is frozen",
        )
    return Refusal(
        "insufficient_funds", f"available {funds.available_fen} is less than {amount_fen}"
    )


def freeze(funds: AccountFunds, amount_fen: int) -> Refusal | None:
    """Only available money can be frozen."""
    assert amount_fen > 0
    if amount_fen <= funds.available_fen:
        return None
    return Refusal(
        "insufficient_funds", f"available {funds.available_fen} is less than {amount_fen}"
    )


TRANSFER_KINDS = ("personal_to_personal", "personal_to_merchant", "merchant_to_personal")


def transfer_kind(from_kind: str, to_kind: str) -> str | None:
    """个转个 / 个转商 / 商转个 from the two accounts' kinds; None for settlement to settlement
    (a merchant has one settlement account: that is no transfer)."""
    kind = f"{from_kind}_to_{to_kind}"
    return kind if kind in TRANSFER_KINDS else None
