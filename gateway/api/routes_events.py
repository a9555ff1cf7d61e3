"""Merchant notifications as an event log (SPEC 10/11): list, one with its attempts, redeliver."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from gateway.api import answers
from gateway.api.auth import current_merchant
from gateway.api.jsonio import json_response
from gateway.api.operations import CURSOR, LIMIT, Op, path_id
from gateway.api.paging import cursor, page, page_limit
from gateway.api.services import SERVICES
from gateway.notifications import repo
from protocol.errors import NotFound

routes = web.RouteTableDef()

OPERATIONS: Final[tuple[Op, ...]] = (
    Op(
        "get",
        "/v1/events",
        "Notification events",
        "merchant",
        {200: answers.EventPage},
        params=(LIMIT, CURSOR),
    ),
    Op(
        "get",
        "/v1/events/{event_id}",
        "One event with its delivery history",
        "merchant",
        {200: answers.Event},
        params=(path_id("event_id"),),
        errors=(404,),
    ),
    Op(
        "post",
        "/v1/events/{event_id}/redeliver",
        "Deliver an event again",
        "merchant",
        {202: answers.Event},
        params=(path_id("event_id"),),
        errors=(404,),
    ),
)


@routes.get("/v1/events")
async def list_events(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    merchant = current_merchant(request)
    limit, after = page_limit(request), cursor(request)
    rows = await services.reads.read_list(
        merchant.id, lambda pool: repo.list_events(pool, merchant.id, after, limit + 1)
    )
    return page(rows, limit)


@routes.get("/v1/events/{event_id}")
async def get_event(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    merchant = current_merchant(request)
    event = await repo.get_event(services.pool, merchant.id, request.match_info["event_id"])
    if event is None:
        raise NotFound("no such event")
    return json_response(event)


@routes.post("/v1/events/{event_id}/redeliver")
async def redeliver(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    merchant = current_merchant(request)
    event_id = request.match_info["event_id"]
    event = await repo.redeliver(services.pool, merchant.id, event_id, datetime.now(UTC))
    if event is None:
        raise NotFound("no such event")
    return json_response(event, status=202)
