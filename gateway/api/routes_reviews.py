"""Operator review of large payouts (财务审核): list, approve, reject."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.api import answers
from gateway.api.jsonio import json_response, read_body, read_json
from gateway.api.operations import CURSOR, LIMIT, Op, path_id
from gateway.api.paging import cursor, page, page_limit
from gateway.api.services import SERVICES
from gateway.contract.requests import ReviewDecision
from gateway.operators import actions
from gateway.operators.model import API_ACTOR
from gateway.payouts import queries
from gateway.payouts.state import Event

routes = web.RouteTableDef()

OPERATIONS: Final[tuple[Op, ...]] = (
    Op(
        "get",
        "/admin/reviews",
        "Payouts waiting for review",
        "admin",
        {200: answers.Page},
        params=(LIMIT, CURSOR),
    ),
    Op(
        "post",
        "/admin/payouts/{payout_id}/approve",
        "Approve a reviewed payout",
        "admin",
        {200: answers.Payout},
        ReviewDecision,
        params=(path_id("payout_id"),),
        errors=(404, 409),
    ),
    Op(
        "post",
        "/admin/payouts/{payout_id}/reject",
        "Reject a reviewed payout",
        "admin",
        {200: answers.Payout},
        ReviewDecision,
        params=(path_id("payout_id"),),
        errors=(404, 409),
    ),
)


@routes.get("/admin/reviews")
async def list_reviews(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    limit = page_limit(request)
    rows = await queries.list_reviews(services.pool, cursor(request), limit + 1)
    return page(rows, limit)


async def _decide(request: web.Request, event: Event) -> web.Response:
    services = request.app[SERVICES]
    reason = None
    if (await read_body(request)).strip():
        reason = (await read_json(request, ReviewDecision)).reason
    async with services.pool.acquire() as conn:
        outcome = await actions.decide_review(
            conn, request.match_info["payout_id"], event, API_ACTOR, reason,
            services.settings.four_eyes_fen, services.clock.now(),
        )  # fmt: skip
    return json_response(outcome.payout)


@routes.post("/admin/payouts/{payout_id}/approve")
async def approve(request: web.Request) -> web.Response:
    return await _decide(request, Event.APPROVE)


@routes.post("/admin/payouts/{payout_id}/reject")
async def reject(request: web.Request) -> web.Response:
    return await _decide(request, Event.REJECT)
