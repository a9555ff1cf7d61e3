"""Accept payouts (SPEC 6 "Accept"): funds check, hold, payout row, journal entry and outbox
event for a whole batch in ONE transaction, each item still getting its own decision.

Set-based (SPEC 13 group commit), two statements whatever the batch size, so the balance rows
are locked for one round trip only:
1. lock the batch's balance rows (merchant id order) and, in the same statement, read what
   the decisions need: merchant terms, today's budget use (on the locked row, so fresh),
   existing order ids, blocked payees, velocity counts and the advance pool's room;
2. decisions in Python, in item order, against the balances as held so far (`funding.py`,
   `risk/rules.py`); then every write — payouts, holds, balances, outbox events, velocity —
   as one statement (`storage/batch_write.py`).
What statement 1 reads besides the locked rows comes from its snapshot, taken before any lock
wait, so it may be one commit old. Each such case is caught by the write: a concurrent
duplicate order id by the unique key, a velocity count by the guarded upsert (count <= K),
the pool by its CHECK. The batch is then rolled back and decided once more on fresh reads
with the velocity rows and the pool locked (`careful`). The merchant's terms are locked with
the balance row (FOR SHARE), so they are the latest committed ones: a line lowered, a switch
to prefunded or a suspension that committed during the lock wait is obeyed.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from gateway.accounts import decide as account_rules
from gateway.accounts import repo as account_repo
from gateway.accounts.decide import AccountFunds
from gateway.accounts.repo import AccountRef
from gateway.contract.requests import PayoutRequest
from gateway.ledger import journal, moves
from gateway.ledger.journal import UsageChange
from gateway.outbox import OutboxEvent, add_events
from gateway.payouts import model, queue
from gateway.payouts.accept_reads import MerchantTerms, Reads, read, read_fresh, replayed
from gateway.payouts.fees import fee_for
from gateway.payouts.funding import Funding, apply_hold, decide
from gateway.payouts.model import AcceptItem
from gateway.payouts.state import Status
from gateway.storage.batch_write import BatchWrite
from protocol.clock import BUSINESS_TZ
from protocol.errors import (
    ApiError,
    BusinessRefusal,
    Forbidden,
    InvalidRequest,
    NotFound,
    archived_order,
    idempotency_conflict,
)
from protocol.ids import new_id
from risk import rules

log = logging.getLogger("paygate.accept")


@dataclass(frozen=True, slots=True)
class AcceptResult:
    http_status: int  # 201 created, 200 idempotent replay; errors carry their own status
    payout: dict[str, Any] | None = None
    error: ApiError | None = None


_INSERT = """
    INSERT INTO payouts (id, merchant_id, merchant_order_id, request_hash, amount_fen, fee_fen,
        currency, status, payee, purpose, metadata, funding_balance_fen, funding_advance_fen,
        business_date, account_id, created_at, updated_at)
    SELECT u.*, {now}, {now}
    FROM unnest({cols}) AS u
    RETURNING 1"""


class StaleRead(Exception):
    """Something statement 1 read from before its lock wait moved: run the batch carefully."""


async def accept_batch(
    conn: asyncpg.Connection,
    items: Sequence[AcceptItem],
    sim_now: datetime,
    risk_rules: rules.RiskRules,
) -> list[AcceptResult]:
    """`sim_now` (simulated time) decides the business day and the velocity hour.

    One transaction: statement 1 locks and reads, Python decides, statement 2 writes. If a
    read from before the lock wait proves stale (a concurrent duplicate order id, a velocity
    count or the pool moved), the transaction is rolled back and the batch runs once more
    with fresh, locked reads — the same decisions, on exact figures."""
    try:
        async with conn.transaction():
            return await _accept(conn, items, sim_now, risk_rules, careful=False)
    except (StaleRead, asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError) as exc:
        # A deadlock: a fast-path batch (accept_fast.py) inserted a duplicate order id before
        # it waited for this batch's balance row; PostgreSQL ended this side.
        log.info("accept batch read stale figures, running it again carefully",
                 extra={"size": len(items), "why": repr(exc)})  # fmt: skip
    except asyncpg.CheckViolationError as exc:
        if exc.table_name != "advance_pool":
            raise
        log.info("advance pool moved under an accept batch, running it again carefully",
                 extra={"size": len(items)})  # fmt: skip
    async with conn.transaction():
        return await _accept(conn, items, sim_now, risk_rules, careful=True)


async def _accept(
    conn: asyncpg.Connection,
    items: Sequence[AcceptItem],
    sim_now: datetime,
    risk_rules: rules.RiskRules,
    *,
    careful: bool,
) -> list[AcceptResult]:
    business_date = sim_now.astimezone(BUSINESS_TZ).date()
    hour = rules.hour_start(sim_now)
    reads = await read(conn, items, business_date, hour)
    # Withdrawals' accounts next: after the balance rows, before velocity and pool (lock order).
    sources = await _lock_sources(conn, items)
    if careful:
        await read_fresh(conn, items, reads, hour)
    replay_payouts = await replayed(conn, [pid for _, pid in reads.existing.values()])
    d = decide_batch(items, reads, sources, replay_payouts, business_date, risk_rules)
    if d.rows:
        await _write(conn, d, business_date, hour, risk_rules)
    return d.results


@dataclass(slots=True)
class Decided:
    """A batch's decisions and the writes they make."""

    results: list[AcceptResult]
    rows: list[dict[str, Any]]
    holds: list[moves.Move]
    events: list[OutboxEvent]
    increments: Counter[str]
    now: datetime
    # Whether the decisions stand on any state that still allows the batch's totals (see
    # accept_fast.py): no refusal that depends on state, nothing fronted, no withdrawal.
    monotonic: bool


