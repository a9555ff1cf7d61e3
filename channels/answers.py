"""A bank's answers: what they say (records, outcomes) and which order each is about.

An answer is matched to its order by reference (the gateway's id, which the bank echoes as
`ref`), bank and amount — never by its place in a batch answer. An answer that does not match
(an unknown ref, another bank, another amount, missing from a batch answer or in it twice) is
a mismatch: logged with its ids, counted (`paygate_bank_answer_mismatch_total`) and never
applied; the order it concerns is left to a status query (it is `unknown`).

"The bank has no such order" is the bank's own word: a 404 whose body says `no_such_order`
for this bank, this ref and this query (the nonce the query was signed with), signed with the
bank's key. Any other 404 (a wrong path, a proxy in between) says nothing about the order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, Final

from channels.recorder import BankRecorder
from protocol import signing

log = logging.getLogger("paygate.bank_answers")

NO_SUCH_ORDER: Final = "no_such_order"


class SubmitOutcome(StrEnum):
    ACKED = "acked"
    REFUSED = "refused"
    UNKNOWN = "unknown"


class QueryOutcome(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"  # the bank's own signed "no such order"
    MISMATCH = "mismatch"  # an answer about another order, bank or amount: unknown still
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class BankRecord:
    ref: str
    bank_ref: str | None
    status: str  # processing | succeeded | failed | returned
    amount: int
    failure_code: str | None
    failure_message: str | None
    business_date: date | None = None  # the bank's business date for the payout
    bank_id: str | None = None  # the bank that says it holds it

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BankRecord:
        return cls(
            bank_id=data.get("bank_id"),
            ref=str(data["ref"]),
            bank_ref=data.get("bank_ref"),
            status=str(data["status"]),
            amount=int(data["amount"]),
            failure_code=data.get("failure_code"),
            failure_message=data.get("failure_message"),
            business_date=business_date(data.get("business_date")),
        )


def business_date(raw: Any) -> date | None:
    """A bank's `YYYY-MM-DD` business date; None when absent or unreadable (it is only
    bookkeeping for reconciliation: a bad one must not sink the word that carries it)."""
    if not isinstance(raw, str):
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class SubmitResult:
    outcome: SubmitOutcome
    record: BankRecord | None = None
    code: str = ""  # why, for refusals and unknowns
    retry_after_s: float | None = None

    @property
    def transport_failure(self) -> bool:
        """Counts against the channel's circuit breaker (errors and timeouts, not busy)."""
        return self.outcome is SubmitOutcome.UNKNOWN or (
            self.outcome is SubmitOutcome.REFUSED and self.code != "bank_busy"
        )


@dataclass(frozen=True, slots=True)
class QueryResult:
    outcome: QueryOutcome
    record: BankRecord | None = None
    code: str = ""


def item_result(answer: Any, retry_after_s: float | None) -> SubmitResult:
    """One item of a batch answer, classified like a single submission's answer."""
    if not isinstance(answer, dict):
        return SubmitResult(SubmitOutcome.UNKNOWN, code="unreadable_item")
    if answer.get("result") == "accepted" and isinstance(answer.get("record"), dict):
        return SubmitResult(SubmitOutcome.ACKED, record=BankRecord.from_json(answer["record"]))
    error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
    code = str(error.get("code", "")) if error else ""
    if code in ("bank_busy", "maintenance"):
        return SubmitResult(SubmitOutcome.REFUSED, code=code, retry_after_s=retry_after_s)
    if code == "ref_conflict":  # the bank holds this ref with other fields: never resend
        return SubmitResult(SubmitOutcome.UNKNOWN, code=code)
    if answer.get("result") == "refused":
        log.error("bank refused a batch item", extra={"ref": answer.get("ref"), "code": code})
        return SubmitResult(SubmitOutcome.REFUSED, code=code or "refused")
    return SubmitResult(SubmitOutcome.UNKNOWN, code="unreadable_item")


def mismatch(
    bank_id: str, ref: str, amount_fen: int, *, said_bank: Any, said_ref: Any, said_amount: Any
) -> str | None:
    """Why an answer about order `ref` (sent to `bank_id` for `amount_fen`) is not about it;
    None when it is."""
    if said_ref != ref:
        return "wrong_ref"
    if said_bank != bank_id:
        return "wrong_bank"
    if said_amount != amount_fen:
        return "wrong_amount"
    return None


@dataclass(slots=True)
class BatchAnswers:
    """A batch answer's items by the ref each names."""

    by_ref: dict[str, Any] = field(default_factory=dict)
    duplicated: set[str] = field(default_factory=set)  # refs named by more than one item
    unnamed: int = 0  # items naming no ref at all


def by_ref(items: Sequence[Any]) -> BatchAnswers:
    """Index a batch answer's items by their `ref` (one dict lookup per order after this); a
    ref named twice answers for nothing (which of the two would be true?)."""
    out = BatchAnswers()
    for item in items:
        ref = item.get("ref") if isinstance(item, dict) else None
        if not isinstance(ref, str):
            out.unnamed += 1
        elif ref in out.by_ref or ref in out.duplicated:
            out.by_ref.pop(ref, None)
            out.duplicated.add(ref)
        else:
            out.by_ref[ref] = item
    return out


def report(
    metrics: BankRecorder | None, bank_id: str, hop: str, ref: str | None, reason: str, **ids: Any
) -> None:
    """Log and count one answer that matched no order (or not its order)."""
    log.warning("bank answer does not match its order", extra={
        "bank_id": bank_id, "hop": hop, "ref": ref, "reason": reason, **ids})  # fmt: skip
    if metrics is not None:
        metrics.bank_answer_mismatch(bank_id, hop)


def says_no_such_order(
    secret: str,
    bank_id: str,
    ref: str,
    path: str,
    request_nonce: str,
    status: int,
    headers: Mapping[str, str],
    raw: bytes,
    data: Any,
) -> bool:
    """Whether the answer to our signed query `GET path` (with `request_nonce`) is the bank's
    own "no such order" for `ref`."""
    if status != 404 or not isinstance(data, dict):
        return False
    said = (data.get("code"), data.get("bank_id"), data.get("ref"), data.get("request_nonce"))
    if said != (NO_SUCH_ORDER, bank_id, ref, request_nonce):
        return False
    ts, nonce = headers.get(signing.H_TIMESTAMP, ""), headers.get(signing.H_NONCE, "")
    given = headers.get(signing.H_SIGNATURE, "")
    if headers.get(signing.H_KEY) != bank_id or not signing.SIGNATURE_RE.match(given):
        return False
    return signing.signature_matches(signing.sign(secret, ts, nonce, "GET", path, raw), given)
