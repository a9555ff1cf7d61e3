"""`/console/merchants` and `/console/merchants/{id}`: balances, 垫资 used of the line, the
三户 tree; "Change advance limit", "Change rate limit", "Suspend", "Resume", "Credit"."""

from __future__ import annotations

import re
from typing import Any, Final

import aiohttp_jinja2
from aiohttp import web

from gateway.console import reads
from gateway.console.access import form_int, form_text, require, services_of
from gateway.operators import actions, audit
from gateway.operators.model import Actor

routes = web.RouteTableDef()
REFERENCE_RE: Final = re.compile(r"^[\x21-\x7e]{1,128}$")  # as the API's CreditRequest


@routes.get("/merchants")
@aiohttp_jinja2.template("merchants.html")
async def merchants(request: web.Request) -> dict[str, Any]:
    q = request.query
    name = (q.get("name") or "").strip()[:100] or None
    status = q.get("status") if q.get("status") in ("active", "suspended") else None
    rows = await reads.merchants(services_of(request).pool, q.get("after") or None, name, status)
    query = {k: v for k, v in (("name", name), ("status", status)) if v}
    return {"rows": rows, "query": query,
            "next": rows[-1]["id"] if len(rows) == reads.PAGE else None}  # fmt: skip


@routes.get("/merchants/{merchant_id}")
@aiohttp_jinja2.template("merchant.html")
async def merchant(request: web.Request) -> dict[str, Any]:
    pool = services_of(request).pool
    merchant_id = request.match_info["merchant_id"]
    detail = await reads.merchant_detail(pool, merchant_id)
    if detail is None:
        raise web.HTTPNotFound(text=f"no merchant {merchant_id}")
    detail["actions"] = await audit.list_page(pool, object_id=merchant_id)
    return detail


async def _change(request: web.Request, actor: Actor, changes: dict[str, Any]) -> None:
    services = services_of(request)
    merchant_id = request.match_info["merchant_id"]
    reason = await form_text(request, "reason", required=False)
    async with services.pool.acquire() as conn:
        await actions.change_merchant(conn, merchant_id, changes, actor, reason or None,
                                      services.clock.now())  # fmt: skip
    services.merchants.forget(merchant_id)


def _back(request: web.Request) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/console/merchants/{request.match_info['merchant_id']}")


@routes.post("/merchants/{merchant_id}/advance-limit")
async def advance_limit(request: web.Request) -> web.StreamResponse:
    actor = require(request, "admin")
    await _change(request, actor, {"advance_limit_fen": await form_int(request, "advance_limit")})
    raise _back(request)


@routes.post("/merchants/{merchant_id}/rate-limit")
async def rate_limit(request: web.Request) -> web.StreamResponse:
    actor = require(request, "admin")
    rps = await form_int(request, "rps", minimum=1)
    burst = await form_int(request, "burst", minimum=1)
    if rps > 1_000_000 or burst > 1_000_000:
        raise web.HTTPBadRequest(text="rps and burst are at most 1,000,000")
    await _change(request, actor, {"rate_limit_rps": rps, "rate_limit_burst": burst})
    raise _back(request)


@routes.post("/merchants/{merchant_id}/suspend")
async def suspend(request: web.Request) -> web.StreamResponse:
    await _change(request, require(request, "admin"), {"status": "suspended"})
    raise _back(request)


@routes.post("/merchants/{merchant_id}/resume")
async def resume(request: web.Request) -> web.StreamResponse:
    await _change(request, require(request, "admin"), {"status": "active"})
    raise _back(request)


@routes.post("/merchants/{merchant_id}/credit")
async def credit(request: web.Request) -> web.StreamResponse:
    """Idempotent on the reference: the same reference again credits nothing more."""
    actor = require(request, "admin")
    amount = await form_int(request, "amount_fen", minimum=1)
    if amount > 10**13:
        raise web.HTTPBadRequest(text="amount is at most 10^13 fen")
    reference = await form_text(request, "reference", max_len=128)
    if not REFERENCE_RE.match(reference):
        raise web.HTTPBadRequest(text="a reference is printable ASCII without spaces")
    services = services_of(request)
    async with services.pool.acquire() as conn:
        await actions.credit(conn, request.match_info["merchant_id"], amount, "CNY", reference,
                             actor, services.clock.now())  # fmt: skip
    raise _back(request)
