"""Ledger moves balance by construction and release gives back exactly what hold took."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.ledger import moves

fen = st.integers(min_value=0, max_value=10**13)


@given(balance=fen, advance=fen)
def test_hold_then_release_restores_every_balance(balance: int, advance: int) -> None:
    if balance + advance == 0:
        return
    h = moves.hold("m_1", "po_1", balance, advance)
    r = moves.release("m_1", "po_1", balance, advance)
    assert h.delta.available_fen + r.delta.available_fen == 0
    assert h.delta.held_fen + r.delta.held_fen == 0
    assert h.delta.advance_used_fen + r.delta.advance_used_fen == 0
    assert h.pool_delta_fen + r.pool_delta_fen == 0


@given(amount=st.integers(1, 10**13), fee=fen, used=fen)
def test_every_move_sums_to_zero(amount: int, fee: int, used: int) -> None:
    all_moves = [
        moves.credit("m_1", amount, "cr_1"),
        moves.hold("m_1", "po_1", amount, fee),
        moves.release("m_1", "po_1", amount, fee),
        moves.settle("m_1", "po_1", amount, fee, "102"),
        moves.refund_return("m_1", "po_1", amount, "102"),
        moves.b2b_notified("m_1", "b2b_1", amount),
        moves.b2b_cleared("m_1", "b2b_1", amount, used, "102"),
        moves.b2b_reversed("m_1", "b2b_1", amount),
    ]
    for move in all_moves:
        assert sum(a for _, a in move.postings) == 0, move.kind


def test_clearing_repays_the_advance_before_crediting_available() -> None:
    move = moves.b2b_cleared("m_1", "b2b_1", amount_fen=1000, advance_used_fen=300, bank_id="102")
    assert move.delta.advance_used_fen == -300
    assert move.delta.available_fen == 700
    assert move.pool_delta_fen == -300
    small = moves.b2b_cleared("m_1", "b2b_2", amount_fen=200, advance_used_fen=300, bank_id="102")
    assert small.delta.advance_used_fen == -200
    assert small.delta.available_fen == 0


def test_an_unbalanced_move_is_refused() -> None:
    with pytest.raises(AssertionError):
        moves.Move(
            "bogus",
            "m_1",
            "x",
            moves.BalanceDelta(available_fen=5),
            ((moves.FEE_INCOME, -4),),
        )