def decide_batch(
    items: Sequence[AcceptItem],
    reads: Reads,
    sources: dict[str, tuple[AccountRef, AccountFunds]],
    replay_payouts: dict[str, dict[str, Any]],
    business_date: date,
    risk_rules: rules.RiskRules,
) -> Decided:
    """Each item's decision, in item order, against the balances as held so far."""
    terms, existing, velocity = reads.terms, reads.existing, reads.velocity
    pool_room = reads.pool_room_fen
    d = Decided([], [], [], [], Counter(), datetime.now(UTC), monotonic=True)
    results, increments = d.results, d.increments
    # (merchant, order id) -> (request hash, payout) of what is already there, so a later
    # duplicate in this batch is a replay of an earlier one.
    # A payout of an archived month is not there (None): its order id stays used.
    known = {key: (h, replay_payouts.get(pid)) for key, (h, pid) in existing.items()}
    for item in items:
        req = item.request
        key = (item.merchant_id, req.merchant_order_id)
        if key in known:
            prior_hash, prior_payout = known[key]
            if prior_payout is None:
                results.append(AcceptResult(409, error=archived_order()))
            elif prior_hash == item.request_hash:
                results.append(AcceptResult(200, prior_payout))
            else:
                results.append(AcceptResult(409, error=idempotency_conflict()))
            continue
        t = terms.get(item.merchant_id)
        if t is None:
            d.monotonic = False
            results.append(AcceptResult(403, error=Forbidden("unknown merchant")))
            continue
        account = req.payee.account_no
        refusal = _refuse(t, req) or rules.check_payee(
            account in reads.blocked, velocity.get(account, 0) + increments[account], risk_rules
        )
        if refusal is not None:
            d.monotonic = False
            results.append(AcceptResult(refusal.status, error=refusal))
            continue
        source = None
        if req.account_id:  # 提现: the amount comes from the personal account (个转商 first)
            d.monotonic = False
            source, refused = _withdraw_from(item, sources)
            if refused is not None:
                results.append(AcceptResult(refused.status, error=refused))
                continue
            t.funds.available_fen += req.amount
        fee = fee_for(req.amount, t.fee_fixed_fen, t.fee_bps)
        decision = decide(t.funds, req.amount + fee, pool_room)
        if not isinstance(decision, Funding):
            d.monotonic = False
            if source is not None:
                t.funds.available_fen -= req.amount  # no withdrawal after all
            results.append(AcceptResult(422, error=BusinessRefusal(
                decision.message, field="amount", code=decision.code)))  # fmt: skip
            continue
        if decision.advance_fen:
            d.monotonic = False
        if source is not None:
            source.available_fen -= req.amount
        apply_hold(t.funds, decision)
        pool_room -= decision.advance_fen
        t.used_today.amount_fen += req.amount
        t.used_today.count += 1
        increments[account] += 1
        review = t.review_threshold_fen is not None and req.amount >= t.review_threshold_fen
        row = _new_row(item, fee, decision, review, business_date, d.now)
        d.rows.append(row)
        if source is not None:
            d.holds.append(moves.withdrawal(item.merchant_id, row["id"], req.amount,
                                            row["account_id"]))  # fmt: skip
        d.holds.append(moves.hold(item.merchant_id, row["id"], decision.balance_fen,
                                  decision.advance_fen))  # fmt: skip
        payout = model.public(row)
        known[key] = (item.request_hash, payout)
        d.events.append(OutboxEvent(item.merchant_id, f"payout.{row['status']}", row["id"], 1,
                                    payout))  # fmt: skip
        results.append(AcceptResult(201, payout))
    return d


