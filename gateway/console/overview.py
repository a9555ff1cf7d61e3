"""`/console/`: the overview, updating itself every second (console.js polls
`/console/overview.json` and redraws; the page is complete without script too), and
"Run ledger check"."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
import orjson
from aiohttp import web

from gateway.console import reads
from gateway.console.access import require, services_of
from gateway.console.sampler import samples
from gateway.operators import actions, audit

routes = web.RouteTableDef()


async def figures(request: web.Request) -> dict[str, Any]:
    services = services_of(request)
    snap = await reads.snapshot(services.pool)
    series = await samples(services)
    last = series[-1] if series else {}
    check = await audit.last_of(services.pool, "ledger.check")
    pool_row = await services.pool.fetchrow("SELECT cap_fen, used_fen FROM advance_pool")
    return {
        **snap,
        "accepted_per_s": last.get("accepted_per_s", 0),
        "finalized_per_s": last.get("finalized_per_s", 0),
        "p99_ms": last.get("p99_ms"),
        "notifications_failed": last.get("notify_failed", 0),
        "pool_used": pool_row["used_fen"],
        "pool_cap": pool_row["cap_fen"],
        "sim_now": services.clock.now().strftime("%Y-%m-%d %H:%M:%S"),
        "ledger_check": None if check is None else {
            "ok": check["after"]["ok"], "failing": check["after"]["failing"],
            "at": check["at"].strftime("%Y-%m-%d %H:%M:%S"), "by": check["operator_name"]},
        "series": [{"t": s["t"], "accepted": s["accepted_per_s"],
                    "finalized": s["finalized_per_s"]} for s in series],
    }  # fmt: skip


@routes.get("/")
@aiohttp_jinja2.template("overview.html")
async def overview(request: web.Request) -> dict[str, Any]:
    return {"o": await figures(request)}


@routes.get("/overview.json")
async def overview_json(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(await figures(request)),
                        content_type="application/json")  # fmt: skip


@routes.post("/ledger-check")
async def ledger_check(request: web.Request) -> web.StreamResponse:
    actor = require(request, "viewer")
    services = services_of(request)
    async with services.pool.acquire() as conn:
        await actions.ledger_check(conn, actor, services.clock.now())
    raise web.HTTPSeeOther("/console/")
