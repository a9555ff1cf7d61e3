"""Reconciliation's judgement (对账, SPEC 10), pure: one bank's statement for one business date
against the gateway's books -> what each difference is and what to do about it.

Every statement line is either a payout's own line (processing | succeeded | failed; a payout
the bank later returned still shows `succeeded` on the day it was paid) or a return (退票): its
own line on the return's business date, `return_of` naming the original line. A line whose
`merchant_ref` is no payout of this bank is 长款 (`missing_at_gateway`); a payout the bank
told the gateway about for this date (its `bank_date`) without a line is 短款
(`missing_at_bank`).

Only two differences are safe to fix, and only through the payout transition table: the bank
is final (paid, failed, returned) while the gateway still waits for it; and a return the
gateway was never told of (a lost 退票 notice). Everything else is an exception for an
operator. The dangerous one is loud: the bank paid a payout the gateway failed (and so
released the merchant's money) — real money gone that nobody is holding.

Collections (代收) are on the same statement (their `merchant_ref` is the collection's id) and
judged alike: the bank final while the gateway waits is safe (through the collection
transition table); a debit the bank took that the gateway failed, or one the gateway credited
that the bank failed, is a loud exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

MAX_LINES = 1_000_000  # a statement longer than this is refused, not reconciled


class Kind(StrEnum):
    MATCHED = "matched"
    STATUS_MISMATCH = "status_mismatch"
    AMOUNT_MISMATCH = "amount_mismatch"
    MISSING_AT_GATEWAY = "missing_at_gateway"  # 长款: at the bank, not at the gateway
    MISSING_AT_BANK = "missing_at_bank"  # 短款: at the gateway, not at the bank


KINDS = tuple(Kind)


class Resolution(StrEnum):
    MATCHED = "matched"
    SAFE = "safe"  # apply the bank's word through the transition table (with apply=true)
    EXCEPTION = "exception"  # an operator decides


IN_FLIGHT = frozenset({"accepted", "processing"})  # the gateway still waits for the bank
RELEASED = frozenset({"failed", "rejected"})  # the merchant's money went back
BANK_SAW = frozenset({"processing", "succeeded", "failed", "returned"})
# Collections: the gateway's statuses (pending while it waits; a bank date says the bank saw it).
COLLECTION_BANK_SAW = frozenset({"pending", "succeeded", "failed"})


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a bank statement."""

    bank_ref: str
    merchant_ref: str  # the gateway's payout id
    amount_fen: int
    status: str  # processing | succeeded | failed | returned
    booked_at: str | None
    return_of: str | None  # a return's original bank_ref

    @property
    def is_return(self) -> bool:
        return self.status == "returned"

    def public(self) -> dict[str, Any]:
        return {"bank_ref": self.bank_ref, "merchant_ref": self.merchant_ref,
                "amount": self.amount_fen, "status": self.status, "booked_at": self.booked_at,
                "return_of": self.return_of}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Books:
    """The gateway's record of one payout (or collection), as reconciliation reads it."""

    id: str
    bank_id: str | None
    bank_ref: str | None
    status: str
    amount_fen: int
    failure_code: str | None
    bank_date: date | None
    kind: str = "payout"  # or "collection"

    @property
    def is_collection(self) -> bool:
        return self.kind == "collection"

    def public(self) -> dict[str, Any]:
        return {"status": self.status, "amount": self.amount_fen, "bank_ref": self.bank_ref,
                "bank_date": self.bank_date.isoformat() if self.bank_date else None,
                "failure_code": self.failure_code}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
    resolution: Resolution
    reason: str  # what an operator reads: why it is an exception, or what applying does
    line: Line | None
    books: Books | None
    bank_status: str | None = None  # SAFE: the bank's word to apply
    loud: bool = False  # money the bank paid out that the gateway released

    @property
    def bank_ref(self) -> str | None:
        return self.line.bank_ref if self.line else (self.books.bank_ref if self.books else None)

    @property
    def payout_id(self) -> str | None:
        return self.books.id if self.books else None


