"""Every operator action that changes something, each with its `operator_actions` row in the
same transaction: one path to money for the `/admin` API and the console (SPEC 17).

The callers (api/routes_*.py, console/) decode and authorise; these functions decide, change
and record. `sim_at` is the simulated time of the action (the audit shows both clocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from channels import repo as channel_repo
from gateway.ledger.check import run_checks
from gateway.ledger.credits import apply_credit
from gateway.merchants import repo as merchants_repo
from gateway.merchants.model import Merchant
from gateway.notifications import repo as notifications_repo
from gateway.operators import audit, repo
from gateway.operators.model import Actor
from gateway.payouts import model as payout_model
from gateway.payouts import queue
from gateway.payouts.state import Event
from gateway.payouts.transitions import PayoutEvent, apply_events_in_tx
from gateway.recon import exceptions
from protocol.errors import BusinessRefusal, Conflict, NotFound

APPROVALS_NEEDED = 2  # four eyes


@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    payout: dict[str, Any]
    approvals: int  # approvals so far (after this one)
    needed: int  # 1, or 2 under four eyes; the payout moved on once approvals == needed


async def decide_review(
    conn: asyncpg.Connection,
    payout_id: str,
    event: Event,
    actor: Actor,
    reason: str | None,
    four_eyes_fen: int,
    sim_at: datetime | None,
) -> ReviewOutcome:
    """Approve or reject a payout under review (财务审核). A payout of at least
    `four_eyes_fen` approved from the console needs two different approvers; the first
    approval is recorded and the payout stays under review ("1 of 2"). The API's token is
    one credential, not a person: its approval is final (and audited as the token)."""
    assert event in (Event.APPROVE, Event.REJECT)
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT status, amount_fen FROM payouts WHERE id = $1 FOR UPDATE", payout_id
        )
        if row is None:
            raise NotFound("no such payout")
        if row["status"] != "review_pending":
            raise Conflict(f"payout is {row['status']}, not review_pending", code="invalid_state")
        approvers = [
            r["approver"]
            for r in await conn.fetch(
                "SELECT approver FROM payout_approvals WHERE payout_id = $1 ORDER BY at", payout_id
            )
        ]
        needed = 1
        if actor.via == "console" and row["amount_fen"] >= four_eyes_fen:
            needed = APPROVALS_NEEDED
        before = {"status": "review_pending", "approvals": approvers}
        if event is Event.APPROVE and needed > 1:
            if actor.name in approvers:
                raise Conflict(
                    "you approved this payout already; a second approver must", code="same_approver"
                )
            await conn.execute(
                "INSERT INTO payout_approvals (payout_id, approver) VALUES ($1, $2)",
                payout_id,
                actor.name,
            )
            approvers = [*approvers, actor.name]
            if len(approvers) < needed:
                after = {"status": "review_pending", "approvals": approvers}
                await audit.record(
                    conn,
                    actor,
                    "payout.approve",
                    "payout",
                    payout_id,
                    before=before,
                    after=after,
                    reason=reason,
                    sim_at=sim_at,
                )
                payout = await conn.fetchrow(
                    f"SELECT {payout_model.COLUMNS} FROM payouts WHERE id = $1", payout_id
                )
                return ReviewOutcome(payout_model.public(payout), len(approvers), needed)
        ev = PayoutEvent(
            payout_id,
            event,
            failure_code="rejected_by_review" if event is Event.REJECT else None,
            failure_message=reason,
        )
        (result,) = await apply_events_in_tx(conn, [ev])
        assert result.applied and result.payout is not None, result  # the row is locked
        action = "payout.approve" if event is Event.APPROVE else "payout.reject"
        await audit.record(
            conn,
            actor,
            action,
            "payout",
            payout_id,
            before=before,
            after={"status": result.status, "approvals": approvers},
            reason=reason,
            sim_at=sim_at,
        )
        return ReviewOutcome(result.payout, len(approvers), needed)


async def change_merchant(
    conn: asyncpg.Connection,
    merchant_id: str,
    changes: dict[str, Any],
    actor: Actor,
    reason: str | None,
    sim_at: datetime | None,
) -> Merchant:
    """Change a merchant's terms (columns of merchants_repo.MUTABLE): line, rate limit,
    suspension... The balance row is locked first, so a concurrent accept cannot slip past a
    lowered credit line."""
    async with conn.transaction():
        used = await conn.fetchval(
            "SELECT advance_used_fen FROM merchant_balances WHERE merchant_id = $1 FOR UPDATE",
            merchant_id,
        )
        if used is None:
            raise NotFound("no such merchant")
        if "advance_limit_fen" in changes and changes["advance_limit_fen"] < used:
            raise BusinessRefusal(
                f"advance_limit below the advance in use ({used})",
                field="advance_limit",
                code="advance_limit_below_used",
            )
        before = await merchants_repo.get(conn, merchant_id)
        merchant = await merchants_repo.update(conn, merchant_id, changes)
        assert before is not None and merchant is not None
        old, new = before.public(), merchant.public()
        changed = sorted(k for k in new if k != "updated_at" and old[k] != new[k])
        await audit.record(
            conn,
            actor,
            "merchant.change",
            "merchant",
            merchant_id,
            before={k: old[k] for k in changed},
            after={k: new[k] for k in changed},
            reason=reason,
            sim_at=sim_at,
        )
        return merchant


async def credit(
    conn: asyncpg.Connection,
    merchant_id: str,
    amount_fen: int,
    currency: str,
    reference: str,
    actor: Actor,
    sim_at: datetime | None,
) -> tuple[dict[str, Any], bool]:
    """A manual deposit, idempotent on the reference: a repeat credits nothing and records
    nothing new. Returns (credit, created)."""
    async with conn.transaction():
        before = await conn.fetchval(
            "SELECT available_fen FROM merchant_balances WHERE merchant_id = $1", merchant_id
        )
        made, created = await apply_credit(conn, merchant_id, amount_fen, currency, reference)
        if created:
            await audit.record(
                conn,
                actor,
                "merchant.credit",
                "merchant",
                merchant_id,
                before={"available": before},
                after={"available": before + amount_fen, "credit": made},
                reason=f"reference {reference}",
                sim_at=sim_at,
            )
        return made, created


async def patch_channel(
    conn: asyncpg.Connection,
    channel_id: str,
    fields: dict[str, Any],
    breaker: str | None,
    actor: Actor,
    reason: str | None,
    sim_at: datetime | None,
) -> dict[str, Any]:
    """Change a channel; `{"enabled": False}` pauses dispatch to that bank (Pause)."""
    async with conn.transaction():
        old = await conn.fetchrow("SELECT * FROM channels WHERE id = $1 FOR UPDATE", channel_id)
        if old is None:
            raise NotFound(f"no channel {channel_id}")
        row = await channel_repo.patch(conn, channel_id, fields, breaker, datetime.now(UTC))
        assert row is not None
        action = "channel.change"
        if set(fields) == {"enabled"} and breaker is None:
            action = "channel.resume" if fields["enabled"] else "channel.pause"
        new = await conn.fetchrow("SELECT * FROM channels WHERE id = $1", channel_id)
        shown = [*fields, *(["breaker_state"] if breaker else [])]
        before = {k: old[k] for k in shown}
        after = {k: new[k] for k in shown}
        await audit.record(
            conn,
            actor,
            action,
            "channel",
            channel_id,
            before=before,
            after=after,
            reason=reason,
            sim_at=sim_at,
        )
        return row


async def pause_dispatch(
    conn: asyncpg.Connection, paused: bool, actor: Actor, sim_at: datetime | None
) -> dict[str, Any]:
    async with conn.transaction():
        before = await queue.dispatch_paused(conn)
        after = await queue.pause_dispatch(conn, paused)
        await audit.record(
            conn,
            actor,
            "dispatch.pause" if paused else "dispatch.resume",
            "dispatch",
            "all",
            before={"paused": before["paused"]},
            after={"paused": after["paused"]},
            sim_at=sim_at,
        )
        return after


async def resolve_exception(
    conn: asyncpg.Connection,
    exception_id: str,
    note: str,
    adjustment: exceptions.Adjustment | None,
    actor: Actor,
    sim_at: datetime | None,
) -> dict[str, Any]:
    async with conn.transaction():
        resolved = await exceptions.resolve(conn, exception_id, note, adjustment)
        after = {"status": resolved["status"]}
        if adjustment is not None:
            after["adjustment"] = {
                "merchant_id": adjustment.merchant_id,
                "amount": adjustment.amount_fen,
            }
        await audit.record(
            conn,
            actor,
            "recon.resolve",
            "recon_exception",
            exception_id,
            before={"status": "open"},
            after=after,
            reason=note,
            sim_at=sim_at,
        )
        return resolved


async def redeliver(
    conn: asyncpg.Connection,
    merchant_id: str,
    event_id: str,
    actor: Actor,
    sim_at: datetime | None,
) -> dict[str, Any]:
    async with conn.transaction():
        before = await conn.fetchval(
            "SELECT delivery_status FROM outbox_events WHERE id = $1 AND merchant_id = $2",
            event_id,
            merchant_id,
        )
        event = await notifications_repo.redeliver(conn, merchant_id, event_id, datetime.now(UTC))
        if event is None:
            raise NotFound("no such event")
        await audit.record(
            conn,
            actor,
            "event.redeliver",
            "event",
            event_id,
            before={"delivery": before},
            after={"delivery": "pending"},
            sim_at=sim_at,
        )
        return event


async def ledger_check(
    conn: asyncpg.Connection, actor: Actor, sim_at: datetime | None
) -> dict[str, Any]:
    """Run the SPEC 4 checks and record the outcome (the overview shows the last one)."""
    results = await run_checks(conn)
    checks = [{"name": r.name, "ok": r.ok, "violations": r.violations} for r in results]
    out = {"ok": all(r.ok for r in results), "checks": checks}
    failing = [r.name for r in results if not r.ok]
    await audit.record(
        conn,
        actor,
        "ledger.check",
        "ledger",
        "all",
        after={"ok": out["ok"], "failing": failing},
        sim_at=sim_at,
    )
    return out


async def add_operator(
    conn: asyncpg.Connection, name: str, role: str, password: str, actor: Actor,
    sim_at: datetime | None,
) -> repo.Operator:  # fmt: skip
    """A new operator (ValueError for a bad name or role, OperatorExists for a taken name)."""
    async with conn.transaction():
        made = await repo.add(conn, name, role, password)
        await audit.record(conn, actor, "operator.add", "operator", made.id,
                           after={"name": name, "role": role}, sim_at=sim_at)  # fmt: skip
        return made
