"""Reconciliation's judgement (gateway/recon/compare.py): statement lines against the books."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.recon.compare import (
    Books,
    Finding,
    Kind,
    Line,
    Resolution,
    compare,
    parse_lines,
    summary,
)

BANK = "102"
DAY = date(2025, 11, 26)


def line(ref: str, status: str = "succeeded", amount: int = 1000, *, bank_ref: str = "",
         return_of: str | None = None) -> Line:  # fmt: skip
    return Line(bank_ref or f"B{ref}", ref, amount, status, "2025-11-26T10:00:00+00:00", return_of)


def books(pid: str, status: str = "succeeded", amount: int = 1000, *, bank_id: str = BANK,
          bank_date: date | None = DAY, failure_code: str | None = None) -> Books:  # fmt: skip
    return Books(pid, bank_id, f"B{pid}", status, amount, failure_code, bank_date)


def judge(lines: list[Line], rows: list[Books]) -> list[Finding]:
    return compare(BANK, DAY, lines, {r.id: r for r in rows})


def test_a_clean_day_is_all_matched() -> None:
    rows = [books("po_1"), books("po_2", "failed"), books("po_3", "processing")]
    lines = [line("po_1"), line("po_2", "failed"), line("po_3", "processing")]
    found = judge(lines, rows)
    assert [f.kind for f in found] == [Kind.MATCHED] * 3
    assert summary(found, 0) == {"matched": 3, "status_mismatch": 0, "amount_mismatch": 0,
                                 "missing_at_gateway": 0, "missing_at_bank": 0,
                                 "applied": 0}  # fmt: skip


@pytest.mark.parametrize("gateway", ["processing", "accepted"])
@pytest.mark.parametrize("bank", ["succeeded", "failed"])
def test_bank_final_while_gateway_waits_is_safe(gateway: str, bank: str) -> None:
    (f,) = judge([line("po_1", bank)], [books("po_1", gateway)])
    assert (f.kind, f.resolution, f.bank_status) == (Kind.STATUS_MISMATCH, Resolution.SAFE, bank)


def test_a_lost_return_notice_is_safe() -> None:
    rows = [books("po_1", "succeeded")]
    own, ret = line("po_1"), line("po_1", "returned", bank_ref="Bpo_1R", return_of="Bpo_1")
    found = judge([own, ret], rows)
    assert found[0].kind is Kind.MATCHED
    assert (found[1].kind, found[1].resolution) == (Kind.STATUS_MISMATCH, Resolution.SAFE)
    assert found[1].bank_ref == "Bpo_1R" and found[1].payout_id == "po_1"


def test_a_returned_payout_matches_its_paid_line_and_its_return_line() -> None:
    rows = [books("po_1", "returned")]
    ret = line("po_1", "returned", bank_ref="Bpo_1R", return_of="Bpo_1")
    assert [f.kind for f in judge([line("po_1"), ret], rows)] == [Kind.MATCHED] * 2


def test_bank_paid_a_payout_the_gateway_failed_is_a_loud_exception() -> None:
    (f,) = judge([line("po_1")], [books("po_1", "failed", failure_code="bank_no_record")])
    assert (f.kind, f.resolution, f.loud) == (Kind.STATUS_MISMATCH, Resolution.EXCEPTION, True)
    assert "bank paid a payout the gateway failed" in f.reason and "bank_no_record" in f.reason


@pytest.mark.parametrize(
    ("bank", "gateway"),
    [("failed", "succeeded"), ("failed", "returned"), ("processing", "succeeded"),
     ("processing", "failed"), ("succeeded", "review_pending")],
)  # fmt: skip
def test_other_status_differences_are_quiet_exceptions(bank: str, gateway: str) -> None:
    (f,) = judge([line("po_1", bank)], [books("po_1", gateway)])
    assert (f.kind, f.resolution, f.loud) == (Kind.STATUS_MISMATCH, Resolution.EXCEPTION, False)


def test_a_return_of_a_failed_payout_is_an_exception() -> None:
    ret = line("po_1", "returned", bank_ref="Bpo_1R", return_of="Bpo_1")
    (f,) = judge([ret], [books("po_1", "failed", bank_date=None)])
    assert (f.kind, f.resolution) == (Kind.STATUS_MISMATCH, Resolution.EXCEPTION)


def test_amount_difference_wins_over_status() -> None:
    (f,) = judge([line("po_1", "succeeded", 999)], [books("po_1", "processing")])
    assert (f.kind, f.resolution) == (Kind.AMOUNT_MISMATCH, Resolution.EXCEPTION)


def test_lines_the_gateway_does_not_have_for_this_bank_are_missing_at_gateway() -> None:
    rows = [books("po_2", bank_id="103"), books("po_3")]
    found = judge([line("po_x"), line("po_2"), line("po_3"), line("po_3", bank_ref="dup")], rows)
    assert [f.kind for f in found] == [Kind.MISSING_AT_GATEWAY, Kind.MISSING_AT_GATEWAY,
                                       Kind.MATCHED, Kind.MISSING_AT_GATEWAY]  # fmt: skip
    assert found[0].payout_id is None and found[0].bank_ref == "Bpo_x"


@pytest.mark.parametrize("status", ["processing", "succeeded", "failed", "returned"])
def test_payouts_the_bank_told_of_without_a_line_are_missing_at_bank(status: str) -> None:
    (f,) = judge([], [books("po_1", status)])
    assert (f.kind, f.resolution, f.payout_id) == (Kind.MISSING_AT_BANK, Resolution.EXCEPTION,
                                                   "po_1")  # fmt: skip


def test_only_this_bank_and_date_can_be_missing_at_bank() -> None:
    rows = [books("po_1", bank_date=date(2025, 11, 25)), books("po_2", bank_id="103"),
            books("po_3", bank_date=None), books("po_4", "accepted")]  # fmt: skip
    assert judge([], rows) == []  # another date, another bank, never told, never sent


def test_a_return_line_alone_does_not_cover_the_payouts_own_line() -> None:
    ret = line("po_1", "returned", bank_ref="Bpo_1R", return_of="Bpo_1")
    found = judge([ret], [books("po_1", "returned")])
    assert [f.kind for f in found] == [Kind.MATCHED, Kind.MISSING_AT_BANK]


def test_parse_lines_reads_the_contract_and_refuses_anything_else() -> None:
    data = {"bank_id": BANK, "date": "2025-11-26", "items": [
        {"bank_ref": "R1", "merchant_ref": "po_1", "amount": 5, "status": "succeeded",
         "booked_at": "t", "return_of": None}]}  # fmt: skip
    assert parse_lines(data) == [Line("R1", "po_1", 5, "succeeded", "t", None)]
    for bad in ({"items": None}, {"items": [{"bank_ref": "R1"}]},
                {"items": [data["items"][0] | {"amount": 1.5}]}, []):  # fmt: skip
        with pytest.raises(ValueError):
            parse_lines(bad)


def debit(cid: str, status: str = "succeeded", amount: int = 1000, *,
          bank_date: date | None = DAY) -> Books:  # fmt: skip
    return Books(cid, BANK, f"B{cid}", status, amount, None, bank_date, "collection")


@pytest.mark.parametrize(
    ("gateway", "bank", "kind", "resolution", "loud"),
    [
        ("succeeded", "succeeded", Kind.MATCHED, Resolution.MATCHED, False),
        ("failed", "failed", Kind.MATCHED, Resolution.MATCHED, False),
        ("pending", "processing", Kind.MATCHED, Resolution.MATCHED, False),
        ("pending", "succeeded", Kind.STATUS_MISMATCH, Resolution.SAFE, False),
        ("pending", "failed", Kind.STATUS_MISMATCH, Resolution.SAFE, False),
        # The payer paid and the account was not credited (maybe fronted instead) ...
        ("failed", "succeeded", Kind.STATUS_MISMATCH, Resolution.EXCEPTION, True),
        # ... or the account was credited with money that never came in.
        ("succeeded", "failed", Kind.STATUS_MISMATCH, Resolution.EXCEPTION, True),
        ("succeeded", "processing", Kind.STATUS_MISMATCH, Resolution.EXCEPTION, False),
    ],
)
def test_collection_lines_are_judged_against_the_collections(
    gateway: str, bank: str, kind: Kind, resolution: Resolution, loud: bool
) -> None:
    (f,) = judge([line("col_1", bank)], [debit("col_1", gateway)])
    assert (f.kind, f.resolution, f.loud) == (kind, resolution, loud), f.reason
    if resolution is Resolution.SAFE:
        assert f.bank_status == bank


def test_collections_missing_at_bank_or_misstated() -> None:
    found = judge([line("col_2", amount=999), line("col_2", "returned", bank_ref="Bcol_2R",
                                                   return_of="Bcol_2")],
                  [debit("col_1", "pending"), debit("col_2")])  # fmt: skip
    kinds = sorted((f.kind.value, f.books.id if f.books else None) for f in found)
    assert kinds == [("amount_mismatch", "col_2"), ("missing_at_bank", "col_1"),
                     ("status_mismatch", "col_2")]  # fmt: skip
    # A collection the bank never dated (never submitted) is nobody's 短款.
    assert judge([], [debit("col_3", "pending", bank_date=None)]) == []
