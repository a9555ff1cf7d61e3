"""Operator view of bank channels: quotas, cost, circuit breakers (GET/PATCH /admin/channels)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from aiohttp import web

from channels import repo as channel_repo
from gateway.api.jsonio import json_response, read_json
from gateway.api.schemas import ChannelPatch
from gateway.api.services import SERVICES
from gateway.errors import NotFound

routes = web.RouteTableDef()


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
    row = await channel_repo.patch(services.pool, channel_id, given, breaker, datetime.now(UTC))
    if row is None:
        raise NotFound(f"no channel {channel_id}")
    return json_response(row)