def _new_row(
    item: AcceptItem,
    fee: int,
    decision: Funding,
    review: bool,
    business_date: date,
    now: datetime,
) -> dict[str, Any]:
    req = item.request
    return {
        "id": new_id("po"),
        "merchant_id": item.merchant_id,
        "merchant_order_id": req.merchant_order_id,
        "request_hash": item.request_hash,
        "amount_fen": req.amount,
        "fee_fen": fee,
        "currency": req.currency,
        "status": (Status.REVIEW_PENDING if review else Status.ACCEPTED).value,
        "version": 1,
        "payee": {
            "account_no": req.payee.account_no,
            "account_name": req.payee.account_name,
            "bank_code": req.payee.bank_code,
            "account_type": req.payee.account_type,
        },
        "purpose": req.purpose,
        "metadata": req.metadata,
        "funding_balance_fen": decision.balance_fen,
        "funding_advance_fen": decision.advance_fen,
        "bank_id": None,
        "bank_ref": None,
        "failure_code": None,
        "failure_message": None,
        "business_date": business_date,
        "account_id": req.account_id or None,
        "created_at": now,
        "updated_at": now,
    }


def build_write(
    d: Decided,
    business_date: date,
    hour: datetime,
    risk_rules: rules.RiskRules,
    before_velocity: Callable[[BatchWrite], str] | None = None,
    *,
    lock_in_order: bool = False,
) -> tuple[BatchWrite, dict[str, int]]:
    """Statement 2's parts (every write of the batch) and the rows each counted part must
    touch; `velocity`: the payees whose hourly count must fit (the guarded upsert).
    `before_velocity` adds parts before the velocity upsert and answers a condition that the
    upsert evaluates before it touches a row (accept_fast.py: the lock order);
    `lock_in_order`: the balance rows are not locked yet, the statement locks them in order."""
    holds, events, increments, now = d.holds, d.events, d.increments, d.now
    # New payouts in key order: two batches inserting the same order ids (a retry racing its
    # original in another process) wait on each other's unique keys in one order, never a cycle.
    rows = sorted(d.rows, key=lambda r: (r["merchant_id"], r["merchant_order_id"]))
    w = BatchWrite()
    cols = [
        ("id", "text[]"), ("merchant_id", "text[]"), ("merchant_order_id", "text[]"),
        ("request_hash", "text[]"), ("amount_fen", "bigint[]"), ("fee_fen", "bigint[]"),
        ("currency", "text[]"), ("status", "text[]"), ("payee", "jsonb[]"),
        ("purpose", "text[]"), ("metadata", "jsonb[]"), ("funding_balance_fen", "bigint[]"),
        ("funding_advance_fen", "bigint[]"), ("business_date", "date[]"),
        ("account_id", "text[]"),
    ]  # fmt: skip
    args = ", ".join(w.arg([r[name] for r in rows], pg_type) for name, pg_type in cols)
    w.add("payouts", _INSERT.format(cols=args, now=w.arg(now, "timestamptz")), counted=True)
    waits = ["review" if r["status"] == Status.REVIEW_PENDING else "queued" for r in rows]
    queue.add_new(w, [r["id"] for r in rows], waits)
    used: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        used[r["merchant_id"]][0] += r["amount_fen"]
        used[r["merchant_id"]][1] += 1
    # Today's use grows by what this batch accepted (the row starts the day afresh if needed).
    usage = [UsageChange(m, business_date, a, n, roll=True) for m, (a, n) in used.items()]
    balance_rows = journal.add_moves(w, holds, usage, lock_in_order=lock_in_order)
    add_events(w, events)
    when = f"WHERE {before_velocity(w)}" if before_velocity is not None else ""
    accounts = sorted(increments)
    payees = w.arg(accounts, "text[]")
    counts_in = w.arg([increments[a] for a in accounts], "int[]")
    w.add("velocity", f"""
        INSERT INTO payee_velocity AS v (account_no, hour_start, count)
        SELECT a, {w.arg(hour, "timestamptz")}, n FROM unnest({payees}, {counts_in}) AS u (a, n)
        {when} ORDER BY a
        ON CONFLICT (account_no, hour_start) DO UPDATE SET count = v.count + excluded.count
            WHERE v.count + excluded.count <= {w.arg(risk_rules.payee_velocity_per_hour, "int")}
        RETURNING 1""", counted=True)  # fmt: skip
    expected = {"payouts": len(rows), "queued": len(rows), "outbox": len(events),
                "balances": balance_rows, "velocity": len(accounts),
                "account_balances": journal.account_rows(holds)}  # fmt: skip
    return w, expected


