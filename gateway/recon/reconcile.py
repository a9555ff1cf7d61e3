"""One reconciliation run (SPEC 10): fetch a bank's statement, judge it against the books
(compare.py), apply the safe differences, open exceptions for the rest, record the run.

The statement is fetched and the books read with no transaction open. Then one transaction:
the safe differences go through the payout transition table (the same as callbacks: locked
rows, guarded update, ledger moves, outbox events; a word the table refuses changes nothing),
the exceptions are opened and the run recorded — the run and its exceptions in one statement.
A nightly run is recorded once per (bank, date): a second one rolls back whole.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from channels.client import BankClient, BankUnavailable
from gateway.collection.state import event_for as collection_event
from gateway.collection.transitions import CollectionWord, apply_words
from gateway.payouts.bank_status import events_for
from gateway.payouts.transitions import PayoutEvent, apply_events_in_tx
from gateway.recon import exceptions
from gateway.recon.compare import Books, Finding, Resolution, compare, parse_lines, summary
from gateway.storage.batch_write import BatchWrite
from protocol.ids import new_id

log = logging.getLogger("paygate.recon")

TRIGGERS = ("manual", "nightly")


class AlreadyReconciled(Exception):
    """The nightly run for this bank and date is already recorded."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one finding in this run."""

    action: str
    applied: bool = False
    exception_id: str | None = None
    opened: bool = False  # the exception is new in this run


async def reconcile(
    pool: asyncpg.Pool,
    bank: BankClient,
    bank_id: str,
    day: date,
    *,
    apply: bool,
    trigger: str = "manual",
) -> dict[str, Any]:
    """The run's report: `{"id", "bank_id", "date", "apply", "trigger", "summary", "items"}`.
    Raises BankUnavailable (no statement) and AlreadyReconciled (nightly, done before)."""
    assert trigger in TRIGGERS, trigger
    # The payouts the gateway knows to be on this day *before* the statement is fetched: one
    # the bank takes while the statement travels is on neither, so it is no 短款.
    known_before = set(await pool.fetchval(_DATED, bank_id, day) or [])
    data = await bank.statement(bank_id, day)
    if data.get("bank_id") != bank_id or data.get("date") != day.isoformat():
        raise BankUnavailable("statement_of_another_bank_or_date")
    try:
        lines = parse_lines(data)
    except ValueError as exc:
        log.warning("unreadable statement", extra={"bank_id": bank_id, "date": str(day),
                                                    "error": str(exc)})  # fmt: skip
        raise BankUnavailable("unreadable_statement") from None
    books = await load_books(pool, bank_id, day, sorted({line.merchant_ref for line in lines}))
    on_statement = {line.merchant_ref for line in lines}
    books = {pid: b for pid, b in books.items() if pid in on_statement or pid in known_before}
    findings = compare(bank_id, day, lines, books)
    run_id = new_id("rec")
    async with pool.acquire() as conn, conn.transaction():
        outcomes = await _apply(conn, bank_id, day, findings) if apply else {}
        outcomes |= await _open_exceptions(conn, bank_id, findings)
        report = _report(run_id, bank_id, day, apply, trigger, findings, outcomes)
        if not await _record(conn, report, findings, outcomes):
            raise AlreadyReconciled(f"nightly run for {bank_id} {day} already recorded")
    _log(report, findings)
    return report


# Payouts and collections (代收) alike: the ones the statement names and the ones this bank
# told the gateway of for the date.
_COLS = "id, bank_id, bank_ref, status, amount_fen, failure_code, bank_date"
_BOOKS = f"""
    SELECT {_COLS}, 'payout' AS kind FROM payouts WHERE id = ANY($1::text[])
    UNION
    SELECT {_COLS}, 'payout' FROM payouts WHERE bank_id = $2 AND bank_date = $3
    UNION
    SELECT {_COLS}, 'collection' FROM collections WHERE id = ANY($1::text[])
    UNION
    SELECT {_COLS}, 'collection' FROM collections WHERE bank_id = $2 AND bank_date = $3"""


_DATED = """
    SELECT array_agg(id) FROM (
        SELECT id FROM payouts WHERE bank_id = $1 AND bank_date = $2
        UNION ALL
        SELECT id FROM collections WHERE bank_id = $1 AND bank_date = $2) d"""


