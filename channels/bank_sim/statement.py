"""A bank's statement for one business date (SPEC 9), and the differences planted in it.

One line per payment: a payout's own line on the date the bank accepted it (its status as the
bank knows it; a payout returned later still shows `succeeded` there, the day it was paid) and
a return (退票) as a line of its own on the date of the return, `return_of` naming the paid
line. A debit of a payer's card (代收, a collection) has its line the same way (never
returned); `merchant_ref` is the gateway's id for either. Planted faults
(`POST /sim/banks/{id}/statement-faults`) change only what the statement shows, never the
bank's records: `extra_line` adds a payment the gateway never sent (长款 at
the bank), `drop_line` leaves one out, `amount_change` misstates one's amount.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date
from typing import Any, Final, Literal

import msgspec

from channels.bank_sim.records import BankRecord, iso
from channels.bank_sim.schemas import AmountFen
from protocol.clock import BUSINESS_TZ

COLUMNS: Final = ("bank_ref", "merchant_ref", "amount", "status", "booked_at", "return_of")
RETURN_SUFFIX: Final = "R"


class StatementFault(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: Literal["extra_line", "drop_line", "amount_change"]
    bank_ref: str | None = None  # drop_line, amount_change: the line to change
    amount: AmountFen | None = None  # extra_line, amount_change
    date: str | None = None  # extra_line: the statement's date (default: the bank's today)

    def __post_init__(self) -> None:
        if self.kind in ("drop_line", "amount_change") and not self.bank_ref:
            raise ValueError(f"{self.kind} needs a bank_ref")
        if self.kind in ("extra_line", "amount_change") and self.amount is None:
            raise ValueError(f"{self.kind} needs an amount")
        if self.date is not None:
            date.fromisoformat(self.date)


def _line(
    bank_ref: str, merchant_ref: str, amount: int, status: str, booked_at: str | None,
    return_of: str | None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "bank_ref": bank_ref,
        "merchant_ref": merchant_ref,
        "amount": amount,
        "status": status,
        "booked_at": booked_at,
        "return_of": return_of,
    }


def bank_refs(record: BankRecord) -> tuple[str, ...]:
    """The statement lines a record can show as."""
    if record.status == "returned":
        return (record.bank_ref, record.bank_ref + RETURN_SUFFIX)
    return (record.bank_ref,)


def statement_lines(
    records: Iterable[BankRecord], day: date, faults: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for r in records:
        if r.business_date == day:
            status = "succeeded" if r.status == "returned" else r.status
            booked = iso(r.completed_at or r.accepted_at)
            lines.append(_line(r.bank_ref, r.ref, r.amount_fen, status, booked, None))
        if r.returned_at is not None and r.returned_at.astimezone(BUSINESS_TZ).date() == day:
            lines.append(_line(r.bank_ref + RETURN_SUFFIX, r.ref, r.amount_fen, "returned",
                               iso(r.returned_at), r.bank_ref))  # fmt: skip
    for fault in faults:
        kind = fault["kind"]
        if kind == "extra_line" and fault["date"] == day.isoformat():
            lines.append(_line(fault["bank_ref"], fault["merchant_ref"], fault["amount"],
                               "succeeded", fault["booked_at"], None))  # fmt: skip
        elif kind == "drop_line":
            lines = [x for x in lines if x["bank_ref"] != fault["bank_ref"]]
        elif kind == "amount_change":
            for x in lines:
                if x["bank_ref"] == fault["bank_ref"]:
                    x["amount"] = fault["amount"]
    lines.sort(key=lambda x: (x["booked_at"] or "", x["bank_ref"]))
    return lines


def to_csv(lines: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for line in lines:
        writer.writerow(["" if line[c] is None else line[c] for c in COLUMNS])
    return out.getvalue()
