"""Reconciliation for operators (SPEC 10): run one (`POST /admin/reconcile`), list the
exceptions it left (`GET /admin/recon-exceptions`), resolve one
(`POST /admin/recon-exceptions/{id}/resolve`, with a note and maybe an adjustment)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from channels.client import BankUnavailable
from gateway.api import answers
from gateway.api.jsonio import json_response, read_json
from gateway.api.operations import BANK_ID, CURSOR, LIMIT, Op, path_id
from gateway.api.paging import cursor, page, page_limit
from gateway.api.params import Param, query
from gateway.api.services import SERVICES
from gateway.contract.requests import ReconcileRequest, ReconResolve
from gateway.operators import actions, audit
from gateway.operators.model import API_ACTOR
from gateway.recon import exceptions
from gateway.recon.reconcile import reconcile
from protocol.errors import InvalidRequest, NotFound, ServiceUnavailable

routes = web.RouteTableDef()

RECON_STATUS = Param("status", {"type": "string", "enum": [*exceptions.STATUSES, "all"],
                                 "default": "open"})  # fmt: skip

OPERATIONS: Final[tuple[Op, ...]] = (
    Op(
        "post",
        "/admin/reconcile",
        "Reconcile one bank's statement for one date (对账)",
        "admin",
        {200: None},
        ReconcileRequest,
        errors=(404, 503),
        example={"bank_id": "102", "date": "2026-11-25", "apply": False},
    ),
    Op(
        "get",
        "/admin/recon-exceptions",
        "Reconciliation exceptions",
        "admin",
        {200: answers.Page},
        params=(RECON_STATUS, Param("bank_id", BANK_ID), LIMIT, CURSOR),
    ),
    Op(
        "post",
        "/admin/recon-exceptions/{exception_id}/resolve",
        "Resolve an exception with a note (and a journaled adjustment)",
        "admin",
        {200: None},
        ReconResolve,
        params=(path_id("exception_id"),),
        errors=(404, 409),
    ),
)


@routes.post("/admin/reconcile")
async def run_reconcile(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await read_json(request, ReconcileRequest)
    if body.bank_id not in await services.channel_ids():
        raise NotFound(f"no bank channel {body.bank_id}", field="bank_id")
    if services.bank is None:
        raise ServiceUnavailable("no bank simulator configured", code="bank_unavailable")
    try:
        report = await reconcile(services.pool, services.bank, body.bank_id, body.day,
                                 apply=body.apply)  # fmt: skip
    except BankUnavailable as exc:
        raise ServiceUnavailable(f"no statement from bank {body.bank_id}: {exc.code}",
                                 code="bank_unavailable") from None  # fmt: skip
    # Recorded after the run (it fetched the statement, then committed on its own).
    async with services.pool.acquire() as conn:
        await audit.record(conn, API_ACTOR, "recon.run", "recon_run", report["id"],
                           after={"bank_id": body.bank_id, "date": body.day,
                                  "summary": report["summary"]},
                           sim_at=services.clock.now())  # fmt: skip
    return json_response(report)


@routes.get("/admin/recon-exceptions")
async def list_exceptions(request: web.Request) -> web.Response:
    """`?status=open|resolved|all` (default open), `?bank_id=`, `?limit=&cursor=`."""
    params = query(request)
    status = params.text("status")
    limit = page_limit(request)
    items = await exceptions.list_page(
        request.app[SERVICES].pool,
        None if status == "all" else status,
        params.text("bank_id"),
        cursor(request),
        limit + 1,
    )
    return page(items, limit)


@routes.post("/admin/recon-exceptions/{exception_id}/resolve")
async def resolve_exception(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await read_json(request, ReconResolve)
    adjustment = None
    if body.adjustment is not None:
        if body.adjustment.amount == 0:
            raise InvalidRequest("an adjustment moves a non-zero amount", field="adjustment.amount")
        adjustment = exceptions.Adjustment(body.adjustment.merchant_id, body.adjustment.amount)
    async with services.pool.acquire() as conn:
        resolved = await actions.resolve_exception(
            conn, request.match_info["exception_id"], body.note, adjustment, API_ACTOR,
            services.clock.now(),
        )  # fmt: skip
    return json_response(resolved)
