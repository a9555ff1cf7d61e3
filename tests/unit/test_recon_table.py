"""The reconciliation table `paygate reconcile` prints, and when the nightly run is due."""

from __future__ import annotations

from datetime import UTC, date, datetime

from gateway.recon.table import render, yuan
from gateway.workers.recon_nightly import due_date

REPORT = {
    "id": "rec_1", "bank_id": "102", "date": "2025-11-26", "apply": True,
    "summary": {"matched": 40, "status_mismatch": 2, "amount_mismatch": 0,
                "missing_at_gateway": 1, "missing_at_bank": 0, "applied": 1},
    "items": [
        {"kind": "status_mismatch", "bank_ref": "ICBC2025112600000007R", "payout_id": "po_7",
         "gateway": {"status": "succeeded", "amount": 12345},
         "bank": {"status": "returned", "amount": 12345},
         "action": "applied: succeeded -> returned"},
        {"kind": "status_mismatch", "bank_ref": "ICBC2025112600000009", "payout_id": "po_9",
         "gateway": {"status": "failed", "amount": 500}, "bank": {"status": "succeeded",
                                                                  "amount": 500},
         "action": "exception: bank paid a payout the gateway failed (bank_no_record)",
         "exception_id": "rex_1"},
        {"kind": "missing_at_gateway", "bank_ref": "ICBCX1", "payout_id": None, "gateway": None,
         "bank": {"status": "succeeded", "amount": 100}, "action": "exception: a bank line"},
    ],
}  # fmt: skip


def test_the_table_shows_the_summary_then_one_row_per_item() -> None:
    text = render(REPORT)
    lines = text.splitlines()
    assert lines[0] == "reconciliation rec_1: bank 102, 2025-11-26 (apply)"
    assert lines[1] == ("matched 40  status_mismatch 2  amount_mismatch 0  missing_at_gateway 1  "
                        "missing_at_bank 0  applied 1")  # fmt: skip
    header, rule, *rows = lines[3:]
    assert header.split() == ["kind", "bank_ref", "payout_id", "gateway", "bank", "action"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert len(rows) == 3
    assert "succeeded 123.45" in rows[0] and "returned 123.45" in rows[0]
    assert "failed 5.00" in rows[1] and "bank paid a payout the gateway failed" in rows[1]
    assert rows[2].split()[2:4] == ["-", "-"]  # no payout, nothing at the gateway
    # Columns line up: every row starts its bank_ref where the header does.
    at = header.index("bank_ref")
    assert all(r[at:].startswith(i["bank_ref"]) for r, i in zip(rows, REPORT["items"], strict=True))


def test_a_clean_day_says_so() -> None:
    clean = REPORT | {"apply": False, "items": [],
                      "summary": dict.fromkeys(REPORT["summary"], 0) | {"matched": 3}}  # fmt: skip
    assert render(clean).splitlines()[-1] == "no differences (3 matched)"
    assert "(apply)" not in render(clean)


def test_yuan_is_integer_arithmetic() -> None:
    assert [yuan(v) for v in (0, 5, 12345, -250, 123456789)] == [
        "0.00", "0.05", "123.45", "-2.50", "1,234,567.89"]  # fmt: skip


def test_the_nightly_run_for_d_is_due_from_d_plus_1_at_1am_china_time() -> None:
    # 2025-11-27 00:59 CST is 2025-11-26 16:59 UTC: D = 25th; from 01:00 CST D = 26th.
    assert due_date(datetime(2025, 11, 26, 16, 59, tzinfo=UTC)) == date(2025, 11, 25)
    assert due_date(datetime(2025, 11, 26, 17, 0, tzinfo=UTC)) == date(2025, 11, 26)
    assert due_date(datetime(2025, 11, 27, 15, 0, tzinfo=UTC)) == date(2025, 11, 26)
