"""Accounts' pure rules (SPEC 16): transfer and freeze moves balance by construction, the
freeze transition table, and the funds decisions (frozen money is never spent by a debit)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.accounts import decide
from gateway.accounts.decide import AccountFunds
from gateway.accounts.freeze_state import (
    FINAL,
    TRANSITIONS,
    FreezeEvent,
    FreezeStatus,
    IllegalFreezeStep,
    LedgerEffect,
    step,
)
from gateway.ledger import moves

amounts = st.integers(1, 10**13)


@given(amount=amounts)
def test_account_moves_sum_to_zero_and_post_to_the_accounts_they_name(amount: int) -> None:
    cases = {
        "p2p": moves.transfer("m_1", "tr_1", amount, "acc_a", "acc_b"),
        "p2m": moves.transfer("m_1", "tr_2", amount, "acc_a", None),
        "m2p": moves.transfer("m_1", "tr_3", amount, None, "acc_b"),
        "claim": moves.transfer("m_1", "tr_4", amount, "acc_a", "acc_b", from_frozen=True),
        "freeze": moves.freeze("m_1", "frz_1", "acc_a", amount),
        "unfreeze": moves.unfreeze("m_1", "frz_1", "acc_a", amount),
    }
    for name, move in cases.items():
        assert sum(a for _, a in move.postings) == 0, name
        assert move.pool_delta_fen == 0, name
    assert dict(cases["p2p"].postings) == {"acc_a:available": -amount, "acc_b:available": amount}
    assert dict(cases["p2m"].postings) == {"m_1:available": amount, "acc_a:available": -amount}
    assert cases["p2m"].delta.available_fen == amount
    assert dict(cases["m2p"].postings) == {"m_1:available": -amount, "acc_b:available": amount}
    assert dict(cases["claim"].postings) == {"acc_a:frozen": -amount, "acc_b:available": amount}
    assert dict(cases["freeze"].postings) == {"acc_a:available": -amount, "acc_a:frozen": amount}
    # Moves between personal accounts leave the merchant's balance row alone.
    for name in ("p2p", "claim", "freeze", "unfreeze"):
        assert cases[name].delta.is_zero(), name


def test_an_unbalanced_account_move_is_refused() -> None:
    lopsided = (moves.AccountDelta("acc_a", -5), moves.AccountDelta("acc_b", 4))
    with pytest.raises(AssertionError):
        moves.Move("transfer", "m_1", "tr_1", moves.NO_CHANGE, accounts=lopsided)
    with pytest.raises(AssertionError):
        moves.transfer("m_1", "tr_1", 5, None, None)
    with pytest.raises(AssertionError):
        moves.transfer("m_1", "tr_1", 5, None, "acc_b", from_frozen=True)


@given(available=st.integers(0, 10**6), frozen=st.integers(0, 10**6), amount=st.integers(1, 10**6))
def test_a_debit_spends_available_only(available: int, frozen: int, amount: int) -> None:
    refusal = decide.debit(AccountFunds(available, frozen), amount)
    if amount <= available:
        assert refusal is None
    elif amount <= available + frozen:
        assert refusal is not None and refusal.code == "account_frozen_funds"
    else:
        assert refusal is not None and refusal.code == "insufficient_funds"
    assert (decide.freeze(AccountFunds(available, frozen), amount) is None) == (amount <= available)


def test_transfer_kinds() -> None:
    assert decide.transfer_kind("personal", "personal") == "personal_to_personal"
    assert decide.transfer_kind("personal", "merchant") == "personal_to_merchant"
    assert decide.transfer_kind("merchant", "personal") == "merchant_to_personal"
    assert decide.transfer_kind("merchant", "merchant") is None


@given(amount=st.integers(1, 1000), remaining=st.integers(1, 1000))
def test_a_freeze_step_takes_part_or_ends_it(amount: int, remaining: int) -> None:
    for event, final, effect in (
        (FreezeEvent.UNFREEZE, FreezeStatus.RELEASED, LedgerEffect.UNFREEZE),
        (FreezeEvent.TRANSFER, FreezeStatus.TRANSFERRED, LedgerEffect.TRANSFER),
    ):
        if amount > remaining:
            with pytest.raises(IllegalFreezeStep):
                step(FreezeStatus.ACTIVE, event, amount, remaining)
            continue
        to, got = step(FreezeStatus.ACTIVE, event, amount, remaining)
        assert got is effect
        assert to is (final if amount == remaining else FreezeStatus.ACTIVE)


def test_a_final_freeze_never_changes() -> None:
    assert {to for to, _ in TRANSITIONS.values()} - {FreezeStatus.ACTIVE} == FINAL
    for status in FINAL:
        for event in FreezeEvent:
            with pytest.raises(IllegalFreezeStep):
                step(status, event, 1, 1)
    with pytest.raises(IllegalFreezeStep):
        step(FreezeStatus.ACTIVE, FreezeEvent.UNFREEZE, 0, 5)
