"""The simulated clock for operators and scenarios (SPEC 12): read it, move it forward.

Moving it writes the shared anchor (read under its row lock, so a jump starts from where
the clock is, not from this process's copy); every process follows within a fraction of a
second (`storage.pools.follow_clock`). Time only goes forward.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web
from msgspec import UnsetType

from gateway.api.jsonio import json_response, read_json
from gateway.api.operations import Op
from gateway.api.services import SERVICES
from gateway.contract.requests import MAX_CLOCK_JUMP_S, ClockAdvance
from gateway.operators import audit
from gateway.operators.model import API_ACTOR
from gateway.storage.pools import move_clock
from protocol.clock import SimClock
from protocol.errors import InvalidRequest

routes = web.RouteTableDef()

OPERATIONS: Final[tuple[Op, ...]] = (
    Op("get", "/admin/clock", "The simulated clock", "admin", {200: None}),
    Op(
        "post",
        "/admin/clock/advance",
        "Move simulated time forward: by advance_s, or to a time (retry-safe: lands once)",
        "admin",
        {200: None},
        ClockAdvance,
    ),
)


def _shown(clock: SimClock) -> dict[str, Any]:
    return {"now": clock.now(), "business_date": clock.business_date(), "scale": clock.scale}


@routes.get("/admin/clock")
async def get_clock(request: web.Request) -> web.Response:
    return json_response(_shown(request.app[SERVICES].clock))


@routes.post("/admin/clock/advance")
async def advance_clock(request: web.Request) -> web.Response:
    """`{"advance_s": N}` or `{"to": T}` (retry-safe: a jump to T lands once)."""
    services = request.app[SERVICES]
    body = await read_json(request, ClockAdvance)
    by_s, to = body.advance_s, body.to
    if isinstance(by_s, UnsetType) == isinstance(to, UnsetType):
        raise InvalidRequest("give exactly one of advance_s and to", field="to")
    before = _shown(services.clock)
    if not isinstance(by_s, UnsetType):
        await move_clock(services.pool, services.clock, by_s=by_s)
    elif not isinstance(to, UnsetType):
        if to.timestamp() - services.clock.now_s() > MAX_CLOCK_JUMP_S:
            raise InvalidRequest("a jump goes at most 366 days ahead", field="to")
        await move_clock(services.pool, services.clock, to_s=to.timestamp())
    after = _shown(services.clock)
    # Recorded after the move (move_clock commits it on its own).
    async with services.pool.acquire() as conn:
        await audit.record(conn, API_ACTOR, "clock.advance", "clock", "sim", before=before,
                           after=after, sim_at=services.clock.now())  # fmt: skip
    return json_response(after)
