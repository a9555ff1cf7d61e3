"""Operations pages: `/console/channels` (Pause, Resume a bank's dispatch), `/console/exposure`
(垫资, with the pool over time), `/console/recon` (对账 runs; Resolve an exception with a reason
and maybe an adjustment) and `/console/audit` (every operator action)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from channels import repo as channel_repo
from gateway.console import reads
from gateway.console.access import form_text, require, services_of
from gateway.console.charts import line_chart
from gateway.console.sampler import samples
from gateway.ledger.exposure import advance_exposure
from gateway.operators import actions, audit
from gateway.recon.exceptions import Adjustment

routes = web.RouteTableDef()


@routes.get("/channels")
@aiohttp_jinja2.template("channels.html")
async def channels(request: web.Request) -> dict[str, Any]:
    pool = services_of(request).pool
    snap = await reads.snapshot(pool)
    in_flight = {b["id"]: b["in_flight"] for b in snap["banks"]}
    rows = await channel_repo.list_public(pool)
    for row in rows:
        totals = row["totals"]
        done = totals["successes"] + totals["failures"]
        row["error_pct"] = None if not done else round(100 * totals["failures"] / done, 1)
        row["in_flight"] = in_flight.get(row["id"], 0)
    return {"rows": rows, "queued": snap["open"].get("queued", 0),
            "dispatch_paused": snap["dispatch_paused"]}  # fmt: skip


async def _set_enabled(request: web.Request, enabled: bool) -> web.StreamResponse:
    actor = require(request, "operator")
    services = services_of(request)
    reason = await form_text(request, "reason", required=False)
    async with services.pool.acquire() as conn:
        await actions.patch_channel(conn, request.match_info["channel_id"], {"enabled": enabled},
                                    None, actor, reason or None, services.clock.now())  # fmt: skip
    raise web.HTTPSeeOther("/console/channels")


@routes.post("/channels/{channel_id}/pause")
async def pause(request: web.Request) -> web.StreamResponse:
    return await _set_enabled(request, False)


@routes.post("/channels/{channel_id}/resume")
async def resume(request: web.Request) -> web.StreamResponse:
    return await _set_enabled(request, True)


@routes.post("/dispatch/{switch:pause|resume}")
async def dispatch(request: web.Request) -> web.StreamResponse:
    """Every bank at once (the /admin/dispatch switch)."""
    actor = require(request, "operator")
    services = services_of(request)
    async with services.pool.acquire() as conn:
        await actions.pause_dispatch(conn, request.match_info["switch"] == "pause", actor,
                                     services.clock.now())  # fmt: skip
    raise web.HTTPSeeOther("/console/channels")


@routes.get("/exposure")
@aiohttp_jinja2.template("exposure.html")
async def exposure(request: web.Request) -> dict[str, Any]:
    services = services_of(request)
    series = await samples(services)
    points = [(s["t"], s["pool_used"]) for s in series]
    return {
        "x": await advance_exposure(services.pool),
        "clearing": await reads.pending_in_by_clearing(services.pool),
        "chart": line_chart(points, "垫资 pool used (fen)"),
    }


@routes.get("/recon")
@aiohttp_jinja2.template("recon.html")
async def recon(request: web.Request) -> dict[str, Any]:
    return await reads.recon(services_of(request).pool)


@routes.post("/recon/{exception_id}/resolve")
async def resolve(request: web.Request) -> web.StreamResponse:
    actor = require(request, "operator")
    reason = await form_text(request, "reason", max_len=2000)
    merchant_id = await form_text(request, "merchant_id", required=False, max_len=64)
    amount_text = await form_text(request, "adjustment_fen", required=False, max_len=20)
    adjustment = None
    if amount_text:
        try:
            amount = int(amount_text)
        except ValueError:
            raise web.HTTPBadRequest(text="the adjustment is a whole number of fen") from None
        if amount == 0 or not merchant_id or abs(amount) > 10**13:
            raise web.HTTPBadRequest(text="an adjustment needs a merchant and a non-zero amount")
        adjustment = Adjustment(merchant_id, amount)
    services = services_of(request)
    async with services.pool.acquire() as conn:
        await actions.resolve_exception(conn, request.match_info["exception_id"], reason,
                                        adjustment, actor, services.clock.now())  # fmt: skip
    raise web.HTTPSeeOther("/console/recon")


@routes.get("/audit")
@aiohttp_jinja2.template("audit.html")
async def audit_log(request: web.Request) -> dict[str, Any]:
    q = request.query
    before = q.get("before", "")
    rows = await audit.list_page(
        services_of(request).pool,
        object_id=q.get("object_id") or None,
        operator=q.get("operator") or None,
        action=q.get("action") or None,
        before_id=int(before) if before.isdigit() else None,
    )
    query = {k: v for k, v in q.items() if k != "before" and v}
    return {"rows": rows, "next": rows[-1]["id"] if len(rows) == 50 else None, "query": query}
