"""财务审核 and payouts: `/console/reviews` (Approve; Reject with a reason), `/console/payouts`
(search) and `/console/payouts/{id}` (timeline, postings, bank, notifications; Redeliver)."""

from __future__ import annotations

from datetime import date
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from gateway.console import reads
from gateway.console.access import form_text, require, services_of
from gateway.operators import actions, audit
from gateway.payouts.state import Event, Status

routes = web.RouteTableDef()


@routes.get("/reviews")
@aiohttp_jinja2.template("reviews.html")
async def reviews(request: web.Request) -> dict[str, Any]:
    services = services_of(request)
    rows = await reads.reviews(services.pool, request.query.get("after") or None)
    return {"rows": rows, "four_eyes_fen": services.settings.four_eyes_fen,
            "next": rows[-1]["id"] if len(rows) == reads.PAGE else None}  # fmt: skip


async def _decide(request: web.Request, event: Event) -> web.StreamResponse:
    actor = require(request, "approver")
    reason = await form_text(request, "reason", required=event is Event.REJECT)
    services = services_of(request)
    async with services.pool.acquire() as conn:
        await actions.decide_review(
            conn, request.match_info["payout_id"], event, actor, reason or None,
            services.settings.four_eyes_fen, services.clock.now(),
        )  # fmt: skip
    raise web.HTTPSeeOther("/console/reviews")


@routes.post("/reviews/{payout_id}/approve")
async def approve(request: web.Request) -> web.StreamResponse:
    return await _decide(request, Event.APPROVE)


@routes.post("/reviews/{payout_id}/reject")
async def reject(request: web.Request) -> web.StreamResponse:
    return await _decide(request, Event.REJECT)


def _filter(q: Any) -> reads.PayoutFilter:
    def text(name: str) -> str | None:
        value = (q.get(name) or "").strip()
        return value[:64] or None

    def fen(name: str) -> int | None:
        value = text(name)
        return int(value) if value and value.isdigit() else None

    day = text("date")
    try:
        parsed = date.fromisoformat(day) if day else None
    except ValueError:
        raise web.HTTPBadRequest(text="date is YYYY-MM-DD") from None
    status = text("status")
    if status is not None and status not in {s.value for s in Status}:
        raise web.HTTPBadRequest(text="no such status")
    return reads.PayoutFilter(
        id=text("id"), merchant_order_id=text("merchant_order_id"),
        merchant_id=text("merchant_id"), status=status, bank_id=text("bank_id"),
        min_fen=fen("min_fen"), max_fen=fen("max_fen"), day=parsed, before_id=text("before"),
    )  # fmt: skip


@routes.get("/payouts")
@aiohttp_jinja2.template("payouts.html")
async def payouts(request: web.Request) -> dict[str, Any]:
    f = _filter(request.query)
    rows = await reads.payouts(services_of(request).pool, f)
    more = len(rows) == reads.PAGE
    query = {k: v for k, v in request.query.items() if k != "before" and v}
    return {"rows": rows, "f": f, "statuses": [s.value for s in Status],
            "next": rows[-1]["id"] if more else None, "query": query}  # fmt: skip


@routes.get("/payouts/{payout_id}")
@aiohttp_jinja2.template("payout.html")
async def payout(request: web.Request) -> dict[str, Any]:
    pool = services_of(request).pool
    payout_id = request.match_info["payout_id"]
    detail = await reads.payout_detail(pool, payout_id)
    if detail is None:
        raise web.HTTPNotFound(text=f"no payout {payout_id}")
    detail["actions"] = await audit.list_page(pool, object_id=payout_id)
    return detail


@routes.post("/events/{event_id}/redeliver")
async def redeliver(request: web.Request) -> web.StreamResponse:
    actor = require(request, "operator")
    services = services_of(request)
    event_id = request.match_info["event_id"]
    row = await services.pool.fetchrow(
        "SELECT merchant_id, object_id FROM outbox_events WHERE id = $1", event_id
    )
    if row is None:
        raise web.HTTPNotFound(text=f"no event {event_id}")
    async with services.pool.acquire() as conn:
        await actions.redeliver(conn, row["merchant_id"], event_id, actor, services.clock.now())
    raise web.HTTPSeeOther(f"/console/payouts/{row['object_id']}")
