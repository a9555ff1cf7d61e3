"""Operator view of the way to the banks: channels (quotas, cost, circuit breakers; GET/PATCH
/admin/channels) and the dispatch switch (GET/PATCH /admin/dispatch)."""

from __future__ import annotations

from typing import Final

import msgspec
from aiohttp import web

from channels import repo as channel_repo
from gateway.api.jsonio import json_response, read_json
from gateway.api.operations import Op, path_id
from gateway.api.services import SERVICES
from gateway.contract.requests import ChannelPatch, DispatchPatch
from gateway.operators import actions
from gateway.operators.model import API_ACTOR
from gateway.payouts import queue

routes = web.RouteTableDef()

OPERATIONS: Final[tuple[Op, ...]] = (
    Op("get", "/admin/channels", "Bank channels and their breakers", "admin", {200: None}),
    Op(
        "patch",
        "/admin/channels/{channel_id}",
        "Change a channel",
        "admin",
        {200: None},
        ChannelPatch,
        params=(path_id("channel_id"),),
        errors=(404,),
    ),
    Op("get", "/admin/dispatch", "Whether dispatch to banks is paused", "admin", {200: None}),
    Op(
        "patch",
        "/admin/dispatch",
        "Pause or resume dispatch to banks",
        "admin",
        {200: None},
        DispatchPatch,
    ),
)


@routes.get("/admin/channels")
async def list_channels(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return json_response({"data": await channel_repo.list_public(services.pool),
                          "next_cursor": None})  # fmt: skip


@routes.patch("/admin/channels/{channel_id}")
async def patch_channel(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await read_json(request, ChannelPatch)
    given = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not msgspec.UNSET}
    breaker = given.pop("breaker", None)
    assert set(given) <= set(channel_repo.PATCHABLE), given
    channel_id = request.match_info["channel_id"]
    async with services.pool.acquire() as conn:
        row = await actions.patch_channel(conn, channel_id, given, breaker, API_ACTOR, None,
                                          services.clock.now())  # fmt: skip
    return json_response(row)


@routes.get("/admin/dispatch")
async def get_dispatch(request: web.Request) -> web.Response:
    """Whether payouts are being sent to banks (an addition to SPEC 11, for operators)."""
    return json_response(await queue.dispatch_paused(request.app[SERVICES].pool))


@routes.patch("/admin/dispatch")
async def patch_dispatch(request: web.Request) -> web.Response:
    """`{"paused": true}` stops sending payouts to banks (accepts go on, payouts wait queued);
    `false` sends them again, oldest first."""
    body = await read_json(request, DispatchPatch)
    services = request.app[SERVICES]
    async with services.pool.acquire() as conn:
        done = await actions.pause_dispatch(conn, body.paused, API_ACTOR, services.clock.now())
    return json_response(done)