async def load_books(
    pool: asyncpg.Pool, bank_id: str, day: date, refs: Sequence[str]
) -> dict[str, Books]:
    """The payouts the statement names, and those this bank told the gateway of for `day`
    (a scan: no index on bank_date, runs are rare and status updates are not)."""
    rows = await pool.fetch(_BOOKS, list(refs), bank_id, day)
    return {r["id"]: Books(r["id"], r["bank_id"], r["bank_ref"], r["status"], r["amount_fen"],
                           r["failure_code"], r["bank_date"], r["kind"])
            for r in rows}  # fmt: skip


def _events(bank_id: str, day: date, f: Finding) -> list[PayoutEvent]:
    """The bank's word a safe finding stands for, as a callback would carry it."""
    assert f.line is not None and f.payout_id is not None and f.bank_status is not None
    line = f.line
    if line.is_return:  # the payout keeps its own bank_ref and business date
        return events_for(f.payout_id, "returned", bank_id=bank_id, bank_ref=None,
                          failure_code="returned",
                          failure_message="returned (退票), found by reconciliation",
                          expect_bank_id=bank_id, expect_amount_fen=line.amount_fen)  # fmt: skip
    return events_for(f.payout_id, f.bank_status, bank_id=bank_id, bank_ref=line.bank_ref,
                      failure_code="bank_failed" if f.bank_status == "failed" else None,
                      failure_message="failed on the bank's statement (reconciliation)"
                      if f.bank_status == "failed" else None,
                      expect_bank_id=bank_id, expect_amount_fen=line.amount_fen,
                      bank_date=day)  # fmt: skip


async def _apply(
    conn: asyncpg.Connection, bank_id: str, day: date, findings: Sequence[Finding]
) -> dict[int, Outcome]:
    safe = [(i, f) for i, f in enumerate(findings) if f.resolution is Resolution.SAFE
            and f.books is not None and not f.books.is_collection]  # fmt: skip
    out = await _apply_collections(conn, bank_id, day, findings)
    if not safe:
        return out
    events: list[PayoutEvent] = []
    spans: list[tuple[int, int]] = []
    for _, f in safe:
        start = len(events)
        events += _events(bank_id, day, f)
        spans.append((start, len(events)))
    applied = await apply_events_in_tx(conn, events)
    for (i, f), (a, b) in zip(safe, spans, strict=True):
        mine = applied[a:b]
        if any(x.applied for x in mine):
            out[i] = Outcome(f"applied: {f.reason}", applied=True)
        else:
            why = mine[-1].reason if mine else "nothing to apply"
            out[i] = Outcome(f"not applied ({f.reason}): {why}")
    return out


async def _apply_collections(
    conn: asyncpg.Connection, bank_id: str, day: date, findings: Sequence[Finding]
) -> dict[int, Outcome]:
    """Safe collection findings (the bank final, the gateway pending) through the collection
    transition table, as the bank's callback would have carried them."""
    safe = [(i, f) for i, f in enumerate(findings) if f.resolution is Resolution.SAFE
            and f.books is not None and f.books.is_collection]  # fmt: skip
    if not safe:
        return {}
    words = []
    for _, f in safe:
        assert f.line is not None and f.books is not None and f.bank_status is not None
        event = collection_event(f.bank_status)
        assert event is not None, f.bank_status
        failed = f.bank_status == "failed"
        words.append(CollectionWord(
            f.books.id, event, bank_id, f.line.bank_ref,
            failure_code="bank_failed" if failed else None,
            failure_message="failed on the bank's statement (reconciliation)" if failed else None,
            expect_bank_id=bank_id, expect_amount_fen=f.line.amount_fen, bank_date=day,
        ))  # fmt: skip
    applied = await apply_words(conn, words)
    return {i: Outcome(f"applied: {f.reason}", applied=True) if a.applied
            else Outcome(f"not applied ({f.reason}): {a.reason or 'nothing to apply'}")
            for (i, f), a in zip(safe, applied, strict=True)}  # fmt: skip


