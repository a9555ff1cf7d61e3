"""The simulated clock for operators and scenarios (SPEC 12): read it, move it forward.

Moving it writes the shared anchor; every process follows within a fraction of a second
(`storage.pools.follow_clock`). Time only goes forward.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.jsonio import json_response, read_json
from gateway.api.schemas import ClockAdvance
from gateway.api.services import SERVICES
from gateway.clock import SimClock
from gateway.storage.pools import save_clock

routes = web.RouteTableDef()


def _shown(clock: SimClock) -> dict[str, Any]:
    return {"now": clock.now(), "business_date": clock.business_date(), "scale": clock.scale}


@routes.get("/admin/clock")
async def get_clock(request: web.Request) -> web.Response:
    return json_response(_shown(request.app[SERVICES].clock))


@routes.post("/admin/clock/advance")
async def advance_clock(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await read_json(request, ClockAdvance)
    services.clock.advance(body.advance_s)
    await save_clock(services.pool, services.clock)
    return json_response(_shown(services.clock))