async def _write(
    conn: asyncpg.Connection,
    d: Decided,
    business_date: date,
    hour: datetime,
    risk_rules: rules.RiskRules,
) -> None:
    """Statement 2: every write of the batch in one round trip."""
    w, expected = build_write(d, business_date, hour, risk_rules)
    counts = await w.run(conn)
    if counts["velocity"] != expected["velocity"]:
        raise StaleRead(f"velocity moved: {counts['velocity']}/{expected['velocity']} payees fit")
    for part in ("payouts", "queued", "outbox", "balances"):
        assert counts[part] == expected[part], (part, counts)
    assert counts.get("account_balances", 0) == expected["account_balances"], counts


async def _lock_sources(
    conn: asyncpg.Connection, items: Sequence[AcceptItem]
) -> dict[str, tuple[AccountRef, AccountFunds]]:
    """Withdrawals' personal accounts (提现), locked after the merchants' balance rows (the
    lock order): account id -> what never changes of it, and its money. Only a merchant's own
    personal accounts are locked (another's is refused, 404). A batch without withdrawals
    costs nothing here."""
    wanted = {(i.merchant_id, i.request.account_id) for i in items if i.request.account_id}
    if not wanted:
        return {}
    refs = await account_repo.refs(conn, sorted({a for _, a in wanted}))
    personal = [r.id for r in refs.values()
                if r.kind == "personal" and (r.merchant_id, r.id) in wanted]  # fmt: skip
    _, funds = await account_repo.lock_funds(conn, [], personal)
    return {a: (refs[a], funds[a]) for a in personal}


def _withdraw_from(
    item: AcceptItem, sources: dict[str, tuple[AccountRef, AccountFunds]]
) -> tuple[AccountFunds | None, ApiError | None]:
    """The personal account a withdrawal draws from, or why it cannot."""
    req = item.request
    assert req.account_id
    found = sources.get(req.account_id)
    if found is None or found[0].merchant_id != item.merchant_id:
        return None, NotFound("no such personal account", field="account_id")
    ref, funds = found
    if ref.currency != req.currency:
        return None, InvalidRequest(f"the account is in {ref.currency}", field="currency")
    refusal = account_rules.debit(funds, req.amount)
    if refusal is not None:
        return None, BusinessRefusal(refusal.message, field="amount", code=refusal.code)
    return funds, None


def _refuse(t: MerchantTerms, req: PayoutRequest) -> ApiError | None:
    """Checks on fresh merchant terms (the cached copy used for auth may be seconds old)."""
    if t.status != "active":
        return Forbidden("merchant is suspended", code="merchant_suspended")
    if req.currency != t.currency:
        return InvalidRequest(f"currency must be {t.currency}", field="currency")
    return rules.check_amount(req.amount, t.max_amount_fen) or rules.check_daily(
        t.used_today, req.amount, t.daily_amount_fen, t.daily_count
    )