async def _open_exceptions(
    conn: asyncpg.Connection, bank_id: str, findings: Sequence[Finding]
) -> dict[int, Outcome]:
    """Outcomes of the findings that are exceptions: opened now, already open, or resolved
    before (not reopened)."""
    wanted = {i: (f.kind.value, exceptions.key(f.bank_ref, f.payout_id))
              for i, f in enumerate(findings) if f.resolution is Resolution.EXCEPTION}  # fmt: skip
    known = await exceptions.prior(conn, bank_id, sorted(set(wanted.values())))
    out: dict[int, Outcome] = {}
    opened: dict[tuple[str, str], str] = {}  # one exception per key, even if found twice
    for i, k in wanted.items():
        f = findings[i]
        p = known.get(k)
        if p is not None and p.status == "resolved" and p.action.endswith(f.reason):
            # The same difference an operator already settled: not reopened. A different one
            # on the same line (e.g. the bank has paid since) opens a new exception below.
            out[i] = Outcome(f"resolved before ({p.id}): {f.reason}", exception_id=p.id)
        elif p is not None and p.status == "open":
            out[i] = Outcome(f"exception (open): {f.reason}", exception_id=p.id)
        else:
            first = k not in opened
            ex_id = opened.setdefault(k, new_id("rex"))
            out[i] = Outcome(f"exception: {f.reason}", exception_id=ex_id, opened=first)
    return out


def _report(
    run_id: str, bank_id: str, day: date, apply: bool, trigger: str,
    findings: Sequence[Finding], outcomes: dict[int, Outcome],
) -> dict[str, Any]:  # fmt: skip
    items: list[dict[str, Any]] = []
    for i, f in enumerate(findings):
        if f.resolution is Resolution.MATCHED:
            continue
        o = outcomes.get(i) or Outcome(f"safe, not applied (run with apply): {f.reason}")
        item: dict[str, Any] = {
            "kind": f.kind.value,
            "bank_ref": f.bank_ref,
            "payout_id": f.payout_id,
            "gateway": f.books.public() if f.books else None,
            "bank": f.line.public() if f.line else None,
            "action": o.action,
        }
        if o.exception_id is not None:
            item["exception_id"] = o.exception_id
        items.append(item)
    applied = sum(1 for o in outcomes.values() if o.applied)
    return {"id": run_id, "bank_id": bank_id, "date": day.isoformat(), "apply": apply,
            "trigger": trigger, "summary": summary(findings, applied),
            "items": items}  # fmt: skip


async def _record(
    conn: asyncpg.Connection, report: dict[str, Any], findings: Sequence[Finding],
    outcomes: dict[int, Outcome],
) -> bool:  # fmt: skip
    """The run and the exceptions it opens, one statement; False if the run was not recorded
    (a nightly run for this bank and date exists)."""
    day = date.fromisoformat(report["date"])
    new: dict[str, exceptions.NewException] = {}
    for i, f in enumerate(findings):
        o = outcomes.get(i)
        if o is None or not o.opened or o.exception_id is None:
            continue
        new[o.exception_id] = exceptions.NewException(
            o.exception_id, f.kind.value, f.bank_ref, f.payout_id,
            f.books.public() if f.books else None, f.line.public() if f.line else None, o.action,
        )  # fmt: skip
    w = BatchWrite()
    w.add("run", f"""
        INSERT INTO recon_runs (id, bank_id, date, apply, trigger, summary, items)
        VALUES ({w.arg(report["id"], "text")}, {w.arg(report["bank_id"], "text")},
                {w.arg(day, "date")}, {w.arg(report["apply"], "bool")},
                {w.arg(report["trigger"], "text")}, {w.arg(report["summary"], "jsonb")},
                {w.arg(report["items"], "jsonb")})
        ON CONFLICT DO NOTHING
        RETURNING 1""", counted=True)  # fmt: skip
    exceptions.add_new(w, "run", report["id"], report["bank_id"], day, list(new.values()))
    counts = await w.run(conn)
    return counts["run"] == 1


def _log(report: dict[str, Any], findings: Sequence[Finding]) -> None:
    where = {"run_id": report["id"], "bank_id": report["bank_id"], "date": report["date"]}
    for f in findings:
        if f.loud:
            assert f.line is not None and f.books is not None
            log.warning(f"RECONCILIATION: {f.reason}", extra=where | {
                "payout_id": f.payout_id, "bank_ref": f.bank_ref, "amount": f.line.amount_fen,
                "gateway_status": f.books.status, "failure_code": f.books.failure_code,
            })  # fmt: skip
    log.info("reconciled", extra=where | {"trigger": report["trigger"], "apply": report["apply"],
                                          **report["summary"]})  # fmt: skip