def parse_lines(data: Any) -> list[Line]:
    """The `items` of a statement as lines; ValueError when the bank sent something else."""
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) > MAX_LINES:
        raise ValueError("a statement's items must be a list")
    lines: list[Line] = []
    for i, item in enumerate(items):
        try:
            amount = item["amount"]
            if not isinstance(amount, int) or isinstance(amount, bool):
                raise TypeError("amount must be integer fen")
            lines.append(Line(
                bank_ref=str(item["bank_ref"]), merchant_ref=str(item["merchant_ref"]),
                amount_fen=amount, status=str(item["status"]),
                booked_at=_opt_str(item.get("booked_at")),
                return_of=_opt_str(item.get("return_of")),
            ))  # fmt: skip
        except (KeyError, TypeError) as exc:
            raise ValueError(f"statement line {i} unreadable: {exc!r}") from None
    return lines


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def compare(
    bank_id: str, day: date, lines: Sequence[Line], books: Mapping[str, Books]
) -> list[Finding]:
    """Every line judged against the books, then every payout of this bank and date that has
    no line of its own. `books` holds the payouts the lines name (any bank) and those with
    this bank and `bank_date` = `day`."""
    findings: list[Finding] = []
    own_line: set[str] = set()  # payouts whose own (non-return) line is on the statement
    for line in lines:
        row = books.get(line.merchant_ref)
        if row is None or row.bank_id != bank_id or (not line.is_return and row.id in own_line):
            findings.append(Finding(Kind.MISSING_AT_GATEWAY, Resolution.EXCEPTION,
                                    _unknown_reason(row, bank_id), line, None))  # fmt: skip
            continue
        if not line.is_return:
            own_line.add(row.id)
        if line.amount_fen != row.amount_fen:
            reason = (f"amounts differ (bank {line.amount_fen}, "
                      f"gateway {row.amount_fen})")  # fmt: skip
            findings.append(Finding(Kind.AMOUNT_MISMATCH, Resolution.EXCEPTION, reason, line, row))
            continue
        if row.is_collection:
            judge = _judge_collection_line
        else:
            judge = _judge_return if line.is_return else _judge_payout_line
        findings.append(judge(line, row))
    for row in sorted(books.values(), key=lambda r: r.id):
        saw = COLLECTION_BANK_SAW if row.is_collection else BANK_SAW
        if (row.bank_id == bank_id and row.bank_date == day and row.status in saw
                and row.id not in own_line):  # fmt: skip
            reason = (f"the bank told the gateway of this {row.kind} ({row.status}) "
                      "but its statement has no line for it")  # fmt: skip
            findings.append(Finding(Kind.MISSING_AT_BANK, Resolution.EXCEPTION, reason,
                                    None, row))  # fmt: skip
    return findings


def _unknown_reason(row: Books | None, bank_id: str) -> str:
    if row is None:
        return "a bank line for a payout the gateway does not have"
    if row.bank_id != bank_id:
        return f"a bank line for a payout the gateway sent to {row.bank_id or 'no bank'}"
    return "a second line for the same payout"


def _matched(line: Line, row: Books) -> Finding:
    return Finding(Kind.MATCHED, Resolution.MATCHED, "matched", line, row)


def _mismatch(line: Line, row: Books, reason: str, *, loud: bool = False) -> Finding:
    return Finding(Kind.STATUS_MISMATCH, Resolution.EXCEPTION, reason, line, row,
                   loud=loud)  # fmt: skip


def _safe(line: Line, row: Books, bank_status: str) -> Finding:
    reason = f"{row.status} -> {'returned' if line.is_return else bank_status}"
    return Finding(Kind.STATUS_MISMATCH, Resolution.SAFE, reason, line, row, bank_status)


def _judge_payout_line(line: Line, row: Books) -> Finding:
    bank, gw = line.status, row.status
    if bank == "processing":
        if gw in IN_FLIGHT:
            return _matched(line, row)  # both in flight
        return _mismatch(line, row, f"the bank is still processing a payout the gateway has {gw}")
    if bank == "succeeded":
        if gw in ("succeeded", "returned"):
            return _matched(line, row)
        if gw in IN_FLIGHT:
            return _safe(line, row, bank)
        if gw in RELEASED:
            why = f" ({row.failure_code})" if row.failure_code else ""
            return _mismatch(line, row, f"bank paid a payout the gateway {gw}{why}", loud=True)
        return _mismatch(line, row, f"bank paid a payout the gateway has {gw}")
    if bank == "failed":
        if gw == "failed":
            return _matched(line, row)
        if gw in IN_FLIGHT:
            return _safe(line, row, bank)
        return _mismatch(line, row, f"bank failed a payout the gateway has {gw}")
    return _mismatch(line, row, f"unknown bank status {bank!r}")


def _judge_return(line: Line, row: Books) -> Finding:
    gw = row.status
    if gw == "returned":
        return _matched(line, row)
    if gw == "succeeded" or gw in IN_FLIGHT:  # a lost 退票 notice (and, in flight, the payment)
        return _safe(line, row, "returned")
    return _mismatch(line, row, f"bank returned a payout the gateway has {gw}")


def _judge_collection_line(line: Line, row: Books) -> Finding:
    """A debit of a payer's card (代收): the gateway waits (`pending`) or is final."""
    bank, gw = line.status, row.status
    if line.is_return:
        return _mismatch(line, row, "a return line for a collection (a debit is never returned)")
    if bank == "processing":
        if gw == "pending":
            return _matched(line, row)
        return _mismatch(
            line, row, f"the bank is still processing a collection the gateway has {gw}"
        )
    if bank == gw and bank in ("succeeded", "failed"):
        return _matched(line, row)
    if bank in ("succeeded", "failed") and gw == "pending":
        return _safe(line, row, bank)
    if bank == "succeeded" and gw == "failed":
        return _mismatch(line, row, "bank took a debit the gateway failed (the payer paid, "
                         "the account was not credited)", loud=True)  # fmt: skip
    if bank == "failed" and gw == "succeeded":
        return _mismatch(line, row, "bank failed a debit the gateway credited (money credited "
                         "that never came in)", loud=True)  # fmt: skip
    return _mismatch(line, row, f"unknown bank status {bank!r}")


def summary(findings: Sequence[Finding], applied: int) -> dict[str, int]:
    counts = dict.fromkeys((k.value for k in KINDS), 0)
    for f in findings:
        counts[f.kind.value] += 1
    return counts | {"applied": applied}
